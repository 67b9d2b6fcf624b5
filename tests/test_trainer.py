"""The trainer on real data (scikit-learn's bundled digits and diabetes): accuracy of the
README example, history records, early stopping, divergence, and checkpoints that resume
bit for bit."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split

import scratchnet as sn

RECORD_KEYS = {"epoch", "train_loss", "val_loss", "accuracy", "lr", "seconds"}


def standardise(train, *others):
    """Per-feature scaling with the training set's statistics only (constant pixels of
    the digits keep a scale of 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    return [(a - mean) / std for a in (train, *others)]


def digits_split():
    """Train / validation / test split of the 1,797 8x8 digits; labels one-hot."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.2,
                                                      random_state=0, stratify=y_train)
    X_train, X_val, X_test = standardise(X_train, X_val, X_test)
    eye = np.eye(10)
    return X_train, eye[y_train], X_val, eye[y_val], X_test, eye[y_test]


@pytest.fixture(scope="module")
def digits():
    return digits_split()


def readme_network(seed=20190119, dropout=0.0):
    return sn.NeuralNetwork([sn.Dense(64, sn.Tanh(), weight_init="glorot", dropout=dropout),
                             sn.Dense(10, sn.Linear(), weight_init="glorot")],
                            sn.SoftmaxCrossEntropy(), seed=seed)


def readme_optimizer():
    return sn.SGDMomentum(0.1, momentum=0.9, final_lr=0.01, decay_type="linear")


class Snapshots(sn.Callback):
    """The network's weights at every evaluation, by epoch."""

    def __init__(self):
        self.weights = {}

    def on_evaluate(self, trainer, record):
        self.weights[record["epoch"]] = trainer.net.state_dict()


class StopAt(sn.Callback):
    """Asks the trainer to stop after batch ``batch`` (0-based) of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        if (epoch, batch) == (self.epoch, self.batch % n_batches):
            trainer.stop_requested = True


def assert_same_weights(net_a, net_b):
    a, b = net_a.state_dict(), net_b.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


# -- the README example -------------------------------------------------------------------
def test_readme_example_reaches_its_accuracy(digits):
    X_train, Y_train, X_val, Y_val, X_test, Y_test = digits
    net = readme_network()
    trainer = sn.Trainer(net, readme_optimizer())
    history = trainer.fit(X_train, Y_train, X_val, Y_val, epochs=20, eval_every=5,
                          batch_size=60, seed=1)
    test = sn.evaluate(net, X_test, Y_test)
    # measured: test accuracy 0.9689, validation accuracy 0.9704 at epoch 20
    # (numpy 2, float32, this seed); the threshold leaves room for other BLAS builds
    assert test["accuracy"] >= 0.94
    assert history[-1]["accuracy"] >= 0.94
    assert history[-1]["val_loss"] < history[0]["val_loss"] < math.log(10)
    assert test["loss"] < 0.2
    # the decay schedule's rates, as recorded
    assert history[0]["lr"] == pytest.approx(0.1 - 0.09 * 4 / 19)
    assert history[-1]["lr"] == pytest.approx(0.01)


def test_history_records(digits):
    X_train, Y_train, X_val, Y_val, *_ = digits
    history = sn.Trainer(readme_network(), readme_optimizer()).fit(
        X_train[:300], Y_train[:300], X_val, Y_val, epochs=7, eval_every=3, batch_size=60)
    assert [r["epoch"] for r in history] == [3, 6, 7]  # every eval_every, and the last
    assert history.epochs_run == 7 and not history.stopped_early and not history.interrupted
    assert history.task == "classification"
    for r in history:
        assert set(r) == RECORD_KEYS
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["seconds"] >= 0.0
        assert all(np.isfinite(r[k]) for k in ("train_loss", "val_loss", "lr"))
    assert history.best_epoch in (3, 6, 7)
    assert history.best_val_loss == min(r["val_loss"] for r in history)
    json.dumps(history.to_dict())  # the CLI writes it as JSON


def test_history_without_validation_data(digits):
    X_train, Y_train, *_ = digits
    history = sn.Trainer(readme_network(), sn.SGD(0.05)).fit(
        X_train[:120], Y_train[:120], epochs=2, eval_every=1, batch_size=60)
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(r["val_loss"] is None for r in history)


# -- early stopping -----------------------------------------------------------------------
def last_epoch_early_stopping_allows(first_loss: float, stopper: sn.EarlyStopping) -> int:
    """The latest epoch a run evaluated every epoch can reach under ``stopper``: a loss is
    never below 0, so at most ``first_loss / min_delta`` evaluations improve on the best by
    more than ``min_delta``; each is followed by at most ``patience - 1`` that do not, and
    the ``patience``-th after the last one stops the run. This makes the stop a property
    of the rule, not of one machine's trajectory."""
    improvements = math.floor(first_loss / stopper.min_delta)
    return 1 + (improvements + 1) * stopper.patience


