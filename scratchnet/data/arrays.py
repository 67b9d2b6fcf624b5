"""NumPy ``.npz`` files holding a dataset already split: ``x_train``, ``y_train``,
``x_test`` and ``y_test``.

The inputs may be flat rows (n, features), images, (n, height, width) for one channel
or (n, channels, height, width), or sequences (n, time, features); they are kept as flat
rows, with the sample shape remembered, so a convolution receives them as images, a
recurrent network as sequences (3-D samples row by row: :mod:`.sequences`) and a dense
network as rows. The
targets are (n,): integers are class labels (the classes are the distinct values, sorted),
anything else a regression target, unless ``task`` says otherwise. The file is read with
``allow_pickle=False``: an archive holding Python objects is refused, never unpickled.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DataError
from .dataset import Dataset, Description, check_memory

KEYS = ("x_train", "y_train", "x_test", "y_test")
#: how many times its stored size an array of more than NPZ_RATIO_GRACE bytes may unpack
#: to: real data rarely compresses 20 times; zeros do a thousand times (a zip bomb)
MAX_NPZ_RATIO = 100
NPZ_RATIO_GRACE = 16 << 20
#: bytes an archive's central directory may take (about 10,000 entries; an .npz data
#: set has four)
MAX_NPZ_DIRECTORY = 1 << 20


def describe_npz(path, task: str | None = None) -> Description:
    """The file's description: it is read (and checked) to know it."""
    return Description.of(load_npz(path, task=task))


def load_npz(path, *, task: str | None = None) -> Dataset:
    if path is None:
        raise DataError("the npz dataset needs a file: set data.path to an .npz file")
    path = Path(path).expanduser()
    arrays = read_arrays(path)
    X_train, X_test = arrays["x_train"], arrays["x_test"]
    if X_train.ndim not in (2, 3, 4) or X_train.shape[1:] != X_test.shape[1:]:
        raise DataError(f"{path}: x_train {X_train.shape} and x_test {X_test.shape} must both "
                        "be (n, features), (n, time, features) sequences, (n, height, width) "
                        "or (n, channels, height, width) images, with the same sample shape")
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        if arrays[y].ndim != 1 or len(arrays[y]) != len(arrays[x]):
            raise DataError(f"{path}: {y} must be one value per row of {x}, shape "
                            f"({len(arrays[x])},), got {arrays[y].shape}")
    channels, image_shape = 1, None
    if X_train.ndim == 4:
        channels, image_shape = X_train.shape[1], X_train.shape[2:]
    elif X_train.ndim == 3:
        image_shape = X_train.shape[1:]
    y_train, y_test, classes, task = _targets(path, arrays["y_train"], arrays["y_test"], task)
    n_features = int(np.prod(X_train.shape[1:]))
    return Dataset(name="npz", X_train=X_train.reshape(len(X_train), -1),
                   y_train=y_train, X_test=X_test.reshape(len(X_test), -1), y_test=y_test,
                   task=task, classes=classes,
                   feature_names=[f"x{i}" for i in range(n_features)],
                   image_shape=tuple(int(n) for n in image_shape) if image_shape else None,
                   source=str(path.resolve()), channels=int(channels))


def read_arrays(path: Path, keys: tuple[str, ...] = KEYS) -> dict[str, np.ndarray]:
    """The numeric arrays ``keys`` of the .npz file ``path``, in that order, read without
    unpickling and with their unpacked size checked first."""
    what = f"an .npz file with arrays {', '.join(keys)}"
    try:
        with files.open_regular(path, files.MAX_NPZ_BYTES, what) as f:
            _check_directory(path, f)
            with np.load(f, allow_pickle=False) as archive:
                if not hasattr(archive, "files"):
                    raise DataError(f"{path}: a single array, not an .npz archive of "
                                    f"{', '.join(keys)}")
                missing = [k for k in keys if k not in archive.files]
                if missing:
                    raise DataError(f"{path}: no array {', '.join(missing)}; the file holds "
                                    f"{', '.join(archive.files) or 'none'}, expected "
                                    f"{', '.join(keys)}")
                _check_unpacked_size(path, archive.zip, keys)
                arrays = {k: archive[k] for k in keys}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise DataError(f"{path}: {k} must be numeric, got dtype {a.dtype}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{path}: {k} holds NaN or infinite values")
    return arrays


