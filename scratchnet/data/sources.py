"""Loading datasets: MNIST-style IDX sets, scikit-learn's bundled sets and CSV files.

Every loader returns a :class:`Dataset` with a fixed train/test split:

* ``mnist`` and ``fashion_mnist`` come with their own split (60000 train / 10000 test
  images of 28x28 pixels), read from four IDX files. Where those files are looked for,
  and how they are downloaded when absent, is described in :func:`resolve_data_files`.
* ``digits``, ``iris``, ``wine``, ``breast_cancer`` and ``diabetes`` ship inside
  scikit-learn (nothing is downloaded); they are split with ``test_fraction``,
  stratified for classification and seeded by ``seed``.
* ``csv`` reads any CSV file with a header row (see :func:`load_csv`).

Nothing in this module prints, except the progress bar of a download, which goes to
standard error.
"""

from __future__ import annotations

import csv
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .idx import FileCheck, read_idx

DATASETS = ("mnist", "fashion_mnist", "digits", "iris", "wine", "breast_cancer",
            "diabetes", "csv")
TASKS = ("classification", "regression")

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
#: Module-level so that tests (or a user behind a proxy) can replace it.
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

#: Seconds to wait for a mirror before giving up on it (no network fails fast).
DOWNLOAD_TIMEOUT = 10.0

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
    "mnist": {
        "train-images-idx3-ubyte": FileCheck(
            _SIZES["train-images-idx3-ubyte"],
            sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte": FileCheck(
            _SIZES["train-labels-idx1-ubyte"],
            sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte": FileCheck(
            _SIZES["t10k-images-idx3-ubyte"],
            sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte": FileCheck(
            _SIZES["t10k-labels-idx1-ubyte"],
            sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    # Fashion-MNIST publishes only MD5s of its .gz archives (zalandoresearch/fashion-mnist
    # README; torchvision uses the same values). We found no trustworthy SHA-256 of the
    # decompressed files, so a Fashion-MNIST file is checked for its exact decompressed
    # size and IDX structure, plus the published MD5 when it is stored as .gz. A raw
    # (already decompressed) copy therefore gets the structural checks only, and a .gz
    # that was recompressed is refused (decompress it with gunzip to use it).
    "fashion_mnist": {
        "train-images-idx3-ubyte": FileCheck(_SIZES["train-images-idx3-ubyte"],
                                             gz_md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte": FileCheck(_SIZES["train-labels-idx1-ubyte"],
                                             gz_md5="25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte": FileCheck(_SIZES["t10k-images-idx3-ubyte"],
                                            gz_md5="bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte": FileCheck(_SIZES["t10k-labels-idx1-ubyte"],
                                            gz_md5="bb300cfdad3c16e7a12a480ee83cd310"),
    },
}

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                   "Shirt", "Sneaker", "Bag", "Ankle boot"]

# CSV cells that mean "no value" (compared after stripping spaces, case-insensitively).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null"})
# A numeric CSV target is treated as class labels when it holds integers only, at most
# this many distinct values, and at least CSV_MIN_ROWS_PER_CLASS rows per distinct
# value on average (so 0/1/2 codes in a 150-row file are classes, but 12 distinct ages in
# 30 rows are a quantity). ``task=`` overrides the guess.
CSV_MAX_CLASSES = 20
CSV_MIN_ROWS_PER_CLASS = 5


@dataclass(repr=False)
class Dataset:
    """A dataset with a fixed train/test split, still in its source units.

    X_train:  (n_train, n_features), the source dtype (uint8 for MNIST; never inflated).
    y_train:  (n_train,), int64 class indices 0..k-1 for classification, float64 for
              regression.
    X_test, y_test: the same for the test split.
    task:     "classification" or "regression".
    classes:  class labels in index order (``classes[y]`` is the label of y); [] for
              regression.
    feature_names: one name per column of X.
    image_shape:   (rows, cols) when each row of X is a flattened image, else None.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: list
    feature_names: list[str]
    image_shape: tuple[int, int] | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:  # the default repr would print the arrays
        return (f"Dataset({self.name!r}, task={self.task!r}, train={self.X_train.shape} "
                f"{self.X_train.dtype}, test={self.X_test.shape}, "
                f"classes={len(self.classes)})")


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return key


def _check_fraction(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{what} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def load_dataset(name: str, *, path: str | None = None, data_dir: str | None = None,
                 target: str | None = None, task: str | None = None,
                 test_fraction: float = 0.2, seed: int = 0, download: bool = True) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) with a train/test split.

    path:      for mnist/fashion_mnist a folder holding the four IDX files; for csv the
               CSV file. Ignored by the scikit-learn sets.
    data_dir:  for mnist/fashion_mnist, a folder searched as ``data_dir/<name>/`` and
               ``data_dir/`` (the ``--data-dir`` option).
    target:    csv only: the name of the target column.
    task:      csv only: "classification" or "regression", overriding the guess. For the
               other sets it may be given but must match the set's own task.
    test_fraction, seed: how the sets without a fixed split (scikit-learn, csv) are split;
               MNIST-style sets keep their published split and ignore both.
    download:  allow downloading missing MNIST-style files into the user cache.
    """
    key = _canonical_name(name)
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    if target is not None and key != "csv":
        raise ConfigError(f"target={target!r} only applies to the csv dataset, not {key}")

    if key in IDX_DATASETS:
        ds = load_idx_dataset(key, path=path, data_dir=data_dir, download=download)
    elif key == "csv":
        return load_csv(path, target=target, task=task, test_fraction=test_fraction,
                        seed=seed)
    else:
        ds = load_sklearn_dataset(key, test_fraction=test_fraction, seed=seed)
    if task is not None and task != ds.task:
        raise ConfigError(f"dataset {key} is a {ds.task} set; task={task!r} does not apply")
    return ds


# --------------------------------------------------------------------------------------
# MNIST-style IDX sets: finding, downloading, reading
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
    if env:
        dirs.append(Path(env).expanduser() / name)
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


def resolve_data_files(name, *, path=None, data_dir=None, download: bool = False
                       ) -> dict[str, Path]:
    """Find the four IDX files of ``name`` ("mnist" or "fashion_mnist").

    Search order (a folder counts only if it holds all four files, each raw or .gz):

    1. ``path`` (a folder),
    2. ``data_dir/<name>/`` then ``data_dir/``,
    3. ``$SCRATCHNET_DATA_DIR/<name>/``,
    4. the user cache ``$XDG_CACHE_HOME/scratchnet/<name>/`` (default ``~/.cache/...``).

    When none is complete and ``download`` is true, the missing files are fetched from
    :data:`MIRRORS` into the user cache. Returns ``{"train_images": Path, "train_labels":
    ..., "test_images": ..., "test_labels": ...}``; raises DataError naming the missing
    files, the folders searched and where to put the files when they cannot be found.
    (``download`` defaults to False here, so merely asking where files are never touches
    the network; :func:`load_dataset` passes its own ``download`` flag.)
    """
    key = _canonical_name(name)
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
        failures = _download_missing(key, target)
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
            f"SCRATCHNET_DATA_DIR (searched as $SCRATCHNET_DATA_DIR/{name}/).")


def _download_missing(name: str, folder: Path) -> list[str]:
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
        for mirror in MIRRORS.get(name, []):
            url = mirror + base + ".gz"
            try:
                _fetch(url, dest)
                read_idx(dest, ndim=3 if "images" in role else 1,
                         check=CHECKSUMS.get(name, {}).get(base))
                break
            except DataError as exc:
                dest.unlink(missing_ok=True)
                failures.append(f"{url}: {exc}")
            except (urllib.error.URLError, OSError, ValueError) as exc:
                # URLError/HTTPError and socket timeouts are OSErrors; ValueError covers
                # a malformed mirror URL.
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        else:
            # No mirror had this file. Stop here: when one file cannot be fetched the
            # network is almost always down, and waiting on the others only adds delay.
            break
    return failures


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` atomically (a ``.part`` file, then os.replace), with a
    rich progress bar on standard error."""
    # Imported here: rich is only needed while downloading.
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TransferSpeedColumn)

    request = urllib.request.Request(url, headers={"User-Agent": "scratchnet"})
    fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".",
                                     suffix=".part")
    part = Path(part_name)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task(f"downloading {dest.name}", total=total)
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(task, advance=len(block))
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def load_idx_dataset(name: str, *, path=None, data_dir=None, download: bool = True
                     ) -> Dataset:
    """Load mnist or fashion_mnist: X as (n, rows*cols) uint8, y as (n,) int64."""
    files = resolve_data_files(name, path=path, data_dir=data_dir, download=download)
    checks = CHECKSUMS.get(name, {})

    def read(role: str) -> np.ndarray:
        ndim = 3 if role.endswith("images") else 1
        return read_idx(files[role], ndim=ndim, check=checks.get(IDX_FILES[role]))

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
                   image_shape=(int(rows), int(cols)))


# --------------------------------------------------------------------------------------
# scikit-learn's bundled sets
# --------------------------------------------------------------------------------------

_SKLEARN_TASKS = {"digits": "classification", "iris": "classification",
                  "wine": "classification", "breast_cancer": "classification",
                  "diabetes": "regression"}


def _split(name, X, y, task, test_fraction, seed):
    """Seeded train/test split, stratified for classification (same class proportions)."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(X, y, test_size=test_fraction, random_state=seed,
                                stratify=y if task == "classification" else None)
    except ValueError as exc:  # e.g. a class with a single row cannot be stratified
        raise DataError(f"cannot split {name} into train/test with test_fraction="
                        f"{test_fraction}: {exc}") from exc


def load_sklearn_dataset(name: str, *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """One of scikit-learn's bundled sets (no download), split by :func:`_split`."""
    from sklearn import datasets as skd

    task = _SKLEARN_TASKS[name]
    if name == "diabetes":
        # The raw measurements; sklearn's default pre-scales every feature (which would
        # hide what our own Scaler does).
        bunch = skd.load_diabetes(scaled=False)
    else:
        bunch = getattr(skd, f"load_{name}")()
    X = np.asarray(bunch.data)
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        # .item() turns NumPy scalars into plain ints/strings so classes is JSON-ready.
        classes = [c.item() if hasattr(c, "item") else c for c in bunch.target_names]
    else:
        y = np.asarray(bunch.target, dtype=np.float64)
        classes = []
    names = getattr(bunch, "feature_names", None)
    feature_names = ([str(n) for n in names] if names is not None
                     else [f"x{i}" for i in range(X.shape[1])])
    X_train, X_test, y_train, y_test = _split(name, X, y, task, test_fraction, seed)
    return Dataset(name=name, X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, task=task, classes=classes, feature_names=feature_names,
                   image_shape=(8, 8) if name == "digits" else None)


# --------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------

def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_MARKERS


def _where(row: int, line: int, column: str) -> str:
    return f"data row {row} (file line {line}), column {column!r}"


def _is_integer(value: float) -> bool:
    return float(value).is_integer()


def load_csv(path, *, target: str | None, task: str | None = None,
             test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Read a CSV file with a header row; ``target`` names the column to predict.

    Every other column is a feature and must be numeric. Missing cells (empty, NA, N/A,
    NaN, null) are refused with the data row number (1 = first row after the header) and
    the file line number. The task is "classification" when the target holds text, or
    integers only with at most CSV_MAX_CLASSES (20) distinct values and at least
    CSV_MIN_ROWS_PER_CLASS (5) rows per distinct value on average; "regression"
    otherwise. ``task`` overrides this guess. Classes are the sorted distinct strings
    (text target) or sorted distinct numbers (numeric target).
    """
    if path is None:
        raise DataError("the csv dataset needs a file: pass path=FILE.csv")
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if not header or not any(header):
                raise DataError(f"{path}: empty file; a CSV needs a header row naming the "
                                "columns")
            if "" in header:
                raise DataError(f"{path}: column {header.index('') + 1} of the header row "
                                "has no name")
            duplicated = sorted({h for h in header if header.count(h) > 1})
            if duplicated:
                raise DataError(f"{path}: duplicate column names in the header: "
                                f"{', '.join(duplicated)}")
            if target is None or target not in header:
                said = "no target column given" if target is None else \
                    f"target column {target!r} not found"
                raise DataError(f"{path}: {said}; the columns are: {', '.join(header)}")
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row:  # a blank line, not a row of empty cells
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}: file line {reader.line_num} has {len(row)} "
                                    f"fields but the header has {len(header)}")
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from exc
    if not rows:
        raise DataError(f"{path}: no data rows after the header")

    t = header.index(target)
    features = [j for j in range(len(header)) if j != t]
    X = np.empty((len(rows), len(features)), dtype=np.float64)
    raw_target: list[str] = []
    for i, row in enumerate(rows):
        # Check cells left to right so the first problem in the file is the one reported.
        for j, cell in enumerate(row):
            if _is_missing(cell):
                raise DataError(f"{path}: missing value at {_where(i + 1, lines[i], header[j])}"
                                "; fill or drop it first")
        for col, j in enumerate(features):
            try:
                value = float(row[j])
            except ValueError:
                raise DataError(
                    f"{path}: feature column {header[j]!r} is not numeric (value "
                    f"{row[j].strip()!r} in data row {i + 1}, file line {lines[i]}); encode "
                    "it as numbers or drop the column") from None
            if not np.isfinite(value):
                raise DataError(f"{path}: non-finite value {row[j].strip()!r} at "
                                f"{_where(i + 1, lines[i], header[j])}")
            X[i, col] = value
        raw_target.append(row[t].strip())

    y, classes, task = _encode_target(path, target, raw_target, lines, task)
    X_train, X_test, y_train, y_test = _split(f"{path}", X, y, task, test_fraction, seed)
    return Dataset(name="csv", X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, task=task, classes=classes,
                   feature_names=[header[j] for j in features], image_shape=None)


def _encode_target(path, target, raw: list[str], lines: list[int], task: str | None):
    """Turn the target cells into (y, classes, task) following load_csv's rules."""
    try:
        numbers = np.array([float(v) for v in raw], dtype=np.float64)
    except ValueError:
        numbers = None  # at least one cell is text
    if numbers is None:
        if task == "regression":
            bad = next(i for i, v in enumerate(raw) if not _parses(v))
            raise DataError(f"{path}: target column {target!r} holds text (value "
                            f"{raw[bad]!r} at {_where(bad + 1, lines[bad], target)}); "
                            "regression needs numbers")
        classes = sorted(set(raw))
        lookup = {c: k for k, c in enumerate(classes)}
        return np.array([lookup[v] for v in raw], dtype=np.int64), classes, "classification"

    if not np.all(np.isfinite(numbers)):
        bad = int(np.flatnonzero(~np.isfinite(numbers))[0])
        raise DataError(f"{path}: non-finite target {raw[bad]!r} at "
                        f"{_where(bad + 1, lines[bad], target)}")
    distinct = np.unique(numbers)
    integral = all(_is_integer(v) for v in distinct)
    if task is None:
        few = (len(distinct) <= CSV_MAX_CLASSES
               and len(numbers) >= CSV_MIN_ROWS_PER_CLASS * len(distinct))
        task = "classification" if integral and few else "regression"
    if task == "regression":
        return numbers, [], "regression"
    classes = [int(v) if integral else float(v) for v in distinct]
    # np.unique sorted the values, so searchsorted gives each row its class index.
    return np.searchsorted(distinct, numbers).astype(np.int64), classes, "classification"


def _parses(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
