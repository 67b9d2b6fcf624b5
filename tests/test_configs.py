"""The experiment files in configs/: each one trains for an epoch through the real CLI
(the MNIST ones on a slice of MNIST: the point is that they run),
the notebook's configs keep the notebook's settings, the Boston configs run on a CSV
with Boston's columns, ``model.input_dropout`` (what mnist_best needs) works, and
``benchmarks/reproduce.py`` writes its report.

MNIST configs skip when ``$SCRATCHNET_DATA_DIR/mnist`` is absent and run when it is
present (CI sets it).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.config import load_config, validate
from scratchnet.errors import ConfigError
from scratchnet.experiment import build_network, prepare_data
from scratchnet.nn.gradcheck import check_network

from conftest import run_cli, write_mnist_slice

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
BOSTON_COLUMNS = ["crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax",
                  "ptratio", "b", "lstat", "medv"]
MNIST_PARAMS = 784 * 89 + 89 + 89 * 10 + 10  # the notebook's 784 -> 89 -> 10


def _mnist_available() -> bool:
    shared = os.environ.get("SCRATCHNET_DATA_DIR")
    return bool(shared) and (Path(shared) / "mnist").is_dir()


needs_mnist = pytest.mark.skipif(not _mnist_available(),
                                 reason="real MNIST not available (set SCRATCHNET_DATA_DIR)")


def _text_available() -> bool:
    shared = os.environ.get("SCRATCHNET_DATA_DIR")
    return bool(shared) and (Path(shared) / "text" / "dlfs_input.txt").is_file()


needs_text = pytest.mark.skipif(not _text_available(), reason="the book's text corpus not "
                                "available (set SCRATCHNET_DATA_DIR)")

#: the recurrent configs as they train in a test: the same layers, smaller (the point is
#: that they run; their numbers are measured in full, docs/sequences.md)
SMALLER = {"text_": ["--set", "model.layers.1.hidden_size=16", "--set", "data.seq_len=20"],
           "adding_": ["--set", "model.layers.0.hidden_size=8", "--set", "data.samples=1000"],
           "mnist_lstm": ["--set", "model.layers.0.hidden_size=16"]}


def write_boston_csv(path: Path, n: int = 120, header=BOSTON_COLUMNS, seed: int = 0) -> Path:
    """A synthetic CSV with Boston housing's 14 columns (the real one is not ours to
    ship): plausible feature ranges, a price driven by rooms and status plus noise."""
    rng = np.random.default_rng(seed)
    mean = np.array([3.6, 11, 11, 0, .55, 6.3, 68, 3.8, 9.5, 408, 18.5, 356, 12.6])
    std = np.array([8, 23, 7, 0, .1, .7, 28, 2, 8.7, 168, 2.2, 91, 7])
    X = mean + rng.standard_normal((n, 13)) * std
    X[:, 3] = rng.random(n) < 0.07  # chas: a 0/1 dummy
    medv = 22.5 + 5 * (X[:, 5] - 6.3) - 0.5 * (X[:, 12] - 12.6) + rng.normal(0, 3, n)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row, y in zip(X, medv):
            writer.writerow([f"{v:.4f}" for v in row] + [f"{y:.1f}"])
    return path


@pytest.fixture(scope="module")
def boston_csv(tmp_path_factory) -> Path:
    return write_boston_csv(tmp_path_factory.mktemp("boston") / "BostonHousing.csv", n=506)


# -- every config trains for one epoch ---------------------------------------------------
def test_configs_are_there():
    stems = {p.stem for p in CONFIGS}
    notebook = {f"mnist_{i:02d}" for i in range(1, 12)}
    assert notebook <= {s[:8] for s in stems}
    assert {"mnist_tanh", "mnist_best", "digits_quickstart", "diabetes_linear",
            "diabetes_one_hidden", "diabetes_two_hidden", "boston_linear",
            "boston_one_hidden", "boston_two_hidden", "text_lstm", "text_rnn", "text_gru",
            "mnist_lstm", "adding_rnn", "adding_lstm", "adding_gru"} <= stems


def _config_params() -> list:
    return [pytest.param(path, id=path.stem,
                         marks=[needs_mnist] if "dataset: mnist" in path.read_text()
                         else [needs_text] if "source: dlfs" in path.read_text() else [])
            for path in CONFIGS]


@pytest.fixture(scope="module")
def mnist_slice(tmp_path_factory) -> Path:
    return write_mnist_slice(tmp_path_factory.mktemp("mnist_slice"))


@pytest.mark.parametrize("path", _config_params())
def test_every_config_trains_one_epoch(path, main_here, boston_csv, tmp_path, request,
                                       monkeypatch):
    args = ["train", path, "--epochs", "1", "--json", "--quiet", "--out", tmp_path / "runs"]
    if path.stem.startswith("boston"):
        args += ["--set", f"data.path={boston_csv}"]
    args += next((more for start, more in SMALLER.items() if path.stem.startswith(start)), [])
    mnist = "dataset: mnist" in path.read_text()
    if mnist:
        from scratchnet.data import mnist as idx_sets

        monkeypatch.setitem(idx_sets.CHECKSUMS, "mnist", {})  # the slice is not the official
        args += ["--data-dir", request.getfixturevalue("mnist_slice")]
    rc, out, err = main_here(*args)
    assert rc == 0, err
    [summary] = [json.loads(line) for line in out.splitlines()]
    assert summary["status"] == "completed", summary
    assert summary["name"] == path.stem
    assert summary["epochs_run"] == 1
    test = summary["test"]
    assert all(v is not None and math.isfinite(v) for v in test.values()), test
    if mnist:  # trained on the slice, tested on its share of the test images
        data = json.loads((Path(summary["run_dir"]) / "data.json").read_text())
        assert data["source"] == str((request.getfixturevalue("mnist_slice") / "mnist").resolve())
        assert 0 <= test["accuracy"] <= 1
    elif summary["dataset"] == "text":  # better than a uniform guess of its characters
        data = json.loads((Path(summary["run_dir"]) / "data.json").read_text())
        assert test["loss"] < math.log(len(data["vocabulary"]["chars"])), test
        assert test["bits_per_char"] == pytest.approx(test["loss"] / math.log(2))
    elif summary["task"] == "classification":
        assert test["accuracy"] > 0.2, test  # ten classes: chance is 0.1
    else:
        assert summary["task"] == "regression" and test["rmse"] > 0
    if summary["dataset"] == "mnist" and "cnn" not in path.stem and "lstm" not in path.stem:
        assert summary["n_params"] == MNIST_PARAMS  # 784 -> 89 -> 10, as the notebook
    assert (Path(summary["run_dir"]) / "weights.safetensors").is_file()


def test_one_config_in_a_real_process(tmp_path):
    rc, out, err = run_cli(["train", ROOT / "configs" / "digits_quickstart.yaml", "--set",
                            "train.epochs=1", "--json", "--quiet", "--out", "runs"], tmp_path)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["epochs_run"] == 1


# -- the notebook's settings stay the notebook's -----------------------------------------
# stem -> (hidden activation, output activation, loss, optimizer, lr, decay, final_lr,
#          epochs, eval_every, weight_init, hidden dropout rate)
NOTEBOOK = {
    "mnist_01_tanh_sigmoid_mse": ("tanh", "sigmoid", "mse", "sgd", 0.1, "none", None, 50, 10, "standard", 0.0),
    "mnist_02_sigmoid_ce": ("sigmoid", "linear", "softmax_cross_entropy", "sgd", 0.1, "none", None, 130, 1, "standard", 0.0),
    "mnist_03_relu_ce": ("relu", "linear", "softmax_cross_entropy", "sgd", 0.1, "none", None, 50, 10, "standard", 0.0),
    "mnist_04_tanh_ce": ("tanh", "linear", "softmax_cross_entropy", "sgd", 0.1, "none", None, 50, 10, "standard", 0.0),
    "mnist_05_sigmoid_momentum": ("sigmoid", "linear", "softmax_cross_entropy", "sgd_momentum", 0.1, "none", None, 50, 1, "standard", 0.0),
    "mnist_06_tanh_momentum": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.1, "none", None, 50, 10, "standard", 0.0),
    "mnist_07_linear_decay": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.15, "linear", 0.05, 50, 10, "standard", 0.0),
    "mnist_08_exponential_decay": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.2, "exponential", 0.05, 50, 10, "standard", 0.0),
    "mnist_09_glorot": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.15, "linear", 0.05, 50, 10, "glorot", 0.0),
    "mnist_10_glorot_dropout": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.2, "exponential", 0.05, 50, 10, "glorot", 0.2),
    "mnist_11_glorot_no_dropout": ("tanh", "linear", "softmax_cross_entropy", "sgd_momentum", 0.2, "exponential", 0.05, 50, 10, "glorot", 0.0),
}


@pytest.mark.parametrize("stem", NOTEBOOK)
def test_notebook_config_keeps_the_notebooks_settings(stem):
    (hidden, output, loss, opt, lr, decay, final_lr, epochs, eval_every, init,
     dropout) = NOTEBOOK[stem]
    cfg = load_config(ROOT / "configs" / f"{stem}.yaml")
    assert cfg.seed == 20190119
    assert (cfg.data.dataset, cfg.data.scale, cfg.data.validation) == ("mnist", "global", "test")
    h, o = cfg.model.layers
    assert (h.neurons, h.activation, o.neurons, o.activation) == (89, hidden, 10, output)
    assert h.weight_init == o.weight_init == init
    # the notebook drew biases like its weights: N(0, 1) under "standard"
    assert h.bias_init == o.bias_init == ("normal" if init == "standard" else "zeros")
    assert (h.dropout, o.dropout, cfg.model.input_dropout) == (dropout, 0.0, 0.0)
    assert not (h.batch_norm or o.batch_norm)
    assert cfg.model.loss == loss
    o_cfg = cfg.optimizer
    assert (o_cfg.name, o_cfg.lr, o_cfg.decay.type, o_cfg.decay.final_lr) == (opt, lr, decay, final_lr)
    # (the sections hold every option resolved; sgd has no momentum to hold)
    assert getattr(o_cfg, "momentum", None) == (0.9 if opt == "sgd_momentum" else None)
    assert not getattr(o_cfg, "nesterov", False)
    assert o_cfg.weight_decay == 0 and o_cfg.clip_norm is None
    t = cfg.train
    assert (t.epochs, t.eval_every, t.batch_size, t.dtype) == (epochs, eval_every, 60, "float32")
    assert t.early_stopping is True  # stop at the first rise, put back the previous best


def test_mnist_best_keeps_the_architecture_and_an_honest_protocol():
    cfg = load_config(ROOT / "configs" / "mnist_best.yaml")
    assert cfg.data.dataset == "mnist"
    assert isinstance(cfg.data.validation, float) and 0 < cfg.data.validation < 1
    assert [layer.neurons for layer in cfg.model.layers] == [89, 10]
    assert not any(layer.batch_norm for layer in cfg.model.layers)  # nothing extra per unit
    assert cfg.train.epochs <= 50
    assert cfg.model.input_dropout > 0


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_text_configs_are_the_issues_character_models(kind):
    """The book's corpus, a recurrent layer of 256 on an embedding, seq_len 50, at most 30
    epochs, early stopping on the validation loss with the best weights kept; the three
    files differ in the recurrent layer alone."""
    cfg = load_config(ROOT / "configs" / f"text_{kind}.yaml")
    d = cfg.data
    assert (d.dataset, d.source, d.path, d.seq_len) == ("text", "dlfs", None, 50)
    embedding, recurrent, output = cfg.model.layers
    assert (embedding.type, recurrent.type, recurrent.hidden_size) == ("embedding", kind, 256)
    assert output.neurons == "auto" and cfg.model.loss == "softmax_cross_entropy"
    assert cfg.train.epochs <= 30 and cfg.train.early_stopping.restore_best
    if recurrent.stateful:  # streams in order, a batch holding one window of each
        assert d.streams == cfg.train.batch_size
    others = [load_config(ROOT / "configs" / f"text_{k}.yaml").to_dict() for k in ("lstm", "rnn")]
    for other in others:
        for section in ("data", "optimizer", "train"):
            assert other[section] == cfg.to_dict()[section], section


def test_mnist_lstm_reads_rows_as_steps_with_an_honest_protocol():
    cfg = load_config(ROOT / "configs" / "mnist_lstm.yaml")
    assert cfg.data.dataset == "mnist" and 0 < cfg.data.validation < 1
    assert cfg.model.layers[0].type == "lstm" and cfg.train.epochs <= 10


@pytest.mark.parametrize("kind", ["lstm", "rnn", "gru"])
def test_adding_configs_differ_in_the_recurrent_layer_alone(kind):
    cfg = load_config(ROOT / "configs" / f"adding_{kind}.yaml")
    assert (cfg.data.dataset, cfg.data.length, cfg.model.loss) == ("adding", 50, "mse")
    assert cfg.model.layers[0].type == kind and not cfg.model.layers[0].return_sequences
    lstm = load_config(ROOT / "configs" / "adding_lstm.yaml").to_dict()
    mine = cfg.to_dict()
    assert {k: v for k, v in mine.items() if k not in ("name", "model")} == \
        {k: v for k, v in lstm.items() if k not in ("name", "model")}


@pytest.mark.parametrize("stem", ["linear", "one_hidden", "two_hidden"])
def test_boston_and_diabetes_configs_are_the_notebooks_regressions(stem, boston_csv):
    boston = load_config(ROOT / "configs" / f"boston_{stem}.yaml",
                         [f"data.path={boston_csv}"])
    diabetes = load_config(ROOT / "configs" / f"diabetes_{stem}.yaml")
    for cfg in (boston, diabetes):
        assert cfg.seed == 20190501
        assert (cfg.data.scale, cfg.data.test_fraction, cfg.data.validation) == ("standard", 0.3, "test")
        assert cfg.model.loss == "mse"
        assert (cfg.optimizer.name, cfg.optimizer.decay.type) == ("sgd", "none")
        assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.eval_every) == (50, 32, 10)
        assert cfg.train.early_stopping is True
        widths = [layer.neurons for layer in cfg.model.layers]
        assert widths == {"linear": [1], "one_hidden": [13, 1], "two_hidden": [13, 13, 1]}[stem]
        assert [layer.activation for layer in cfg.model.layers][:-1] == ["sigmoid"] * (len(widths) - 1)
        assert cfg.model.layers[-1].activation == "linear"
    assert (boston.data.dataset, boston.data.target, boston.data.task) == ("csv", "medv", "regression")
    assert (boston.data.split_seed, boston.data.target_scale) == (80718, "none")  # the notebook's
    assert (boston.optimizer.lr, {layer.weight_init for layer in boston.model.layers}) == (0.01, {"standard"})
    assert diabetes.data.dataset == "diabetes"
    if stem == "linear":  # the same model; only the data differ
        assert boston.to_dict()["model"] == diabetes.to_dict()["model"]
        assert (diabetes.optimizer.lr, diabetes.data.target_scale) == (0.01, "none")
    else:  # tuned to match least squares (tests/test_target_scale.py measures it)
        assert (diabetes.optimizer.lr, diabetes.data.target_scale) == (0.1, "standard")
        assert {layer.weight_init for layer in diabetes.model.layers} == {"glorot"}


# -- Boston: bring your own CSV ------------------------------------------------------------
def test_boston_configs_on_a_csv_with_bostons_columns(boston_csv, tmp_path):
    """The three models in one real process, the path given with --set, as the docs say."""
    configs = [ROOT / "configs" / f"boston_{s}.yaml" for s in ("linear", "one_hidden", "two_hidden")]
    rc, out, err = run_cli(["train", *configs, "--set", f"data.path={boston_csv}", "--json",
                            "--quiet", "--out", "runs"], tmp_path)
    assert rc == 0, err
    summaries = [json.loads(line) for line in out.splitlines()]
    assert [s["name"] for s in summaries] == ["boston_linear", "boston_one_hidden", "boston_two_hidden"]
    for s in summaries:
        assert s["status"] == "completed" and s["task"] == "regression"
        assert s["epochs_run"] >= 10
        info = json.loads((tmp_path / s["run_dir"] / "data.json").read_text())
        assert info["feature_names"] == BOSTON_COLUMNS[:-1]  # 13 features, medv predicted
        # 506 rows (as Boston), 70/30: the test split is the held-out set
        assert math.isfinite(s["test"]["rmse"]) and s["test"]["rmse"] < 10  # medv's spread is ~6
    # the linear model learns the linear price well (R² of a guess at the mean is 0)
    assert summaries[0]["test"]["r2"] > 0.5


def test_boston_without_a_path_says_how_to_give_one(main_here):
    rc, out, err = main_here("train", ROOT / "configs" / "boston_linear.yaml", "--quiet")
    assert rc == 2 and out == ""
    assert "data.path" in err and "boston_linear.yaml" in err and "Traceback" not in err


def test_boston_with_an_upper_case_header(main_here, tmp_path):
    upper = write_boston_csv(tmp_path / "Boston.csv", header=[c.upper() for c in BOSTON_COLUMNS])
    config = ROOT / "configs" / "boston_linear.yaml"
    rc, out, err = main_here("train", config, "--set", f"data.path={upper}", "--quiet", "--out", "r")
    assert rc == 1 and "'medv' not found" in err and "MEDV" in err  # the columns are listed
    rc, out, err = main_here("train", config, "--set", f"data.path={upper}", "--set",
                            "data.target=MEDV", "--set", "train.epochs=1", "--json", "--quiet",
                            "--out", "r")
    assert rc == 0, err
    assert json.loads(out)["status"] == "completed"


# -- model.input_dropout ----------------------------------------------------------------------
def _net(input_dropout=0.0, dropout=0.0, dtype="float32", seed=3):
    return sn.NeuralNetwork([sn.Dense(6, sn.Tanh(), dropout=dropout), sn.Dense(3, sn.Linear())],
                            sn.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
                            input_dropout=input_dropout)


def test_input_dropout_drops_inputs_while_training_only():
    X = np.random.default_rng(0).standard_normal((400, 50)).astype(np.float32)
    net, plain = _net(0.25).build(50), _net(0.0).build(50)
    # the input dropout draws from the dropout stream: the initial weights are the same
    for a, b in zip(net.params(), plain.params()):
        np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(net.forward(X, inference=True), plain.forward(X, inference=True))
    train = net.forward(X)
    assert not np.allclose(train, plain.forward(X))
    mask = net.input_op.mask
    dropped = float(np.mean(mask == 0))
    assert 0.22 < dropped < 0.28  # 20000 draws at rate 0.25
    np.testing.assert_allclose(mask[mask != 0], 1 / 0.75, rtol=1e-6)  # inverted dropout
    # what the first layer saw is the masked input
    np.testing.assert_array_equal(net.layers[0].operations[0].input_, X * mask)


def test_input_dropout_gradients_match_central_differences():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 4))
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    net = _net(0.3, dropout=0.2, dtype="float64").build(4)
    rows = check_network(net, X, Y)
    assert len(rows) == 4 and all(r["passed"] for r in rows), rows
    # a wrong mask in the analytic pass would show: the check sees the masked input
    assert net.input_op.mask is not None and (net.input_op.mask == 0).any()


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.2"])
def test_input_dropout_refuses_a_bad_rate(bad):
    with pytest.raises(ConfigError, match=r"input_dropout must be a number in \[0, 1\), got"):
        _net(bad)


def test_input_dropout_in_a_config(tmp_path):
    raw = {"data": {"dataset": "digits"}, "model": {"input_dropout": 0.2, "layers": [
        {"neurons": 8, "activation": "relu"}, {"neurons": 10}]}}
    net = build_network(validate(raw), 64)
    assert net.input_dropout == 0.2 and net.input_op is not None
    for bad in (1.0, -0.5):
        raw["model"]["input_dropout"] = bad
        with pytest.raises(ConfigError, match=r"model\.input_dropout"):
            validate(raw, "x.yaml")


def test_input_dropout_is_seeded_and_resumes_exactly():
    """Same seed, same run; and a run stopped after an epoch and resumed from its
    checkpoint ends with the same weights as one that never stopped (the input masks
    come from the checkpointed dropout generator)."""
    raw = {"seed": 5, "data": {"dataset": "digits", "validation": 0.2},
           "model": {"input_dropout": 0.2, "layers": [{"neurons": 16, "activation": "relu",
                                                       "dropout": 0.1}, {"neurons": 10}]},
           "optimizer": {"name": "sgd_momentum", "lr": 0.05, "momentum": 0.9}}
    cfg = validate(raw)
    data = prepare_data(cfg)

    def fit(epochs, resume=None):
        net = build_network(cfg, data.n_features)
        trainer = sn.Trainer(net, sn.SGDMomentum(0.05, momentum=0.9))
        trainer.fit(data.X_train, data.Y_train, data.X_val, data.Y_val, epochs=epochs,
                    eval_every=1, batch_size=64, seed=cfg.seed, resume=resume)
        return trainer, net.state_dict()

    _, straight = fit(2)
    _, again = fit(2)
    first, _ = fit(1)
    _, resumed = fit(2, resume=first.checkpoint())
    for name in straight:
        np.testing.assert_array_equal(straight[name], again[name])
        np.testing.assert_array_equal(straight[name], resumed[name])


# -- benchmarks/reproduce.py ------------------------------------------------------------------
REPRODUCE = [sys.executable, str(ROOT / "benchmarks" / "reproduce.py")]


def _section(text: str, marker: str) -> str:
    return text.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]


@pytest.mark.slow
def test_reproduce_runs_both_rules_and_keeps_the_prose(tmp_path):
    """diabetes_linear stops at the first evaluation that does not improve, so it runs
    with both rules; digits_quickstart (patience 3) with ours alone. Two seeds each."""
    report = tmp_path / "reproduction.md"
    report.write_text("# Notes\n\nprose before\n\n<!-- regression -->\nold table\n"
                      "<!-- /regression -->\n\nprose after\n")
    proc = subprocess.run([*REPRODUCE, "--only", "diabetes_linear", "digits_quickstart",
                           "--seeds", "1", "--report", str(report), "--out",
                           str(tmp_path / "runs")], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    assert "prose before" in text and "prose after" in text and "old table" not in text
    regression = _section(text, "regression")
    assert f"{os.cpu_count()} cores" in regression and "then 1;" in regression
    rows = [line for line in regression.splitlines() if line.startswith("| diabetes_linear")]
    assert [row.split(" | ")[1] for row in rows] == ["the notebook's rule", "ours"]
    assert all(row.count("±") == 3 and "least squares" not in row and "R² 0.446" in row
               for row in rows)
    [row] = [line for line in _section(text, "mnist").splitlines()
             if line.startswith("| digits_quickstart")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "-" and cells[4].endswith("]") and "%" in cells[4]
    seeds = _section(text, "seeds")
    assert "| digits_quickstart | ours | " in seeds and "the notebook's rule" not in seeds
    summaries = [json.loads((d / "summary.json").read_text()) for d in (tmp_path / "runs").iterdir()
                 if d.is_dir()]
    assert sorted((s["name"], s["weights"]) for s in summaries) == sorted(
        [("diabetes_linear", "best")] * 2 + [("diabetes_linear", "notebook")] * 2
        + [("digits_quickstart", "best")] * 2)


@pytest.mark.slow
def test_reproduce_writes_under_runs_by_default(tmp_path):
    proc = subprocess.run([*REPRODUCE, "--only", "diabetes_linear", "--seeds", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "out" / "reproduction.md"
    assert proc.stderr.strip().endswith(f"report: {report}")
    # it starts from the committed report, so the prose is there to read
    assert report.read_text().startswith((ROOT / "docs" / "reproduction.md").read_text()[:200])
    assert "runs/" in (ROOT / ".gitignore").read_text().split()
    # a second report reads the runs the first one trained (by their config's hash)
    proc = subprocess.run([*REPRODUCE, "--only", "diabetes_linear", "--seeds", "--out",
                           str(tmp_path / "out"), "--jobs", "2"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"0 runs to train, 2 found in {tmp_path / 'out'}\n")
    assert "s for 0 runs (2 more read from earlier runs); seeds:" in report.read_text()


@pytest.mark.parametrize("args, message", [
    (["--only", "no_such_experiment"], "no such config: configs/no_such_experiment.yaml"),
    (["--only", "boston_linear"], "the Boston configs need your copy of the data: "
                                  "--boston BostonHousing.csv"),
])
def test_reproduce_refuses_what_it_cannot_run(args, message, tmp_path):
    proc = subprocess.run([*REPRODUCE, *args, "--report", str(tmp_path / "r.md")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == message
    assert not (tmp_path / "r.md").exists()


@pytest.mark.slow
def test_reproduce_with_a_boston_csv(boston_csv, tmp_path):
    report = tmp_path / "r.md"
    proc = subprocess.run([*REPRODUCE, "--only", "boston_linear", "--seeds", "--boston",
                           str(boston_csv), "--report", str(report), "--out",
                           str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in _section(report.read_text(), "regression").splitlines()
            if line.startswith("| boston_linear")]
    assert len(rows) == 2 and all("MAE 3.52, RMSE 5.01" in row for row in rows)


@pytest.mark.slow
@needs_mnist
def test_reproduce_an_mnist_experiment(tmp_path):
    report = tmp_path / "r.md"
    proc = subprocess.run([*REPRODUCE, "--only", "mnist_03_relu_ce", "--seeds", "--set",
                           "train.epochs=2", "--set", "train.eval_every=1", "--report",
                           str(report), "--out", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [row] = [line for line in _section(report.read_text(), "mnist").splitlines()
             if line.startswith("| mnist_03_relu_ce")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "76.38% (stopped at 20)"
    assert cells[2].endswith("]") and cells[4].endswith("]")
    assert cells[3].startswith(("yes", "no")) and cells[5].startswith(("yes", "no"))


def test_the_readmes_experiment_file_is_the_shipped_one():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The experiment file", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```\n", 1)[0]
    shipped = (Path(__file__).resolve().parents[1] / "configs" / "mnist_tanh.yaml").read_text()
    assert block == shipped


def test_the_readmes_recurrent_excerpt_is_the_shipped_text_lstm():
    import yaml

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Recurrent networks", 1)[1]
    excerpt = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```\n", 1)[0])
    shipped = yaml.safe_load((ROOT / "configs" / "text_lstm.yaml").read_text())
    assert excerpt["data"] == shipped["data"]
    assert excerpt["model"]["layers"] == shipped["model"]["layers"]