def _check_directory(path: Path, f) -> None:
    """zipfile makes an object of every entry its central directory lists, before any
    data is read: a directory larger than :data:`MAX_NPZ_DIRECTORY` bytes is refused from
    the archive's end record (its ZIP64 record for a large archive)."""
    size = os.fstat(f.fileno()).st_size
    f.seek(size - min(size, 22 + 0xFFFF))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and at + 22 <= len(tail):
        directory = int.from_bytes(tail[at + 12:at + 16], "little")
        if directory == 0xFFFFFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
            f.seek(int.from_bytes(tail[at - 12:at - 4], "little"))
            record = f.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) == 56:
                directory = int.from_bytes(record[40:48], "little")
        if directory > MAX_NPZ_DIRECTORY:
            raise DataError(f"{path}: its directory takes {files.size_text(directory)}, more "
                            f"than the {files.size_text(MAX_NPZ_DIRECTORY)} of an .npz data "
                            "set (thousands of entries)")
    f.seek(0)


def _check_unpacked_size(path: Path, archive: zipfile.ZipFile, keys: tuple[str, ...]) -> None:
    """A compressed archive can unpack to far more than it stores (a zip bomb), and an
    array's header can announce more than its entry holds: both are checked before any
    array is unpacked. An entry of more than :data:`NPZ_RATIO_GRACE` bytes that unpacks
    to over :data:`MAX_NPZ_RATIO` times its stored size is refused; each header's shape
    must be what its entry holds; the arrays together must fit both
    :data:`~scratchnet.files.MAX_NPZ_UNPACKED_BYTES` and the memory a run may use (the
    share of the machine's memory that ``validate`` plans with)."""
    unpacked = 0
    for key in keys:
        info, where = archive.getinfo(f"{key}.npy"), f"{path}: {key}"
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > NPZ_RATIO_GRACE and ratio > MAX_NPZ_RATIO:
            raise DataError(f"{where} unpacks to {files.size_text(info.file_size)} from "
                            f"{files.size_text(info.compress_size)}: {ratio:,.0f} times its "
                            f"stored size, more than the {MAX_NPZ_RATIO} times that real data "
                            "compresses (a zip bomb?); if it is real, save it uncompressed "
                            "(numpy.savez)")
        with archive.open(info) as member:
            shape, dtype, start = npy_header(member, where)
        if dtype.hasobject:
            raise DataError(f"{where}: holds Python objects (a pickled array), which are "
                            "refused because loading them can run code; save numeric "
                            "arrays with numpy.savez")
        declared = math.prod(shape) * dtype.itemsize
        if declared != info.file_size - start:
            raise DataError(f"{where}: its header announces shape {shape} of {dtype} "
                            f"({declared:,} bytes), but the archive holds "
                            f"{info.file_size - start:,} bytes of it; the file is damaged")
        unpacked += declared
    if unpacked > files.MAX_NPZ_UNPACKED_BYTES:
        raise DataError(f"{path}: its arrays unpack to {files.size_text(unpacked)}, more than "
                        f"the {files.size_text(files.MAX_NPZ_UNPACKED_BYTES)} that scratchnet "
                        "reads for an .npz data set")
    check_memory(path, "its arrays", unpacked)


def npy_header(f, where: str) -> tuple[tuple, np.dtype, int]:
    """The shape and dtype a ``.npy`` stream's header announces, and where its data
    starts; a DataError naming ``where`` for anything else (an .npz archive given as one
    array, a damaged header)."""
    fmt = np.lib.format
    if f.read(4) == b"PK\x03\x04":  # an .npz archive renamed to .npy
        raise DataError(f"{where}: expected a single array saved with numpy.save")
    f.seek(0)
    try:
        version = fmt.read_magic(f)
        header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        if version not in header:
            raise ValueError(f"format version {version[0]}.{version[1]} is not read here")
        shape, _, dtype = header[version](f)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where}: not a readable .npy file ({exc})") from None
    return shape, dtype, f.tell()


def _targets(path: Path, y_train: np.ndarray, y_test: np.ndarray, task: str | None):
    """(y_train, y_test, classes, task): class indices for classification, floats else."""
    integral = y_train.dtype.kind in "biu" or (
        np.all(np.mod(y_train, 1) == 0) and np.all(np.mod(y_test, 1) == 0))
    task = task or ("classification" if integral else "regression")
    if task == "regression":
        return y_train.astype(np.float64), y_test.astype(np.float64), [], task
    if not integral:
        raise DataError(f"{path}: classification needs integer labels in y_train and y_test")
    distinct = np.unique(np.concatenate([y_train, y_test]))
    classes = [int(v) for v in distinct]
    return (np.searchsorted(distinct, y_train).astype(np.int64),
            np.searchsorted(distinct, y_test).astype(np.int64), classes, task)