def best_by_the_rule(val: dict[int, float], min_delta: float) -> int:
    """The epoch the rule calls best: the last to beat the best before it by ``min_delta``."""
    best, epoch = math.inf, None
    for e, loss in sorted(val.items()):
        if loss < best - min_delta:
            best, epoch = loss, e
    return epoch


def test_early_stopping_true_is_patience_one_restoring_the_best():
    stopper = sn.EarlyStopping.of(True)
    assert (stopper.patience, stopper.min_delta, stopper.restore_best) == (1, 0.0, True)


@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_restores_the_best_weights(digits, patience):
    """Thirty training images; a ``min_delta`` of 0.5 bounds the number of improvements
    (:func:`last_epoch_early_stopping_allows`), so the run must stop, past its best
    evaluation, and put the best weights back."""
    X_train, Y_train, X_val, Y_val, *_ = digits
    net = sn.NeuralNetwork([sn.Dense(64, sn.Tanh()), sn.Dense(10)], sn.SoftmaxCrossEntropy(),
                           seed=0)
    snapshots = Snapshots()
    stopper = sn.EarlyStopping(patience=patience, min_delta=0.5)
    history = sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9)).fit(
        X_train[:30], Y_train[:30], X_val, Y_val, epochs=40, eval_every=1, batch_size=10,
        early_stopping=stopper, callbacks=[snapshots])
    assert last_epoch_early_stopping_allows(history[0]["val_loss"], stopper) < 40
    assert history.stopped_early
    assert history.epochs_run < 40
    val = {r["epoch"]: r["val_loss"] for r in history}
    best = history.best_epoch
    assert best < history.epochs_run  # the run went past its best evaluation
    assert best == best_by_the_rule(val, stopper.min_delta)
    assert val[best] == history.best_val_loss
    assert history.epochs_run - best == patience
    final = net.state_dict()
    for name, value in snapshots.weights[best].items():
        assert np.array_equal(final[name], value), name
    last = snapshots.weights[history.epochs_run]
    assert not np.array_equal(final["layers.0.W"], last["layers.0.W"])
    # and the restored network scores what the best evaluation scored
    assert sn.evaluate(net, X_val, Y_val)["loss"] == pytest.approx(val[best], rel=1e-6)


