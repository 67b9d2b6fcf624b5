"""scikit-learn's bundled sets (digits, iris, wine, breast_cancer, diabetes): nothing is
downloaded; each is split into train and test with ``test_fraction``, stratified for
classification and seeded by ``seed``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .dataset import Dataset, Description, split_train_test

#: name -> (task, rows, features, classes); what :func:`describe_sklearn_dataset` says
#: without importing scikit-learn (a test checks it against the real sets)
SHAPES = {"digits": ("classification", 1797, 64, 10), "iris": ("classification", 150, 4, 3),
          "wine": ("classification", 178, 13, 3),
          "breast_cancer": ("classification", 569, 30, 2),
          "diabetes": ("regression", 442, 10, 0)}
TASK_OF = {name: shape[0] for name, shape in SHAPES.items()}
#: the sets whose rows are images: name -> (height, width)
IMAGE_SHAPES = {"digits": (8, 8)}
#: the sets read from the file scikit-learn ships, without importing it (:func:`_digits`);
#: the others import it, which is most of a small run's memory
READ_WITHOUT_SKLEARN = ("digits",)


def describe_sklearn_dataset(name: str, *, test_fraction: float = 0.2, seed: int = 0
                             ) -> Description:
    """What :func:`load_sklearn_dataset` would give, from the table, loading nothing.
    scikit-learn's ``train_test_split`` puts ``ceil(test_fraction * n)`` rows in the test
    split."""
    task, n, features, classes = SHAPES[name]
    n_test = math.ceil(test_fraction * n)
    return Description(name, task, n - n_test, n_test, features, classes,
                       IMAGE_SHAPES.get(name))


def _digits():
    """``sklearn.datasets.load_digits()``'s data, target, class names and feature names,
    read from the file scikit-learn ships without importing scikit-learn (and SciPy),
    which is most of a small run's start-up. A test holds the two equal."""
    import gzip
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",")
    return SimpleNamespace(data=table[:, :-1], target=table[:, -1].astype(int),
                           target_names=np.arange(10),
                           feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)])


def load_sklearn_dataset(name: str, *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """One of scikit-learn's bundled sets (no download), split by
    :func:`~scratchnet.data.dataset.split_train_test`."""
    task = TASK_OF[name]
    if name == "digits":
        bunch = _digits()
    elif name == "diabetes":
        from sklearn import datasets as skd

        # The raw measurements; sklearn's default pre-scales every feature (which would
        # hide what our own Scaler does).
        bunch = skd.load_diabetes(scaled=False)
    else:
        from sklearn import datasets as skd

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
    X_train, X_test, y_train, y_test = split_train_test(name, X, y, task, test_fraction, seed)
    return Dataset(name=name, X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, task=task, classes=classes, feature_names=feature_names,
                   image_shape=IMAGE_SHAPES.get(name))

