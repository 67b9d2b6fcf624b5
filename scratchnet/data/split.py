"""The seeded train/test split of the data sets without a published one: scikit-learn's
``train_test_split(X, y, test_size=f, random_state=seed, stratify=...)``, row for row.

It is computed here rather than imported because importing scikit-learn (and SciPy with
it) is most of a small run's start-up. The algorithm is scikit-learn's (BSD-3-Clause):
``ShuffleSplit`` when not stratified, ``StratifiedShuffleSplit`` with its
``_approximate_mode`` when stratified, drawing from ``np.random.RandomState(seed)`` in the
same order. ``tests/test_data.py`` holds the two equal over many sets, fractions and seeds.
"""

from __future__ import annotations

import math

import numpy as np


def train_test_indices(y: np.ndarray, test_fraction: float, seed: int,
                       stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of the split of ``n = len(y)`` rows: ``ceil(test_fraction
    * n)`` test rows; with ``stratify``, each class of ``y`` (n,) in its proportion.
    ValueError (scikit-learn's words) for a split that cannot be made."""
    n = len(y)
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(f"With n_samples={n}, test_size={test_fraction} and train_size=None, "
                         "the resulting train set will be empty. Adjust any of the "
                         "aforementioned parameters.")
    rng = np.random.RandomState(seed)
    if not stratify:
        permutation = rng.permutation(n)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError("The least populated classes in y have only 1 member, which is too "
                         "few. The minimum number of groups for any class cannot be less "
                         f"than 2. Classes with too few members are: "
                         f"{classes[class_counts < 2].tolist()}")
    for what, size in (("train_size", n_train), ("test_size", n_test)):
        if size < len(classes):
            raise ValueError(f"The {what} = {size} should be greater or equal to the number "
                             f"of classes = {len(classes)}")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(classes)):
        rows = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(rows[:n_i[i]])
        test.extend(rows[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """Rows to draw from each class so that ``n_draws`` are drawn in proportion: the
    floors of the proportional shares, the rest to the largest remainders, ties broken
    at random (scikit-learn's ``sklearn.utils.extmath._approximate_mode``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)
