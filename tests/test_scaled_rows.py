"""8-bit data kept as 8-bit: ScaledRows gives the very numbers the eager scaling gives,
and training on it is training on the scaled copy, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from scratchnet import Dense, NeuralNetwork, SGDMomentum, Trainer
from scratchnet.data import Dataset, ScaledRows, Scaler, prepare
from scratchnet.errors import ShapeError
from scratchnet.nn.rows import as_rows, is_row_source


def _bytes_dataset(n=300, d=16, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, d), dtype=np.uint8)
    X[:, 0] = 7  # a constant feature
    y = rng.integers(0, classes, n)
    return Dataset(name="bytes", task="classification", X_train=X, y_train=y,
                   X_test=X[: n // 3].copy(), y_test=y[: n // 3].copy(),
                   classes=list(range(classes)), feature_names=[f"f{i}" for i in range(d)])


@pytest.mark.parametrize("kind", ["global", "standard", "minmax", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("features", [16, 15])  # even: bytes read two at a time
def test_lazy_rows_are_the_eager_numbers(kind, dtype, features):
    ds = _bytes_dataset(d=features)
    eager = prepare(ds, scale=kind, validation=0.2, dtype=dtype)
    lazy = prepare(ds, scale=kind, validation=0.2, dtype=dtype, lazy=True)
    for name in ("X_train", "X_val", "X_test"):
        rows = getattr(lazy, name)
        assert isinstance(rows, ScaledRows) and rows.dtype == np.dtype(dtype)
        want = getattr(eager, name)
        assert rows.shape == want.shape and len(rows) == len(want)
        assert np.array_equal(rows[:], want)  # bit for bit
        assert np.array_equal(np.asarray(rows), want)
        idx = np.array([5, 0, len(want) - 1, 5])
        assert np.array_equal(rows.take_rows(idx), want[idx])
        assert np.array_equal(rows[idx], want[idx])
        assert np.array_equal(rows[3:40:3], want[3:40:3])
        assert np.array_equal(rows[-1], want[-1])
    assert lazy.n_features == eager.n_features


def test_float_features_are_scaled_up_front_even_when_lazy():
    ds = _bytes_dataset()
    ds.X_train = ds.X_train.astype(np.float64)
    ds.X_test = ds.X_test.astype(np.float64)
    assert isinstance(prepare(ds, scale="global", lazy=True).X_train, np.ndarray)


def test_rows_read_as_images():
    ds = _bytes_dataset(d=16)
    data = prepare(ds, scale="global", validation=0.2, lazy=True)
    eager = prepare(ds, scale="global", validation=0.2)
    images = data.X_train.reshape((len(data.X_train), 1, 4, 4))
    assert images.shape == (len(eager.X_train), 1, 4, 4) and images.ndim == 4
    out = np.empty((3, 1, 4, 4), np.float32)
    assert images.take_rows([2, 1, 0], out) is out
    assert np.array_equal(out, eager.X_train[[2, 1, 0]].reshape(3, 1, 4, 4))
    with pytest.raises(ShapeError):
        data.X_train.reshape((len(data.X_train), 1, 3, 5))
    with pytest.raises(ShapeError):
        data.X_train.reshape((7, 16))


def test_a_row_source_must_come_in_the_networks_dtype():
    ds = _bytes_dataset()
    rows = ScaledRows(ds.X_train, Scaler("global").fit(ds.X_train), "float64")
    assert is_row_source(rows) and not is_row_source(np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="float64"):
        as_rows(rows, np.dtype(np.float32))


def _net():
    return NeuralNetwork([Dense(8, "tanh"), Dense(3, "linear")], "softmax_cross_entropy",
                         seed=3)


def test_training_on_rows_is_training_on_the_scaled_copy():
    ds = _bytes_dataset()
    runs = []
    for lazy in (False, True):
        data = prepare(ds, scale="global", validation=0.2, lazy=lazy)
        trainer = Trainer(_net(), SGDMomentum(0.1, momentum=0.9))
        history = trainer.fit(data.X_train, data.Y_train, data.X_val, data.Y_val, epochs=3,
                              eval_every=1, batch_size=32, seed=5)
        runs.append((trainer.net.state_dict(), history.records,
                     trainer.evaluate(data.X_test, data.Y_test)))
    (w_eager, rec_eager, test_eager), (w_lazy, rec_lazy, test_lazy) = runs
    for name in w_eager:
        assert np.array_equal(w_eager[name], w_lazy[name])
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rec_eager]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rec_lazy]
    assert test_eager == test_lazy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_pair_of_bytes_reads_as_the_eager_numbers(dtype):
    """Even widths look two bytes up at once, in a table of all 65,536 pairs: every pair,
    in both orders, is the eager scaling's numbers."""
    first, second = np.divmod(np.arange(65536), 256)
    X = np.stack([first, second], axis=1).astype(np.uint8).reshape(256, 512)
    scaler = Scaler("global").fit(X)
    rows = ScaledRows(X, scaler, dtype)
    want = scaler.transform(X, dtype)
    idx = np.arange(256)[::-1]
    assert np.array_equal(rows.take_rows(idx), want[idx])
    assert len(np.unique(want)) == 256  # every byte value is there
