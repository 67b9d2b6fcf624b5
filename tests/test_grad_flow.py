"""Gradients you can see: each parameter's mean and largest |gradient| in the health
records, ``plot --grad-flow``, and the recurrent layers under health (the gradient
reaching each step back, against finite differences; the gates' saturation, forced) and
``plot --health`` drawing them, through the real command line on run folders written
by training through the command line or built from Python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from conftest import run_cli, write_config
from scratchnet import runs
from scratchnet.nn.health import MAX_STEPS, steps_kept

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

from scratchnet.plots import DPI, PANEL_HEIGHT, PANEL_WIDTH  # noqa: E402

RNG = np.random.default_rng(3)
T, F, H, B = 6, 2, 4, 8
X_SEQ = RNG.normal(size=(B, T, F))
Y_SEQ = RNG.normal(size=(B, 1))


def size_of(png: Path) -> tuple[int, int]:
    with Image.open(png) as image:
        return image.size


def panels(columns: int, rows: int) -> tuple[int, int]:
    return round(columns * PANEL_WIDTH * DPI), round(rows * PANEL_HEIGHT * DPI)


@pytest.fixture(scope="module")
def watched_runs(tmp_path_factory):
    """Two digits runs trained with --health (tanh and relu), through the command line."""
    folder = tmp_path_factory.mktemp("watched")
    for activation in ("tanh", "relu"):
        config = write_config(folder, activation, name=f"digits_{activation}",
                              train={"epochs": 2},
                              model={"layers": [{"neurons": 16, "activation": activation},
                                                {"neurons": 10, "activation": "linear"}],
                                     "loss": "softmax_cross_entropy"})
        rc, out, err = run_cli(["train", config, "--health", "-q", "--out", "runs"], folder)
        assert rc == 0, err
    made = sorted((folder / "runs").iterdir())
    return folder, made


def test_every_parameter_records_its_mean_and_largest_gradient(watched_runs):
    _, made = watched_runs
    for run_dir in made:
        for record in runs.read_metrics(run_dir):
            for entry in record["health"]:
                for name, numbers in entry["params"].items():
                    mean, largest, norm = (numbers[k] for k in ("grad_mean", "grad_max",
                                                                  "grad_norm"))
                    # |g|'s mean <= its largest <= ||g||, and ||g|| / sqrt(n) >= mean
                    assert 0 <= mean <= largest <= norm + 1e-12, (name, numbers)
                    assert largest > 0 or norm == 0


def test_the_gradient_numbers_are_those_of_the_last_batch():
    """One batch per epoch: the gradient the health records is the one left in each
    parameter, measured independently here."""
    X = RNG.normal(size=(40, 5))
    Y = np.eye(3)[RNG.integers(0, 3, 40)]
    net = sn.NeuralNetwork([sn.Dense(6, "tanh"), sn.Dense(3)], sn.SoftmaxCrossEntropy(),
                           seed=0, dtype="float64")
    history = sn.Trainer(net, sn.SGD(0.1), callbacks=[sn.HealthMonitor(X)]).fit(
        X, Y, X, Y, epochs=1, eval_every=1, batch_size=40, seed=0)
    for i, layer in enumerate(net.layers):
        for p in layer.params():
            got = history[-1]["health"][i]["params"][p.name.rsplit(".", 1)[-1]]
            assert got["grad_mean"] == pytest.approx(float(np.mean(np.abs(p.grad))), rel=1e-12)
            assert got["grad_max"] == float(np.max(np.abs(p.grad)))
            assert got["grad_norm"] == pytest.approx(float(np.sqrt((p.grad ** 2).sum())),
                                                     rel=1e-12)


def test_plot_grad_flow_draws_one_panel_per_run(watched_runs):
    folder, made = watched_runs
    rc, out, err = run_cli(["plot", "--grad-flow", made[0]], folder)
    assert rc == 0, err
    assert out.strip() == str(made[0] / "grad-flow.png")
    assert size_of(made[0] / "grad-flow.png") == panels(1, 1)
    rc, out, err = run_cli(["plot", "--grad-flow", *made, "-o", "both.png"], folder)
    assert rc == 0, err
    assert size_of(folder / "both.png") == panels(2, 1)


def test_plot_grad_flow_says_what_is_missing(watched_runs, tmp_path):
    folder, made = watched_runs
    config = write_config(tmp_path, "plain", train={"epochs": 1})
    rc, _, err = run_cli(["train", config, "-q"], tmp_path)
    assert rc == 0, err
    [plain] = (tmp_path / "runs").iterdir()
    rc, out, err = run_cli(["plot", "--grad-flow", plain, "-o", "g.png"], tmp_path)
    assert rc == 1 and out == ""
    assert err.strip().startswith("error: no health records in") and "--health" in err
    rc, out, err = run_cli(["plot", "--grad-flow", "--health", made[0]], folder)
    assert rc == 2 and "give one" in err and len(err.strip().splitlines()) == 1
    # health recorded before the gradient statistics were: said, not drawn wrong
    old = tmp_path / "old"
    old.mkdir()
    for name in (runs.CONFIG, runs.SUMMARY):
        (old / name).write_bytes((made[0] / name).read_bytes())
    records = runs.read_metrics(made[0])
    for record in records:
        for entry in record["health"]:
            for numbers in entry["params"].values():
                del numbers["grad_mean"], numbers["grad_max"]
    runs.write_metrics(old, records)
    rc, out, err = run_cli(["plot", "--grad-flow", old, "-o", "g.png"], tmp_path)
    assert rc == 1 and "no gradient statistics" in err and "Traceback" not in err


# -- recurrent layers -------------------------------------------------------------------------
def recurrent_net(kind, **options) -> sn.NeuralNetwork:
    net = sn.NeuralNetwork([kind(H, return_sequences=False, **options), sn.Dense(1)],
                           sn.MeanSquaredError(), seed=0, dtype="float64")
    return net.build((T, F))


def fit_once(net, monitor=None):
    """One batch, one epoch: the batch health watches is the whole data."""
    callbacks = [monitor] if monitor is not None else []
    return sn.Trainer(net, sn.SGD(0.05), callbacks=callbacks).fit(
        X_SEQ, Y_SEQ, X_SEQ, Y_SEQ, epochs=1, eval_every=1, batch_size=B, seed=0)


def test_the_state_gradient_by_steps_back_matches_finite_differences():
    """A tanh RNN: the loss as a function of the state after step t (the remaining steps,
    the output layer and the loss, written out here in NumPy), differentiated by central
    differences, against what health recorded k = T-1-t steps back."""
    net = recurrent_net(sn.RNN)
    weights = {k: v.copy() for k, v in net.state_dict().items()}  # before the step
    entry = fit_once(net, sn.HealthMonitor(X_SEQ))[-1]["health"][0]
    assert entry["steps_back"] == list(range(T)) and len(entry["state_grad"]) == T
    W_x, W_h, b = (weights[f"layers.0.{k}"] for k in ("W_x", "W_h", "B"))
    W, b_out = weights["layers.1.W"], weights["layers.1.B"]
    states = [np.zeros((B, H))]
    for t in range(T):
        states.append(np.tanh(X_SEQ[:, t] @ W_x + states[-1] @ W_h + b))

    def loss_from(t: int, h: np.ndarray) -> float:  # h: the state after step t
        for s in range(t + 1, T):
            h = np.tanh(X_SEQ[:, s] @ W_x + h @ W_h + b)
        return float(net.loss.forward(h @ W + b_out, Y_SEQ))

    for t in range(T):
        h, grad, eps = states[t + 1], np.zeros((B, H)), 1e-6
        for index in np.ndindex(h.shape):
            up, down = h.copy(), h.copy()
            up[index] += eps
            down[index] -= eps
            grad[index] = (loss_from(t, up) - loss_from(t, down)) / (2 * eps)
        assert entry["state_grad"][T - 1 - t] == pytest.approx(np.linalg.norm(grad), rel=1e-6)


@pytest.mark.parametrize("kind", [sn.RNN, sn.LSTM, sn.GRU])
def test_recurrent_layers_are_watched_and_the_hook_is_let_go(kind):
    net = recurrent_net(kind)
    monitor = sn.HealthMonitor(X_SEQ)
    entry = fit_once(net, monitor)[-1]["health"][0]
    assert (entry["layer"], entry["units"], entry["type"]) == (0, H, net.layers[0].describe())
    assert set(entry["params"]) == {p.name.rsplit(".", 1)[-1] for p in net.layers[0].params()}
    assert all(v > 0 for v in entry["state_grad"])
    if kind is sn.RNN:
        assert entry["gates"] is None and entry["activation"] == "tanh"
        assert 0 <= entry["saturated"] <= 1
    else:
        assert list(entry["gates"]) == list(kind.gate_names)
        assert all(0 <= v <= 1 for v in entry["gates"].values())
    assert net.layers[0].operations[0].grad_probe is None  # off again after the fit
    # a measure outside training knows no last batch: no state gradient, no update ratio
    fresh = sn.HealthMonitor(X_SEQ).measure(net)[0]
    assert fresh["state_grad"] is None and fresh["params"]["W_h"]["update_ratio"] is None


@pytest.mark.parametrize("kind", [sn.LSTM, sn.GRU])
def test_a_gate_forced_shut_or_open_is_saturated(kind):
    """All weights 0: every gate sees its bias alone. The second gate (the LSTM's forget
    gate f, the GRU's update gate z) gets +1000, open whatever comes; the others 0, so the
    sigmoid gates sit at 0.5 and the tanh candidate at 0, the middle of their curves."""
    net = recurrent_net(kind)
    for p in net.layers[0].params():
        p.value[:] = 0
    net.layers[0].params()[2].value[0, H:2 * H] = 1000.0  # B, the second gate's columns
    entry = sn.HealthMonitor(X_SEQ).measure(net)[0]
    names = kind.gate_names
    assert entry["gates"] == {name: (1.0 if name == names[1] else 0.0) for name in names}


def test_watching_a_recurrent_network_changes_nothing_it_learns():
    def train(watch):
        net = recurrent_net(sn.LSTM)
        monitor = [sn.HealthMonitor(X_SEQ)] if watch else []
        sn.Trainer(net, sn.Adam(0.01), callbacks=monitor).fit(
            X_SEQ, Y_SEQ, X_SEQ, Y_SEQ, epochs=3, eval_every=1, batch_size=3, seed=1)
        return net.state_dict()
    plain, watched = train(False), train(True)
    assert all(np.array_equal(plain[k], watched[k]) for k in plain)


def test_long_sequences_keep_at_most_max_steps_spaced_on_a_log_scale():
    for steps in (1, MAX_STEPS, MAX_STEPS + 1, 10_000):
        kept = steps_kept(steps)
        assert kept[0] == 0 and kept[-1] == steps - 1 and len(kept) <= MAX_STEPS
        assert np.all(np.diff(kept) > 0)
    assert list(steps_kept(MAX_STEPS)) == list(range(MAX_STEPS))


def test_plot_health_draws_the_gradient_by_steps_back_and_the_gates(adding_runs, tmp_path):
    made = adding_runs
    rc, out, err = run_cli(["plot", "--health", *made, "-o", "h.png"], tmp_path)
    assert rc == 0, err
    # saturated outputs (the RNN's tanh), update ratios, steps back, gates: 2 x 2
    assert size_of(tmp_path / "h.png")[1] >= panels(2, 2)[1]
    for run_dir in made:  # every evaluation, the recurrent layer: the norm at each step back
        for epoch in runs.read_metrics(run_dir):
            record = epoch["health"][0]
            assert record["steps_back"] == list(range(12))
            norms = np.asarray(record["state_grad"], dtype=float)
            assert norms.shape == (12,) and np.isfinite(norms).all() and (norms >= 0).all()
            assert norms[0] > 0  # the last step's state feeds the loss directly
            lstm = run_dir.name.startswith("adding_lstm")
            assert (set(record["gates"] or {}) == set("ifgo")) is lstm
    rc, out, err = run_cli(["plot", "--grad-flow", *made, "-o", "g.png"], tmp_path)
    assert rc == 0, err
    assert size_of(tmp_path / "g.png") == panels(2, 1)
