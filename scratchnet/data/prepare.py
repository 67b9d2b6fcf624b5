"""Turning a :class:`~scratchnet.data.sources.Dataset` into arrays a network can train on.

:func:`prepare` does three things, in this order:

1. holds out a validation part of the training split (or reuses the test split, as the
   book's notebook does, with ``validation="test"``);
2. fits a :class:`Scaler` on what is left for training *only* (statistics from the
   validation or test rows would leak information about them into training);
3. scales train/validation/test with those statistics (:mod:`.scaling`) and one-hot
   encodes the labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from ..nn.core import get_dtype
from ..registry import lookup
from .dataset import Dataset, sample_shape_of
from .scaled import ScaledRows, byte_data
from .scaling import Scaler


def one_hot(y, n_classes, dtype="float32") -> np.ndarray:
    """Class indices, shape (n,), to one-hot rows, shape (n, n_classes), of ``dtype``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ShapeError(f"one_hot: expected labels of shape (n,), got {y.shape}")
    if y.size and y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(np.mod(y, 1) == 0):
            raise DataError(f"one_hot: labels must be integer class indices, got {y.dtype}")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"one_hot: labels must lie in 0..{n_classes - 1}, found "
                        f"{y.min()}..{y.max()}")
    out = np.zeros((len(y), int(n_classes)), dtype=get_dtype(dtype))
    out[np.arange(len(y)), y.astype(np.intp, copy=False)] = 1
    return out


@dataclass(repr=False)
class Prepared:
    """Arrays ready for training, all in one floating dtype.

    X_*: (n_*, n_features), scaled with statistics of X_train only (with ``lazy``, 8-bit
         features are :class:`~scratchnet.data.scaled.ScaledRows`, scaled as read).
    Y_*: (n_*, n_classes) one-hot for classification; (n_*, 1) column for regression.
    With ``validation="test"`` X_val/Y_val are the very same arrays as X_test/Y_test.
    ``source`` and ``fingerprint`` are the :class:`Dataset`'s.
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    task: str
    classes: list
    scaler: Scaler
    feature_names: list[str]
    image_shape: tuple | None
    source: str | None = None
    channels: int = 1
    fingerprint: dict | None = None
    #: with ``target_scale``: the scaling of the regression targets Y_* hold (fitted on
    #: the training rows); its ``inverse_transform`` gives predictions in the data's units
    target_scaler: Scaler | None = None

    @property
    def sample_shape(self) -> tuple[int, int, int] | None:
        """(channels, rows, cols) for images (each row of X flattens one); else None."""
        return sample_shape_of(self)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.Y_train.shape[1])

    def __repr__(self) -> str:
        return (f"Prepared({self.task}, train={self.X_train.shape}, val={self.X_val.shape}, "
                f"test={self.X_test.shape}, outputs={self.n_outputs}, "
                f"dtype={self.X_train.dtype}, scaler={self.scaler!r})")


def split_indices(y, fraction: float, *, seed: int = 0, stratify: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle-split row indices 0..n-1 into (keep, held_out), both sorted ascending.

    held_out has round(fraction * n) rows. With ``stratify`` each class (distinct value
    of y, shape (n,)) gives its proportional share, so class frequencies stay the same in
    both parts; a class's share is rounded so that the total is exact (largest remainder
    first), and a class never gives away its last row (which can make held_out a row
    or two smaller when some class has a single member).

    Plain NumPy on purpose: importing scikit-learn costs ~90 MB of memory, which an MNIST
    run (which needs no other part of it) cannot spare.
    """
    y = np.asarray(y)
    n = len(y)
    n_out = int(round(fraction * n))
    if not 0 < n_out < n:
        raise DataError(f"cannot hold out a fraction {fraction} of {n} rows: that leaves "
                        f"{n_out} held-out and {n - n_out} remaining rows")
    rng = np.random.default_rng(seed)
    if not stratify:
        held = rng.permutation(n)[:n_out]
    else:
        _, label = np.unique(y, return_inverse=True)
        label = label.reshape(-1)
        counts = np.bincount(label)
        exact = counts * (n_out / n)
        take = np.floor(exact).astype(np.int64)
        # Hand the rows lost to rounding down to the classes that lost the most.
        for c in np.argsort(-(exact - take), kind="stable")[: n_out - take.sum()]:
            take[c] += 1
        take = np.minimum(take, np.maximum(counts - 1, 0))
        held = np.concatenate([rng.permutation(np.flatnonzero(label == c))[:k]
                               for c, k in enumerate(take)])
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


#: how targets are given to a network: one-hot rows (classes), one 0/1 column (two
#: classes, for binary cross entropy) or one column of values (regression)
TARGETS = ("one_hot", "binary", "value")


