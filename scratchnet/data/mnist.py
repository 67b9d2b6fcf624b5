"""MNIST and Fashion-MNIST: where their four IDX files are looked for, how they are
downloaded when absent (checked against known sizes and checksums), and reading them.

Search order (a folder counts only if it holds all four files, each raw or ``.gz``):
``data.path``, then ``--data-dir DIR`` as ``DIR/<name>/`` and ``DIR/``, then
``$SCRATCHNET_DATA_DIR`` searched the same two ways, then the user cache
(``~/.cache/scratchnet/<name>/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import files as caps
from ..errors import ConfigError, DataError
from .dataset import Dataset, Description, canonical_name
from .download import Progress, fetch
from .idx import FileCheck, read_idx

IDX_DATASETS = ("mnist", "fashion_mnist")
_DISPLAY_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

#: The four files of an MNIST-style set, by role. Each may also be stored as ``NAME.gz``.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Base URLs tried in order when the files are missing; each holds ``NAME.gz``.
#: yann.lecun.com, MNIST's original home, now answers 403 and is deliberately absent.
#: Module-level so that tests can replace it; ``$SCRATCHNET_MIRRORS`` (base URLs separated
#: by spaces) replaces it for every set, for a user behind a proxy or with a local mirror.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion_mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

# Decompressed sizes are the same for both sets: 16-byte image header + n*28*28 bytes,
# 8-byte label header + n bytes.
_SIZES = {"train-images-idx3-ubyte": 47040016, "train-labels-idx1-ubyte": 60008,
          "t10k-images-idx3-ubyte": 7840016, "t10k-labels-idx1-ubyte": 10008}

#: What the official files look like, per dataset and file name (without ``.gz``).
#: A file is refused when its decompressed size or any known checksum differs.
#: A dataset or file *absent* from this table is checked for structure only (valid
#: header, no truncation, labels in range); the tests rely on this to load small fake
#: IDX sets by emptying the ``"mnist"`` entry with ``monkeypatch.setitem``.
CHECKSUMS: dict[str, dict[str, FileCheck]] = {
    # SHA-256 of the decompressed IDX bytes. Checking the decompressed bytes (not the
    # .gz) means a recompressed copy of the genuine data is still accepted.
    "mnist": {name: FileCheck(_SIZES[name], sha256=sha) for name, sha in {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }.items()},
    # Fashion-MNIST publishes only MD5s of its .gz archives (zalandoresearch/fashion-mnist
    # README; torchvision uses the same values). We found no trustworthy SHA-256 of the
    # decompressed files, so a Fashion-MNIST file is checked for its exact decompressed
    # size and IDX structure, plus the published MD5 when it is stored as .gz. A raw
    # (already decompressed) copy therefore gets the structural checks only, and a .gz
    # that was recompressed is refused (decompress it with gunzip to use it).
    "fashion_mnist": {name: FileCheck(_SIZES[name], gz_md5=md5) for name, md5 in {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }.items()},
}

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                   "Shirt", "Sneaker", "Bag", "Ankle boot"]

# --------------------------------------------------------------------------------------

def cache_dir(name: str) -> Path:
    """The per-user download folder: ``$XDG_CACHE_HOME/scratchnet/<name>/``, else
    ``~/.cache/scratchnet/<name>/``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "scratchnet" / name


def candidate_dirs(name: str, *, path=None, data_dir=None) -> list[Path]:
    """The folders searched for an IDX set, in order (first complete one wins)."""
    dirs: list[Path] = []
    if path:
        dirs.append(Path(path).expanduser())
    if data_dir:
        dirs += [Path(data_dir).expanduser() / name, Path(data_dir).expanduser()]
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    if env:  # searched like --data-dir
        dirs += [Path(env).expanduser() / name, Path(env).expanduser()]
    dirs.append(cache_dir(name))
    unique: list[Path] = []
    for d in dirs:  # the same folder reached twice is searched (and reported) once
        if d not in unique:
            unique.append(d)
    return unique


def _files_in(folder: Path) -> dict[str, Path]:
    """The IDX files present in ``folder``, by role; the raw file wins over ``.gz``
    because it needs no decompression."""
    found = {}
    for role, base in IDX_FILES.items():
        for candidate in (folder / base, folder / (base + ".gz")):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def resolve_data_files(name, *, path=None, data_dir=None, download: bool = False,
                       progress: Progress | None = None) -> dict[str, Path]:
    """Find the four IDX files of ``name`` ("mnist" or "fashion_mnist").

    Search order (a folder counts only if it holds all four files, each raw or .gz):

    1. ``path`` (a folder),
    2. ``data_dir/<name>/`` then ``data_dir/``,
    3. ``$SCRATCHNET_DATA_DIR/<name>/`` then ``$SCRATCHNET_DATA_DIR/``,
    4. the user cache ``$XDG_CACHE_HOME/scratchnet/<name>/`` (default ``~/.cache/...``).

    When none is complete and ``download`` is true, the missing files are fetched from
    :data:`MIRRORS` into the user cache. Returns ``{"train_images": Path, "train_labels":
    ..., "test_images": ..., "test_labels": ...}``; raises DataError naming the missing
    files, the folders searched and where to put the files when they cannot be found.
    (``download`` defaults to False here, so merely asking where files are never touches
    the network; :func:`~scratchnet.data.load_dataset` passes its own ``download`` flag.)
    """
    key = canonical_name(name)
    if key not in IDX_DATASETS:
        raise ConfigError(f"{key} is not stored as IDX files; resolve_data_files handles: "
                          f"{', '.join(IDX_DATASETS)}")
    folders = candidate_dirs(key, path=path, data_dir=data_dir)
    for folder in folders:
        found = _files_in(folder)
        if len(found) == len(IDX_FILES):
            return found

    failures: list[str] = []
    if download:
        target = cache_dir(key)
        failures = _download_missing(key, target, progress)
        found = _files_in(target)
        if len(found) == len(IDX_FILES):
            return found
    raise DataError(_missing_message(key, folders, download, failures))


