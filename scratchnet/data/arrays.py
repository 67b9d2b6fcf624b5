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

import zipfile
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DataError
from .dataset import Dataset, Description

KEYS = ("x_train", "y_train", "x_test", "y_test")


def describe_npz(path, task: str | None = None) -> Description:
    """The file's description: it is read (and checked) to know it."""
    return Description.of(load_npz(path, task=task))


def load_npz(path, *, task: str | None = None) -> Dataset:
    if path is None:
        raise DataError("the npz dataset needs a file: set data.path to an .npz file")
    path = Path(path).expanduser()
    arrays = _read(path)
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


def _read(path: Path) -> dict[str, np.ndarray]:
    what = f"an .npz file with arrays {', '.join(KEYS)}"
    try:
        with files.open_regular(path, files.MAX_NPZ_BYTES, what) as f, \
                np.load(f, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataError(f"{path}: a single array, not an .npz archive of "
                                f"{', '.join(KEYS)}")
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise DataError(f"{path}: no array {', '.join(missing)}; the file holds "
                                f"{', '.join(archive.files) or 'none'}, expected {', '.join(KEYS)}")
            _check_unpacked_size(path, archive)
            arrays = {k: archive[k] for k in KEYS}
    except ValueError as exc:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise DataError(f"{path}: holds Python objects (pickled arrays), which are refused "
                        "because loading them can run code; save numeric arrays with "
                        "numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise DataError(f"{path}: {k} must be numeric, got dtype {a.dtype}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{path}: {k} holds NaN or infinite values")
    return arrays


def _check_unpacked_size(path: Path, archive) -> None:
    """A compressed archive can unpack to far more than it stores (a zip bomb): the
    sizes its directory declares are checked before any array is unpacked."""
    unpacked = sum(archive.zip.getinfo(f"{k}.npy").file_size for k in KEYS)
    if unpacked > files.MAX_NPZ_UNPACKED_BYTES:
        raise DataError(f"{path}: its arrays unpack to {files.size_text(unpacked)}, more than "
                        f"the {files.size_text(files.MAX_NPZ_UNPACKED_BYTES)} that scratchnet "
                        "reads for an .npz data set")


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