def test_early_stopping_patience_and_min_delta():
    w = np.zeros(3)
    arrays = {"w": w}
    stopper = sn.EarlyStopping(patience=2, min_delta=0.1)
    w[:] = 1
    assert stopper.update(1, 1.0, arrays) is False and stopper.best_epoch == 1
    w[:] = 2
    assert stopper.update(2, 0.95, arrays) is False  # better, but not by min_delta
    assert stopper.best_epoch == 1 and stopper.wait == 1
    w[:] = 3
    assert stopper.update(3, 0.85, arrays) is False  # 0.85 < 1.0 - 0.1: the new best
    assert stopper.best_epoch == 3 and stopper.best == 0.85 and stopper.wait == 0
    w[:] = 4
    assert stopper.update(4, 0.80, arrays) is False  # wait 1
    w[:] = 5
    assert stopper.update(5, 0.76, arrays) is True  # wait 2 == patience: stop
    assert stopper.best_epoch == 3
    assert stopper.restore(arrays) and np.array_equal(w, [3, 3, 3])  # a copy, not an alias

    tracker = sn.EarlyStopping(patience=None)
    assert not any(tracker.update(e, 1.0 + e, arrays) for e in range(1, 20))
    with pytest.raises(sn.ConfigError, match="0"):
        sn.EarlyStopping(patience=0)
    with pytest.raises(sn.ConfigError, match="-1"):
        sn.EarlyStopping(min_delta=-1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_loss_never_becomes_best(bad):
    arrays = {"w": np.ones(2)}
    stopper = sn.EarlyStopping(patience=5)
    stopper.update(1, bad, arrays)
    assert stopper.best_epoch is None and stopper.best == math.inf
    assert stopper.restore(arrays) is False
    stopper.update(2, 0.5, arrays)
    arrays["w"][:] = 7
    stopper.update(3, bad, arrays)
    assert stopper.best_epoch == 2 and stopper.best == 0.5 and stopper.wait == 1
    stopper.restore(arrays)
    assert np.array_equal(arrays["w"], [1, 1])


def test_divergence_names_epoch_and_batch(digits):
    X_train, Y_train, *_ = digits
    net = sn.NeuralNetwork([sn.Dense(64, "linear"), sn.Dense(10, "linear")],
                           sn.MeanSquaredError(), seed=0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # the overflow that is the point
        with pytest.raises(sn.DivergenceError, match=r"epoch 1, batch \d+") as info:
            sn.Trainer(net, sn.SGD(1e4)).fit(X_train, Y_train, epochs=3, batch_size=32)
    assert "learning rate 10000" in str(info.value)


# -- checkpoints --------------------------------------------------------------------------
FIT = dict(epochs=4, eval_every=1, batch_size=50, seed=11)


def _trainer(dropout):
    return sn.Trainer(readme_network(seed=5, dropout=dropout), readme_optimizer())


def _save_and_load(meta, arrays, path):
    """What the CLI does: meta as JSON, arrays in a file."""
    path.with_suffix(".json").write_text(json.dumps(meta))
    np.savez(path.with_suffix(".npz"), **arrays)
    with np.load(path.with_suffix(".npz")) as f:
        loaded = {k: f[k] for k in f.files}
    return json.loads(path.with_suffix(".json").read_text()), loaded


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("stop_epoch, stop_batch", [(1, 7), (0, 0), (2, -1)])
def test_resume_is_bit_identical(digits, tmp_path, dropout, stop_epoch, stop_batch):
    X_train, Y_train, X_val, Y_val, *_ = digits
    full = _trainer(dropout)
    full_history = full.fit(X_train, Y_train, X_val, Y_val, **FIT)

    first = _trainer(dropout)
    partial = first.fit(X_train, Y_train, X_val, Y_val, callbacks=[StopAt(stop_epoch, stop_batch)],
                        **FIT)
    assert partial.interrupted
    meta, arrays = _save_and_load(*first.checkpoint(), tmp_path / "ckpt")

    second = _trainer(dropout)  # a fresh network, optimizer and trainer
    resumed = second.fit(X_train, Y_train, X_val, Y_val, resume=(meta, arrays), **FIT)
    assert_same_weights(full.net, second.net)
    for slot in ("layers.0.W", "layers.1.B"):
        assert np.array_equal(full.optimizer.state_dict(full.net.params())[f"{slot}.velocity"],
                              second.optimizer.state_dict(second.net.params())[f"{slot}.velocity"])

    def strip(records):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert strip(resumed.records) == strip(full_history.records)
    assert resumed.epochs_run == full_history.epochs_run and not resumed.interrupted
    assert resumed.best_epoch == full_history.best_epoch


def test_resume_with_early_stopping(digits):
    """The best weights travel in the checkpoint: the resumed run restores the same ones."""
    X_train, Y_train, X_val, Y_val, *_ = digits
    kwargs = dict(epochs=12, eval_every=1, batch_size=10, seed=3)
    data = (X_train[:30], Y_train[:30], X_val, Y_val)

    def make():
        net = sn.NeuralNetwork([sn.Dense(64, sn.Tanh()), sn.Dense(10)], sn.SoftmaxCrossEntropy(),
                               seed=0)
        return sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9))

    def stopper():  # it must stop within 12 epochs (test_early_stopping_restores_...)
        return sn.EarlyStopping(patience=3, min_delta=0.5)

    full = make()
    expected = full.fit(*data, early_stopping=stopper(), **kwargs)
    assert last_epoch_early_stopping_allows(expected[0]["val_loss"], stopper()) < 12
    assert expected.stopped_early
    first = make()
    first.fit(*data, early_stopping=stopper(), callbacks=[StopAt(expected.best_epoch, 1)],
              **kwargs)
    meta, arrays = first.checkpoint()
    meta = json.loads(json.dumps(meta))
    second = make()
    resumed = second.fit(*data, early_stopping=stopper(), resume=(meta, arrays), **kwargs)
    assert resumed.stopped_early and resumed.best_epoch == expected.best_epoch
    assert_same_weights(full.net, second.net)


