"""Reading files that may be hostile: regular files only, each kind with a size cap.

Every file scratchnet reads goes through :func:`open_regular` (or :func:`read_bytes`,
:func:`read_text`). The path is opened without blocking (a named pipe would otherwise
wait for a writer forever), checked to be a regular file once symlinks are resolved (not
a FIFO, a device such as ``/dev/zero``, a folder or a socket), and refused when it holds
more than the cap for its kind, all before a byte is read. A file that grows while it is
read is cut off at its cap, never read to its end.

The caps are module constants, listed in ``docs/when-things-go-wrong.md``; a Python user
with a reason to read larger files can raise them (``scratchnet.files.MAX_CSV_BYTES =
...``).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import DataError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

#: an experiment file (and a run's ``config.yaml``)
MAX_CONFIG_BYTES = 4 * MiB
#: ``data.json``, ``summary.json``, ``metrics.jsonl``, ``sweep.json``, ``tune.json``
MAX_JSON_BYTES = 64 * MiB
#: ``weights.safetensors``: a quarter of a billion float32 parameters
MAX_WEIGHTS_BYTES = 1 * GiB
#: ``checkpoint.safetensors``: the weights four times over (live, best, two Adam moments)
MAX_CHECKPOINT_BYTES = 4 * GiB
#: a CSV data set, or CSV rows to predict
MAX_CSV_BYTES = 1 * GiB
#: a text a character model learns (the book's corpus holds 98 KiB)
MAX_TEXT_BYTES = 32 * MiB
#: a ``.npy`` array to predict
MAX_NPY_BYTES = 1 * GiB
#: an ``.npz`` data set as stored, and what its arrays may unpack to
MAX_NPZ_BYTES = 1 * GiB
MAX_NPZ_UNPACKED_BYTES = 4 * GiB
#: one IDX file of an MNIST-style set as stored (the official ones are at most 45 MiB)
MAX_IDX_BYTES = 256 * MiB
#: a tune folder's ``study.db`` (SQLite), checked before optuna opens it
MAX_STUDY_BYTES = 1 * GiB
#: a PNG or JPEG picture to predict (its pixels have a cap of their own, in predict.py)
MAX_IMAGE_BYTES = 64 * MiB


def size_text(n: int) -> str:
    """Bytes for people: ``512 bytes``, ``4 MiB``, ``1.5 GiB``."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words ("a named pipe (FIFO)")."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | Path, limit: int, what: str,
                 error: type[Exception] = DataError) -> BinaryIO:
    """``path`` opened for reading in binary, once it is known to be a regular file of at
    most ``limit`` bytes; otherwise ``error`` (a DataError unless the caller says, e.g.
    ConfigError for an experiment file) with one line naming the file, what is wrong and
    ``what`` was expected (``"a YAML experiment file"``)."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file; expected {what}") from None
    except OSError as e:
        problem = ("is a socket, not a regular file" if e.errno == errno.ENXIO
                   else f"cannot be read ({e.strerror})")
        raise error(f"{path}: {problem}; expected {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: is {kind(st.st_mode)}, not a regular file; expected {what}")
        if st.st_size > limit:
            raise error(f"{path}: holds {size_text(st.st_size)}, more than the "
                        f"{size_text(limit)} that scratchnet reads for {what}")
        os.set_blocking(fd, True)  # (a regular file never blocks; a reader expects the usual)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int, what: str,
               error: type[Exception] = DataError) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`), at most
    ``limit`` of them: a file that grows past the cap while it is read is refused too."""
    with open_regular(path, limit, what, error) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise error(f"{path}: cannot be read ({e.strerror}); expected {what}") from None
    if len(data) > limit:
        raise error(f"{path}: holds more than the {size_text(limit)} that scratchnet reads "
                    f"for {what}")
    return data


def read_text(path: str | Path, limit: int, what: str, error: type[Exception] = DataError,
              encoding: str = "utf-8") -> str:
    """:func:`read_bytes` decoded; bytes that are not UTF-8 are ``error`` naming where."""
    data = read_bytes(path, limit, what, error)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); "
                    f"expected {what}") from None