def encode_targets(y, task: str, n_classes: int, targets: str | None = None,
                   dtype="float32") -> np.ndarray:
    """Labels or values, shape (n,), as the 2-D array a network learns: ``targets`` is one
    of :data:`TARGETS`, by default one-hot for classification and values for
    regression."""
    kind = lookup(TARGETS, targets or ("one_hot" if task == "classification" else "value"),
                  "target encoding")
    if kind == "one_hot":
        return one_hot(y, n_classes, dtype)
    if kind == "binary" and (n_classes != 2 or (len(y) and not np.isin(y, (0, 1)).all())):
        raise DataError(f"binary targets need two classes labelled 0 and 1, got "
                        f"{n_classes} classes")
    return np.asarray(y, dtype=get_dtype(dtype)).reshape(-1, 1)


def prepare(ds: Dataset, *, scale: str = "standard", validation: float | str = 0.1,
            seed: int = 0, dtype: str = "float32", targets: str | None = None,
            target_scale: str = "none", lazy: bool = False) -> Prepared:
    """Split off validation data, scale features and encode targets (see module doc).

    validation:   a fraction 0 < v < 1 of the training split held out (stratified by
                  class for classification, shuffled with ``seed``), or "test" to
                  validate on the test split as the book's notebook does.
    scale:        a kind from :data:`~scratchnet.data.SCALERS`.
    dtype:        floating dtype of every returned array.
    targets:      how labels are encoded (:func:`encode_targets`).
    target_scale: a kind from :data:`~scratchnet.data.SCALERS` for the values of a
                  regression, fitted on the training rows like the features'
                  (``"standard"``: a network learns values of mean 0 and spread 1 whatever
                  their units); ``"none"`` keeps them as they are.
    lazy:         8-bit features (images) stay 8-bit: X_* are :class:`ScaledRows`, which
                  scale each batch as it is read (the same numbers, a quarter of the memory
                  for float32); other features are scaled up front either way.
    """
    scaler = Scaler(scale)
    dt = get_dtype(dtype)
    if isinstance(validation, str):
        if validation != "test":
            raise ConfigError(f"validation must be a fraction between 0 and 1 or 'test', "
                              f"got {validation!r}")
    elif isinstance(validation, bool) or not isinstance(validation, (int, float)) \
            or not 0 < validation < 1:
        raise ConfigError(f"validation must be a fraction strictly between 0 and 1 or "
                          f"'test', got {validation!r}")

    if validation == "test":
        train_rows = val_rows = None  # train on all of X_train, no index gather needed
    else:
        train_rows, val_rows = split_indices(ds.y_train, validation, seed=seed,
                                             stratify=ds.task == "classification")

    # Fit on the training rows only, after the validation rows were removed.
    scaler.fit(ds.X_train, rows=train_rows)
    if lazy and byte_data(ds.X_train) and byte_data(ds.X_test):
        def scaled(X, rows=None):
            return ScaledRows(X, scaler, dt, rows)
    else:
        def scaled(X, rows=None):
            return scaler.transform(X, dt, rows=rows)
    X_train = scaled(ds.X_train, train_rows)
    X_test = scaled(ds.X_test)
    y_train = ds.y_train if train_rows is None else ds.y_train[train_rows]
    n_classes = 0
    if ds.task == "classification":
        n_classes = len(ds.classes) or int(max(ds.y_train.max(), ds.y_test.max())) + 1
    encode = partial(encode_targets, task=ds.task, n_classes=n_classes, targets=targets, dtype=dt)
    target_scaler = None
    if target_scale != "none":
        if ds.task != "regression":
            raise ConfigError(f"target_scale {target_scale!r} scales regression values; "
                              f"{ds.name} is a {ds.task} set")
        target_scaler = Scaler(target_scale).fit(_column(y_train))

        def encode(y):
            return target_scaler.transform(_column(y), dt)
    Y_train = encode(y_train)
    Y_test = encode(ds.y_test)
    if validation == "test":
        X_val, Y_val = X_test, Y_test
    else:
        X_val = scaled(ds.X_train, val_rows)
        Y_val = encode(ds.y_train[val_rows])
    return Prepared(X_train=X_train, Y_train=Y_train, X_val=X_val, Y_val=Y_val,
                    X_test=X_test, Y_test=Y_test, task=ds.task, classes=list(ds.classes),
                    scaler=scaler, feature_names=list(ds.feature_names),
                    image_shape=ds.image_shape, source=ds.source, channels=ds.channels,
                    fingerprint=ds.fingerprint, target_scaler=target_scaler)


def _column(y) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).reshape(-1, 1)


def saved_target_scaler(info: dict) -> Scaler | None:
    """The target scaling a run's data description (``data.json``) holds, or None."""
    saved = info.get("target_scaler")
    return None if saved is None else Scaler.from_dict(saved)
