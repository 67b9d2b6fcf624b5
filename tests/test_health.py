"""Per-layer health (``train --health``, :class:`scratchnet.nn.HealthMonitor`): the numbers
on networks built to be dead or saturated, exactly; the update ratio against an
independent measurement; convolutions per channel; and that watching changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from conftest import run_cli, write_config
from scratchnet.nn.health import DYING, LIMITS

RNG = np.random.default_rng(0)
#: positive inputs, so that a unit's sign is set by its weights and bias alone
X = np.abs(RNG.normal(size=(96, 6))) + 0.1
Y = np.eye(3)[RNG.integers(0, 3, size=96)]


def built(layers, loss=None) -> sn.NeuralNetwork:
    net = sn.NeuralNetwork(layers, loss or sn.SoftmaxCrossEntropy(), seed=0)
    return net.build(X.shape[1:])


def fit(net, monitor, optimizer=None, **kwargs):
    """Train from the weights set by hand (``restart=False``)."""
    args = dict(epochs=2, eval_every=1, batch_size=32, seed=0, restart=False) | kwargs
    return sn.Trainer(net, optimizer or sn.SGD(0.1), callbacks=[monitor]).fit(
        X, Y, X, Y, **args)


def first_layer(history, epoch=-1) -> dict:
    return history[epoch]["health"][0]


def test_a_layer_forced_dead():
    """Units 0-3 of 8 get a bias of -1000: their input is negative for every example, so
    they output 0 and get no gradient; units 4-7 get +1000 and are never off."""
    net = built([sn.Dense(8, "relu"), sn.Dense(3)])
    B = net.params()[1]
    B.value[0, :4], B.value[0, 4:] = -1000.0, 1000.0
    history = fit(net, sn.HealthMonitor(X))
    h = first_layer(history)
    assert (h["layer"], h["type"], h["units"], h["activation"]) == (0, "Dense(8, relu)", 8, "relu")
    assert h["dead"] == 0.5 and h["inactive"] == 0.5 and h["saturated"] is None
    W = net.params()[0]
    assert np.all(W.grad[:, :4] == 0)  # what "dead" means: no gradient reaches them
    assert history[-1]["health"][1]["dead"] is None  # a linear layer has no dead units


def test_inactive_outputs_without_a_dead_unit():
    """Every unit sums the inputs and subtracts the median sum: each is off for exactly
    half the examples, so half the outputs are inactive and no unit is dead."""
    net = built([sn.Dense(4, "relu"), sn.Dense(3)])
    W, B = net.params()[:2]
    sums = np.sort(X.sum(axis=1))
    W.value[:], B.value[:] = 1.0, -(sums[47] + sums[48]) / 2  # 96 rows: 48 below, 48 above
    h = sn.HealthMonitor(X).measure(net)[0]
    assert (h["dead"], h["inactive"]) == (0.0, 0.5)


def test_a_layer_all_dead_has_no_gradient_and_no_update():
    net = built([sn.Dense(4, "relu"), sn.Dense(3)])
    net.params()[1].value[:] = -1000.0
    h = first_layer(fit(net, sn.HealthMonitor(X)))
    assert (h["dead"], h["inactive"], h["mean"], h["std"]) == (1.0, 1.0, 0.0, 0.0)
    nothing = {"grad_norm": 0.0, "grad_mean": 0.0, "grad_max": 0.0, "update_ratio": 0.0}
    assert h["params"]["W"] == nothing and h["params"]["B"] == nothing


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_a_layer_forced_into_saturation(activation):
    """Units 0-4 of 10 get huge weights (1000 on positive inputs): their outputs sit at the
    upper limit, 1, for every example; units 5-9 have zero weights and bias, so they output
    tanh(0) = 0 or sigmoid(0) = 0.5, the middle of the curve."""
    net = built([sn.Dense(10, activation), sn.Dense(3)])
    W, B = net.params()[:2]
    W.value[:, :5], W.value[:, 5:], B.value[:] = 1000.0, 0.0, 0.0
    h = sn.HealthMonitor(X).measure(net)[0]
    middle = {"tanh": 0.0, "sigmoid": 0.5}[activation]
    assert h["saturated"] == 0.5 and h["dead"] is None and h["inactive"] is None
    assert h["mean"] == pytest.approx((1.0 + middle) / 2, abs=1e-6)
    assert h["std"] == pytest.approx((1.0 - middle) / 2, abs=1e-6)
    # training on: the saturated half learns nothing (its gradient is 0 in float32)
    history = fit(net, sn.HealthMonitor(X), epochs=1)
    assert first_layer(history)["saturated"] == 0.5
    assert np.all(W.grad[:, :5] == 0)


def test_the_update_ratio_of_plain_sgd_with_one_batch_per_epoch():
    """One batch per epoch and plain SGD: the last update is lr * grad exactly."""
    net = built([sn.Dense(5, "tanh"), sn.Dense(3)])
    history = fit(net, sn.HealthMonitor(X), optimizer=sn.SGD(0.1), batch_size=len(X))
    for i, layer in enumerate(net.layers):
        for p in layer.params():
            got = history[-1]["health"][i]["params"][p.name.rsplit(".", 1)[-1]]
            grad = float(np.linalg.norm(p.grad))
            assert got["grad_norm"] == pytest.approx(grad, rel=1e-6)
            assert got["update_ratio"] == pytest.approx(0.1 * grad / np.linalg.norm(p.value),
                                                        rel=1e-5)


class LastUpdate(sn.Callback):
    """Independently: the weights before and after every step (a copy per batch)."""

    def __init__(self):
        self.before = self.after = None

    def on_epoch_start(self, trainer, epoch):
        self.after = trainer.net.state_dict()

    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        self.before, self.after = self.after, trainer.net.state_dict()


def test_the_update_ratio_with_momentum_and_several_batches():
    net = built([sn.Dense(5, "tanh"), sn.Dense(3)])
    witness = LastUpdate()
    monitor = sn.HealthMonitor(X)
    trainer = sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9), callbacks=[witness, monitor])
    history = trainer.fit(X, Y, X, Y, epochs=3, eval_every=1, batch_size=20, seed=0,
                          restart=False)  # 5 batches a epoch, the last of 16 rows
    for name in ("layers.0.W", "layers.1.B"):
        layer, param = int(name.split(".")[1]), name.rsplit(".", 1)[-1]
        after, before = witness.after[name], witness.before[name]
        expected = np.linalg.norm(after - before) / np.linalg.norm(after)
        got = history[-1]["health"][layer]["params"][param]["update_ratio"]
        assert got == pytest.approx(expected, rel=1e-5)


def test_a_convolution_is_watched_per_channel():
    """Channel 0 of 2 gets a bias of -1000 (dead at every position), channel 1 +1000."""
    images = np.abs(RNG.normal(size=(40, 1, 6, 6))) + 0.1
    net = sn.NeuralNetwork([sn.Conv2D(2, 3, activation="relu", flatten=True), sn.Dense(3)],
                           sn.SoftmaxCrossEntropy(), seed=0).build((1, 6, 6))
    net.params()[1].value[:] = [-1000.0, 1000.0]
    monitor = sn.HealthMonitor(images)
    sn.Trainer(net, sn.SGD(0.01), callbacks=[monitor]).fit(
        images, Y[:40], images, Y[:40], epochs=1, batch_size=20, seed=0, restart=False)
    [conv, dense] = monitor.measure(net)
    assert (conv["units"], conv["dead"], conv["type"]) == (2, 0.5, "Conv2D(2, 3x3, relu, flatten)")
    assert 400 < conv["mean"] < 600  # half the outputs are 0, half about 1000
    assert dense["layer"] == 1


def test_only_the_first_rows_are_the_sample_and_big_samples_go_in_chunks(monkeypatch):
    net = built([sn.Dense(4, "relu"), sn.Dense(3)])
    monitor = sn.HealthMonitor(np.vstack([X, -X]), sample=len(X))
    assert len(monitor._rows) == len(X)
    whole = monitor.measure(net)
    monkeypatch.setattr(net, "INFERENCE_BYTES", 40 * 8 * 4)  # about 40 rows at a time
    for chunked, entry in zip(monitor.measure(net), whole, strict=True):
        for key in ("mean", "std"):
            assert chunked[key] == pytest.approx(entry[key], rel=1e-9, abs=1e-12)
        assert (chunked["dead"], chunked["inactive"]) == (entry["dead"], entry["inactive"])


@pytest.mark.parametrize("name", sorted(sn.ACTIVATIONS))
def test_every_activation_is_watched(name):
    net = built([sn.Dense(6, name), sn.Dense(3)])
    h = first_layer(fit(net, sn.HealthMonitor(X), epochs=1))
    assert h["activation"] == name
    assert (h["dead"] is not None) == (h["inactive"] is not None) == (name in DYING)
    assert (h["saturated"] is not None) == (name in LIMITS)
    assert all(0.0 <= h[k] <= 1.0 for k in ("dead", "inactive", "saturated") if h[k] is not None)


def test_watching_changes_nothing_training_computes():
    """With dropout (its random stream) and without the monitor, the same weights."""
    def train(callbacks):
        net = sn.NeuralNetwork([sn.Dense(8, "tanh", dropout=0.3), sn.Dense(3)],
                               sn.SoftmaxCrossEntropy(), seed=0)
        history = sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9), callbacks=callbacks).fit(
            X, Y, X, Y, epochs=3, eval_every=1, batch_size=20, seed=1)
        return net.state_dict(), history
    plain, quiet = train([])
    watched, loud = train([sn.HealthMonitor(X)])
    for name in plain:
        assert np.array_equal(plain[name], watched[name]), name
    assert all("health" not in r for r in quiet) and all("health" in r for r in loud)


def test_a_sample_of_nothing_is_refused():
    with pytest.raises(sn.ConfigError, match=r"the health sample needs rows of the network's "
                                             r"input, got an array of shape \(0, 6\)"):
        sn.HealthMonitor(X[:0])
    with pytest.raises(sn.ConfigError, match="health sample must be a positive integer"):
        sn.HealthMonitor(X, sample=0)


# -- the command line ---------------------------------------------------------------------
@pytest.mark.slow
def test_train_health_prints_records_and_plots(tmp_path):
    config = write_config(tmp_path, "watched", train={"epochs": 2})
    rc, out, err = run_cli(["train", config, "--health"], tmp_path)
    assert rc == 0, err
    assert ("  layer activation    mean    std    dead inactive saturated |grad W| "
            "update/W" in out.splitlines())
    [run_dir] = (tmp_path / "runs").iterdir()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [len(r["health"]) for r in records] == [2, 2]
    assert set(records[0]["health"][0]) == {"layer", "type", "units", "activation", "mean",
                                            "std", "dead", "inactive", "saturated", "params"}
    assert "health: true" in (run_dir / "config.yaml").read_text()
    rc, out, err = run_cli(["plot", "--health", run_dir], tmp_path)
    assert rc == 0, err
    assert out.strip() == str(run_dir / "health.png")
    assert (run_dir / "health.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, err = run_cli(["compare", run_dir, "--json"], tmp_path)  # health read back too
    assert rc == 0, err
    assert json.loads(out)["runs"][0]["status"] == "completed"


def test_plot_health_of_a_run_without_it_says_how(tmp_path):
    config = write_config(tmp_path, "plain", train={"epochs": 1})
    rc, out, err = run_cli(["train", config, "-q"], tmp_path)
    [run_dir] = (tmp_path / "runs").iterdir()
    relative = Path("runs") / run_dir.name
    rc, out, err = run_cli(["plot", "--health", relative, "-o", "h.png"], tmp_path)
    assert rc == 1
    assert err.strip() == (f"error: no health records in {relative}: train "
                           "with --health (or train.health: true) to record them")
