"""Known text corpora, found in a data folder or fetched on first use, and checked.

A corpus is looked for as ``text/<file>`` and ``<file>`` under ``--data-dir`` and
``$SCRATCHNET_DATA_DIR``, then in the user cache (``~/.cache/scratchnet/text/``), the
folders MNIST is searched in (:func:`~scratchnet.data.mnist.candidate_dirs`). A copy
found anywhere is checked against the corpus's size and SHA-256 and refused when it
differs; when there is none it is downloaded into the cache (from ``$SCRATCHNET_MIRRORS``
when set: base URLs, each holding ``<file>``), checked, and deleted again if damaged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..errors import DataError
from ..registry import lookup
from .download import Progress, fetch
from .idx import FileCheck
from .mnist import cache_dir, candidate_dirs

#: the folder name under a data folder and in the cache
FOLDER = "text"


@dataclass(frozen=True)
class Corpus:
    """A known text: its file name in a data folder, its size and SHA-256, where it is
    published and what it is."""

    file: str
    check: FileCheck
    urls: tuple[str, ...]
    title: str


#: config name (``source:``) -> :class:`Corpus`; the URLs are module-level so that tests
#: can replace them
CORPORA: dict[str, Corpus] = {
    "dlfs": Corpus(
        "dlfs_input.txt",
        FileCheck(99_993,
                  sha256="c879e55c5e318b9d978064e246306e01d60be15a50f64d9438daeaeacbc119e8"),
        ("https://raw.githubusercontent.com/SethHWeidman/DLFS_code/master/06_rnns/input.txt",),
        "the character-level corpus of Deep Learning from Scratch, chapter 6 "
        "(06_rnns/input.txt of SethHWeidman/DLFS_code, MIT licence)"),
}


def verify(path: Path, check: FileCheck) -> None:
    """A DataError naming ``path`` unless its bytes have ``check``'s size and SHA-256."""
    data = files.read_bytes(path, files.MAX_TEXT_BYTES, "a UTF-8 text file")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != check.size or digest != check.sha256:
        raise DataError(f"{path}: {len(data):,} bytes of SHA-256 {digest[:16]}..., expected "
                        f"{check.size:,} bytes of SHA-256 {check.sha256[:16]}...; the file is "
                        "damaged or not the published one")


def find_corpus(name: str, *, data_dir: str | None = None, download: bool = True,
                progress: Progress | None = None) -> Path:
    """The checked file of corpus ``name`` (module docstring); a DataError saying where
    it was looked for, why a download failed and where to put the file otherwise."""
    corpus = lookup(CORPORA, name, "text source")
    folders = candidate_dirs(FOLDER, data_dir=data_dir)
    for folder in folders:
        if (folder / corpus.file).is_file():
            verify(folder / corpus.file, corpus.check)
            return folder / corpus.file
    failures: list[str] = []
    if download:
        target = cache_dir(FOLDER) / corpus.file
        mirrors = os.environ.get("SCRATCHNET_MIRRORS", "").split()
        urls = [m + corpus.file for m in mirrors] or list(corpus.urls)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            urls, failures = [], [f"cannot create {target.parent} ({e.strerror})"]
        for url in urls:
            try:
                fetch(url, target, progress)
                verify(target, corpus.check)
                return target
            except DataError as e:
                target.unlink(missing_ok=True)
                failures.append(f"{url}: {e}")
            except (OSError, ValueError) as e:  # no network, a malformed URL
                failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
    how = ("Downloading was disabled." if not download
           else "Download failed: " + "; ".join(failures) + ".")
    raise DataError(f"{name} text ({corpus.file}) not found in "
                    f"{', '.join(str(f) for f in folders)}. {how} Put the file in "
                    f"{cache_dir(FOLDER)}/ or pass --data-dir DIR (searched as DIR/{FOLDER}/ "
                    f"and DIR/) or set SCRATCHNET_DATA_DIR (searched the same way).")