def test_resume_refuses_a_different_batch_size(digits):
    X_train, Y_train, *_ = digits
    first = _trainer(0.0)
    first.fit(X_train[:200], Y_train[:200], callbacks=[StopAt(0, 1)], **FIT)
    with pytest.raises(sn.ConfigError, match="batch_size 20"):
        _trainer(0.0).fit(X_train[:200], Y_train[:200], resume=first.checkpoint(),
                          **{**FIT, "batch_size": 20})


# -- regression ---------------------------------------------------------------------------
def test_diabetes_regression_reports_mae_rmse_r2():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    X_train, X_test = standardise(X_train, X_test)
    mean, std = y_train.mean(), y_train.std()
    Y_train, Y_test = ((y_train - mean) / std)[:, None], ((y_test - mean) / std)[:, None]
    net = sn.NeuralNetwork([sn.Dense(13, "sigmoid"), sn.Dense(1, "linear")],
                           sn.MeanSquaredError(), seed=20190501)
    history = sn.Trainer(net, sn.SGD(0.01)).fit(X_train, Y_train, X_test, Y_test, epochs=50,
                                                eval_every=10, batch_size=32, seed=1)
    assert history.task == "regression"
    last = history[-1]
    assert set(last) == {"epoch", "train_loss", "val_loss", "mae", "rmse", "r2", "lr", "seconds"}
    # measured: r2 0.405, rmse 0.695 (in standard deviations of the target), mae 0.563
    # (44.7 in the target's units)
    assert last["r2"] > 0.3
    assert 0 < last["mae"] <= last["rmse"] < 0.85
    # one output: the mean squared error is the squared rmse
    assert last["rmse"] == pytest.approx(math.sqrt(last["val_loss"]), rel=1e-5)
    prediction = net.predict(X_test)
    assert last["r2"] == pytest.approx(sn.r2(prediction, Y_test), rel=1e-6)


# -- BLAS threads ----------------------------------------------------------------------
def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return min(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_fit_limits_blas_threads_while_it_runs_and_restores_them():
    import numpy as np
    from scratchnet import Dense, Linear, NeuralNetwork, SGD, SoftmaxCrossEntropy, Tanh, Trainer
    from scratchnet.nn.callbacks import Callback
    from threadpoolctl import threadpool_limits

    seen = []

    class Spy(Callback):
        def on_epoch_end(self, trainer, epoch):
            seen.append(_blas_threads())

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        net = NeuralNetwork([Dense(4, Tanh()), Dense(3, Linear())], SoftmaxCrossEntropy(), seed=0)
        Trainer(net, SGD(0.1), [Spy()], blas_threads=1).fit(X, Y, epochs=2, batch_size=8)
        assert seen == [1, 1]
        assert _blas_threads() == before  # restored after fit
        seen.clear()
        Trainer(net, SGD(0.1), [Spy()], blas_threads=None).fit(X, Y, epochs=1, batch_size=8)
        assert seen == [before]  # None leaves the library's setting alone


def test_blas_threads_must_be_positive():
    import pytest
    from scratchnet import ConfigError, Dense, NeuralNetwork, SGD, SoftmaxCrossEntropy, Trainer

    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), seed=0)
    with pytest.raises(ConfigError, match="blas_threads"):
        Trainer(net, SGD(0.1), blas_threads=0)


# -- the snippet, on real MNIST ---------------------------------------------------
def test_the_notebook_snippet_trains_mnist_from_python():
    """The book's calls, verbatim apart from the epoch count, on real MNIST."""
    import os
    from pathlib import Path

    import pytest
    from scratchnet import (Dense, Linear, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy,
                            Tanh, Trainer)
    from scratchnet.data import load_dataset, prepare

    root = os.environ.get("SCRATCHNET_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not available (set SCRATCHNET_DATA_DIR)")
    data = prepare(load_dataset("mnist", data_dir=root, download=False), scale="global",
                   validation="test")
    X_train, y_train, X_test, y_test = data.X_train, data.Y_train, data.X_test, data.Y_test
    net = NeuralNetwork(layers=[Dense(neurons=89, activation=Tanh(), weight_init="glorot"),
                                Dense(neurons=10, activation=Linear(), weight_init="glorot")],
                        loss=SoftmaxCrossEntropy(), seed=20190119)
    trainer = Trainer(net, SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear"))
    history = trainer.fit(X_train, y_train, X_test, y_test, epochs=2, eval_every=1,
                          batch_size=60, seed=20190119, early_stopping=True)
    assert [r["epoch"] for r in history] == [1, 2]
    # measured: 91.3% after one epoch, 94.6% after two (seed 20190119)
    assert history[-1]["accuracy"] > 0.93
