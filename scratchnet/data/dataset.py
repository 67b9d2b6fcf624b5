"""The one type every loader returns: a dataset with a fixed train/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..files import size_text

TASKS = ("classification", "regression")


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
    image_shape:   (rows, cols) when each row of X flattens a 2-D sample, else None: an
              image, or a sequence of rows steps of cols features (which a recurrent
              first layer reads row by row: :func:`~scratchnet.data.sequence_shape_of`).
    channels: the images' channels (1 for grayscale); a row holds channels*rows*cols
              values in (channel, row, col) order.
    source:   where it was read from (the folder of IDX files, the CSV file), or None for
              the sets that ship with scikit-learn.
    fingerprint: for a data set read from one file (CSV), ``{"bytes", "sha256"}`` of the
              bytes read, so a later reading can tell whether the file changed.
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
    source: str | None = None
    channels: int = 1
    fingerprint: dict | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def sample_shape(self) -> tuple[int, int, int] | None:
        """(channels, rows, cols) for images, the shape a convolution takes; else None."""
        return sample_shape_of(self)

    def __repr__(self) -> str:  # the default repr would print the arrays
        return (f"Dataset({self.name!r}, task={self.task!r}, train={self.X_train.shape} "
                f"{self.X_train.dtype}, test={self.X_test.shape}, "
                f"classes={len(self.classes)})")


@dataclass(frozen=True, eq=False)
class Description:
    """What a dataset is, known without loading it where that is cheap: its task, row
    counts, features per row, number of classes (0 for regression) and image shape.
    ``y_train`` holds the training labels when they were read anyway (a CSV file), so
    that a validation split can be sized exactly. A data set that cuts its own
    validation part and encodes its own targets (a text) says how many rows validate
    (``n_val``) and how its targets are given (``targets``: ``"ids"``, a class id at every
    step of a sequence)."""

    name: str
    task: str
    n_train: int
    n_test: int
    n_features: int
    n_classes: int = 0
    image_shape: tuple[int, int] | None = None
    y_train: np.ndarray | None = None
    channels: int = 1
    n_val: int | None = None
    targets: str | None = None

    @property
    def sample_shape(self) -> tuple[int, int, int] | None:
        return sample_shape_of(self)

    @classmethod
    def of(cls, ds: "Dataset") -> "Description":
        n_classes = len(ds.classes) if ds.task == "classification" else 0
        return cls(ds.name, ds.task, len(ds.X_train), len(ds.X_test), ds.n_features,
                   n_classes, ds.image_shape, ds.y_train, ds.channels)


def sample_shape_of(data) -> tuple[int, int, int] | None:
    """(channels, rows, cols) of a dataset (or its description or prepared arrays) of
    images, else None."""
    if not data.image_shape:
        return None
    return (int(data.channels), *(int(n) for n in data.image_shape))


def check_memory(path, what: str, n_bytes: int) -> None:
    """A DataError when reading ``path`` would hold more than the share of the machine's
    memory a run may use (what ``validate`` plans with:
    :data:`~scratchnet.experiment.plan.MEMORY_SHARE`), checked before it is read:
    ``what`` says what it holds (``"its arrays"``)."""
    from ..experiment.plan import MEMORY_SHARE, physical_memory

    budget = MEMORY_SHARE * physical_memory()
    if n_bytes > budget:
        raise DataError(f"{path}: {what} would take {size_text(n_bytes)} of memory, more "
                        f"than the {size_text(int(budget))} this machine can give "
                        f"({MEMORY_SHARE:.0%} of its memory)")


def canonical_name(name) -> str:
    """A dataset name as the registry spells it: ``"Fashion-MNIST"`` -> ``"fashion_mnist"``."""
    return str(name).strip().lower().replace("-", "_")


def split_train_test(name: str, X, y, task: str, test_fraction: float, seed: int):
    """Seeded train/test split, stratified for classification (same class proportions):
    ``X_train, X_test, y_train, y_test`` as scikit-learn's ``train_test_split`` gives them
    (:mod:`.split`)."""
    from .split import train_test_indices

    try:
        train, test = train_test_indices(np.asarray(y), test_fraction, seed,
                                         stratify=task == "classification")
        return X[train], X[test], y[train], y[test]
    except ValueError as exc:  # e.g. a class with a single row cannot be stratified
        raise DataError(f"cannot split {name} into train/test with test_fraction="
                        f"{test_fraction}: {exc}") from exc
