"""Data for networks over sequences: the limits every sequence data set shares, how a
sample is read as a sequence, and a generated task, the adding problem.

A network whose first layer is recurrent reads each sample as (time, features). Samples
stored as 2-D arrays (a Dataset's ``image_shape``, (rows, cols)) are read row by row:
an image (1, H, W) is H steps of W features (row-by-row MNIST), and the sequences of an
``.npz`` file's (N, T, F) ``x`` arrays or of the adding problem are T steps of F
features, as stored (:func:`sequence_shape_of`).

The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le, Jaitly & Hinton
2015): each sample is ``length`` steps of two features, a value drawn uniformly from
[0, 1) and a marker, 1 at exactly two steps (one in each half of the sequence) and 0
elsewhere; the target is the sum of the two marked values. The sum of two independent
U(0, 1) values has mean 1 and variance 1/12 + 1/12, so always predicting 1.0 scores a
mean squared error of 1/6: the baseline a network must beat by remembering two values
across the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from ..errors import ConfigError, ShapeError
from ..options import Doc, Ge, Gt, Le, Lt, check_fields
from .dataset import Dataset, Description, sample_shape_of

#: the most steps one sequence (a text's window, an adding problem's sample) may hold
MAX_SEQ_LEN = 10_000
#: the most numbers the samples of a sequence data set may hold: windows x steps of a
#: text (each of inputs and targets), samples x steps x features of the adding problem
#: (200 MB each as float32)
MAX_SEQUENCE_VALUES = 50_000_000

SeqLen = Annotated[int, Ge(1), Le(MAX_SEQ_LEN)]


def check_sequence_values(count: int, what: str, key: str) -> None:
    """A ConfigError naming ``key`` when ``count`` numbers (``what`` they are) exceed
    :data:`MAX_SEQUENCE_VALUES`."""
    if count > MAX_SEQUENCE_VALUES:
        raise ConfigError(f"{what} make {count:,} numbers, more than the "
                          f"{MAX_SEQUENCE_VALUES:,} a sequence data set may hold "
                          f"(data.sequences.MAX_SEQUENCE_VALUES)", key=(key,))


def sequence_shape_of(data, shape=None) -> tuple[int, int]:
    """(time, features): how a network whose first layer is recurrent reads each sample of
    ``data`` (a Dataset, Description or Prepared), given a sample ``shape`` or not (the
    experiment's ``data.shape``: [time, features], or [1, height, width]).

    2-D samples (images of one channel, stored sequences) are read row by row; flat rows
    need ``shape``; images of several channels are refused (their rows interleave the
    channels' values, which no reshape reads as steps)."""
    n_features = int(data.n_features)
    if shape is not None:
        shape = tuple(int(n) for n in shape)
        if math.prod(shape) != n_features or len(shape) not in (2, 3):
            raise ShapeError(f"got shape {list(shape)}: a recurrent first layer reads "
                             f"[time, features] (or [1, height, width]) holding the "
                             f"{n_features} values of a row of {data.name}")
    else:
        shape = sample_shape_of(data)
    if shape is None:
        raise ShapeError(f"{data.name} has flat rows of {n_features} values and the first "
                         f"layer is recurrent: give data.shape, [time, features]")
    if len(shape) == 3:
        channels, height, width = shape
        if channels != 1:
            raise ShapeError(f"a recurrent first layer reads one-channel images row by row; "
                             f"{data.name} has images of {channels} channels")
        return (height, width)
    return shape


# -- the adding problem ---------------------------------------------------------------------
@dataclass(frozen=True)
class AddingOptions:
    """The adding problem's options (see the module docstring)."""

    length: Annotated[int, Ge(2), Le(MAX_SEQ_LEN), Doc(
        "steps of each sequence; the two marked values lie this far apart at most")] = 50
    samples: Annotated[int, Ge(2), Doc("sequences generated, training and test")] = 10_000
    test_fraction: Annotated[float, Gt(0), Lt(1), Doc(
        "share of the samples held out as the test split (the last ones)")] = 0.2
    seed: Annotated[int, Doc("seeds the generator: the same seed, the same samples")] = 0

    def __post_init__(self):
        check_fields(self)
        check_sequence_values(self.samples * self.length * 2,
                              f"{self.samples:,} samples of {self.length} steps", "samples")
        n_test = self.n_test
        if not 0 < n_test < self.samples:
            raise ConfigError(f"test_fraction={self.test_fraction} holds out {n_test} of "
                              f"{self.samples} samples; expected a share that leaves samples "
                              "on both sides", key=("test_fraction",))

    @property
    def n_test(self) -> int:
        return int(round(self.samples * self.test_fraction))


def adding_problem(length: int, samples: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` sequences of the adding problem: X (samples, length, 2) float64, a
    uniform value and a marker at every step, and y (samples,) the sums of the two marked
    values. One marker lies in the first ``length // 2`` steps, the other in the rest."""
    values = rng.random((samples, length))
    half = length // 2
    first = rng.integers(0, half, samples)
    second = rng.integers(half, length, samples)
    markers = np.zeros((samples, length))
    rows = np.arange(samples)
    markers[rows, first] = markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), y


def load_adding(options: AddingOptions | None = None) -> Dataset:
    """The adding problem as a regression data set: each row flattens a (length, 2)
    sequence (``image_shape``: a recurrent first layer reads it as ``length`` steps of
    2 features; a dense network sees 2 * length features); the last ``n_test`` samples
    are the test split."""
    o = options or AddingOptions()
    X, y = adding_problem(o.length, o.samples, np.random.default_rng(o.seed))
    X = X.reshape(o.samples, -1)
    n_train = o.samples - o.n_test
    names = [f"{kind}_{t}" for t in range(o.length) for kind in ("value", "marker")]
    return Dataset(name="adding", X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:],
                   y_test=y[n_train:], task="regression", classes=[], feature_names=names,
                   image_shape=(o.length, 2))


def describe_adding(options: AddingOptions | None = None) -> Description:
    """What :func:`load_adding` gives, without generating it."""
    o = options or AddingOptions()
    return Description("adding", "regression", o.samples - o.n_test, o.n_test, 2 * o.length,
                       0, (o.length, 2))