def _missing_message(name: str, folders: list[Path], download: bool,
                     failures: list[str]) -> str:
    # Report the files missing from the most nearly complete folder (the cache on a tie).
    cache = cache_dir(name)
    best = max(folders, key=lambda f: (len(_files_in(f)), f == cache))
    missing = [IDX_FILES[r] + "(.gz)" for r in IDX_FILES if r not in _files_in(best)]
    looked = []
    for folder in folders:
        have = len(_files_in(folder))
        state = ("does not exist" if not folder.is_dir()
                 else f"has {have} of {len(IDX_FILES)} files")
        looked.append(f"{folder} ({state})")
    if not download:
        how = "Downloading was disabled."
    elif failures:
        how = "Download failed: " + "; ".join(failures) + "."
    else:
        how = "Download failed."
    return (f"{_DISPLAY_NAMES[name]} files missing: {', '.join(missing)}. "
            f"Looked in: {'; '.join(looked)}. {how} "
            f"Download them into {cache}/ (all four in one folder, gzipped or not) or pass "
            f"--data-dir DIR (searched as DIR/{name}/ and DIR/) or set "
            f"SCRATCHNET_DATA_DIR (searched the same way).")


def _download_missing(name: str, folder: Path, progress: Progress | None) -> list[str]:
    """Fetch each file absent from ``folder`` from the first mirror that works.

    Returns the failure messages (empty when everything arrived). Each file is verified
    right after download and deleted again if damaged, so a bad mirror never leaves a
    corrupt file in the cache.
    """
    failures: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [f"cannot create {folder} ({exc})"]
    present = _files_in(folder)
    for role, base in IDX_FILES.items():
        if role in present:
            continue
        dest = folder / (base + ".gz")
        check = CHECKSUMS.get(name, {}).get(base)
        limit = check.largest_gz if check else caps.MAX_IDX_BYTES  # a mirror may send anything
        for mirror in os.environ.get("SCRATCHNET_MIRRORS", "").split() or MIRRORS.get(name, []):
            url = mirror + base + ".gz"
            try:
                fetch(url, dest, progress, limit=limit)
                read_idx(dest, ndim=3 if "images" in role else 1, check=check)
                break
            except DataError as exc:
                dest.unlink(missing_ok=True)
                failures.append(f"{url}: {exc}")
            except (OSError, ValueError) as exc:
                # URLError/HTTPError and socket timeouts are OSErrors; ValueError covers
                # a malformed mirror URL.
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        else:
            # No mirror had this file. Stop here: when one file cannot be fetched the
            # network is almost always down, and waiting on the others only adds delay.
            break
    return failures


def describe_idx_dataset(name: str, **_) -> Description:
    """The published shape of MNIST and Fashion-MNIST (a file that differs is refused by
    its checksum when read), known without finding or reading the files."""
    rows, cols = 28, 28
    return Description(name, "classification", 60000, 10000, rows * cols, 10, (rows, cols))


def load_idx_dataset(name: str, *, path=None, data_dir=None, download: bool = True,
                     progress: Progress | None = None) -> Dataset:
    """Load mnist or fashion_mnist: X as (n, rows*cols) uint8, y as (n,) int64.
    ``progress(file, done, total)`` hears about a download, when one is needed."""
    files = resolve_data_files(name, path=path, data_dir=data_dir, download=download,
                               progress=progress)
    known = CHECKSUMS.get(name, {})

    def read(role: str) -> np.ndarray:
        ndim = 3 if role.endswith("images") else 1
        return read_idx(files[role], ndim=ndim, check=known.get(IDX_FILES[role]))

    arrays, shapes = {}, {}
    for split in ("train", "test"):
        images, labels = read(f"{split}_images"), read(f"{split}_labels")
        if len(images) != len(labels):
            raise DataError(f"{files[split + '_images']} holds {len(images)} images but "
                            f"{files[split + '_labels']} holds {len(labels)} labels")
        if labels.size and labels.max() >= 10:
            raise DataError(f"{files[split + '_labels']}: label {int(labels.max())} is out "
                            "of range; expected class indices 0..9")
        shapes[split] = images.shape[1:]
        # (n, rows, cols) -> (n, rows*cols): a view of the same memory, no copy.
        arrays[split] = (images.reshape(len(images), -1), labels.astype(np.int64))
    if shapes["train"] != shapes["test"]:
        raise DataError(f"{files['train_images']} holds {shapes['train']} images but "
                        f"{files['test_images']} holds {shapes['test']} images")
    rows, cols = shapes["train"]
    classes = list(range(10)) if name == "mnist" else list(FASHION_CLASSES)
    return Dataset(name=name, X_train=arrays["train"][0], y_train=arrays["train"][1],
                   X_test=arrays["test"][0], y_test=arrays["test"][1],
                   task="classification", classes=classes,
                   feature_names=[f"pixel_{r}_{c}" for r in range(rows) for c in range(cols)],
                   image_shape=(int(rows), int(cols)),
                   source=str(files["train_images"].parent.resolve()))

