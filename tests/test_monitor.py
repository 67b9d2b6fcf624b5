"""Stop on any metric: ``train.early_stopping.monitor`` (and ``mode``), through the real
command line. Early stopping, the weights a run keeps, its best epoch and the plateau
schedule all follow the monitored value; a value the run does not record is refused by
``validate``. Every stop here is built in, never a trajectory's epoch: an accuracy is at
most 1, so with ``min_delta: 1.0`` no evaluation beats the first by more than that, and
the run provably stops at 1 + patience."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_config
from scratchnet import runs
from scratchnet.experiment import load_run, prepare_data
from scratchnet.nn import evaluate


def run_folder(out: str, cwd: Path) -> Path:
    (folder,) = [p for p in (cwd / out).iterdir() if p.is_dir()]
    return folder


def kept_scores(run_dir: Path) -> dict:
    """The validation scores of the weights a run folder keeps, measured again: the run's
    own network and the validation rows its config splits off."""
    cfg, net, info, _ = load_run(run_dir)
    data = prepare_data(cfg, targets=info["targets"])
    return evaluate(net, data.X_val, data.Y_val)


def ruled_best(values: list[float], mode: str, min_delta: float = 0.0) -> int:
    """The 0-based index of the best of ``values`` by early stopping's rule, worked out
    here: a value is better when it beats the best so far by more than ``min_delta``."""
    best, at = None, None
    for i, v in enumerate(values):
        if best is None or (v > best + min_delta if mode == "max" else v < best - min_delta):
            best, at = v, i
    return at


def test_monitor_accuracy_stops_and_keeps_the_best_weights(tmp_path):
    stopping = {"monitor": "accuracy", "patience": 2, "min_delta": 1.0}
    write_config(tmp_path, "acc", train={"epochs": 10, "eval_every": 1,
                                         "early_stopping": stopping})
    rc, out, err = run_cli(["train", "acc.yaml", "--out", "runs"], tmp_path)
    assert rc == 0, err
    run_dir = run_folder("runs", tmp_path)
    records = runs.read_metrics(run_dir)
    summary = runs.read_json(run_dir / runs.SUMMARY)
    assert summary["stopped_early"] and summary["epochs_run"] == 1 + stopping["patience"]
    assert summary["best_epoch"] == summary["weights_epoch"] == 1
    assert summary["best_metric"] == "accuracy"
    assert summary["best_value"] == records[0]["accuracy"]
    assert summary["best_val_loss"] == records[0]["val_loss"]  # that evaluation's loss
    # the summary says which metric and which epoch
    line = next(x for x in out.splitlines() if x.strip().startswith("best epoch"))
    assert " ".join(line.split()) == \
        f"best epoch 1 (validation accuracy {100 * records[0]['accuracy']:.2f}%)"
    # the kept weights are those of epoch 1: measured again, they score what it recorded
    scores = kept_scores(run_dir)
    assert scores["accuracy"] == records[0]["accuracy"]
    assert scores["loss"] == pytest.approx(records[0]["val_loss"], rel=1e-6)


@pytest.mark.parametrize("monitor", ["accuracy", "val_loss"])
def test_the_best_epoch_is_the_best_of_the_monitored_value(tmp_path, monitor):
    # no stopping: the whole run is evaluated, and the best is picked by the monitored
    # value in its own direction (accuracy up, the loss down)
    stopping = {"monitor": monitor, "patience": None, "restore_best": True}
    write_config(tmp_path, "best", train={"epochs": 6, "eval_every": 1,
                                          "early_stopping": stopping})
    rc, out, err = run_cli(["train", "best.yaml", "--out", "runs", "-q"], tmp_path)
    assert rc == 0, err
    run_dir = run_folder("runs", tmp_path)
    records = runs.read_metrics(run_dir)
    summary = runs.read_json(run_dir / runs.SUMMARY)
    at = ruled_best([r[monitor] for r in records], "max" if monitor == "accuracy" else "min")
    assert summary["best_epoch"] == summary["weights_epoch"] == records[at]["epoch"]
    assert (summary["best_metric"], summary["best_value"]) == (monitor, records[at][monitor])
    assert kept_scores(run_dir)["accuracy"] == records[at]["accuracy"]


def plateau_rates(values: list[float], lr: float, factor: float, patience: int,
                  threshold: float) -> list[float]:
    """The rate of each epoch (every epoch evaluated) of PyTorch's ReduceLROnPlateau in
    mode max with a relative threshold, worked out here from the recorded values."""
    best, wait, drops = None, 0, 0
    rates = []
    for v in values:
        rates.append(lr * factor ** drops)  # the rate this epoch trained with
        if best is None or v > best * (1 + threshold):
            best, wait = v, 0
        else:
            wait += 1
            if wait > patience:
                wait, drops = 0, drops + 1
    return rates


def test_plateau_with_monitor_accuracy_lowers_the_rate_when_accuracy_stops_improving(tmp_path):
    # a rate far below a float's resolution of the weights: they never change, so the
    # accuracy provably stops improving after the first evaluation
    decay = {"type": "plateau", "factor": 0.5, "patience": 0}
    write_config(tmp_path, "flat", optimizer={"lr": 1e-30, "decay": decay},
                 train={"epochs": 4, "eval_every": 1, "early_stopping": {
                     "monitor": "accuracy", "patience": None, "restore_best": False}})
    rc, out, err = run_cli(["train", "flat.yaml", "--out", "runs", "-q"], tmp_path)
    assert rc == 0, err
    records = runs.read_metrics(run_folder("runs", tmp_path))
    assert len({r["accuracy"] for r in records}) == 1
    assert [r["lr"] for r in records] == [1e-30, 1e-30, 5e-31, 2.5e-31]


def test_plateau_watches_the_accuracy_in_mode_max(tmp_path):
    # a real run: whatever its trajectory, every rate is the one PyTorch's rule in mode
    # max gives for the accuracies the run recorded
    decay = {"type": "plateau", "factor": 0.5, "patience": 0, "threshold": 0.01}
    write_config(tmp_path, "acc", optimizer={"decay": decay}, train={
        "epochs": 8, "eval_every": 1,
        "early_stopping": {"monitor": "accuracy", "patience": None}})
    rc, out, err = run_cli(["train", "acc.yaml", "--out", "runs", "-q"], tmp_path)
    assert rc == 0, err
    records = runs.read_metrics(run_folder("runs", tmp_path))
    assert [r["lr"] for r in records] == plateau_rates(
        [r["accuracy"] for r in records], lr=0.1, factor=0.5, patience=0, threshold=0.01)


def test_validate_refuses_a_metric_the_run_does_not_record(tmp_path):
    path = write_config(tmp_path, "regression", raw={
        "seed": 3, "data": {"dataset": "diabetes", "validation": 0.2},
        "model": {"layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 1}],
                  "loss": "mse"},
        "train": {"epochs": 2, "early_stopping": {"monitor": "accuracy"}}})
    line = next(i for i, x in enumerate(path.read_text().splitlines(), 1) if "monitor" in x)
    rc, out, err = run_cli(["validate", path.name], tmp_path)
    assert rc == 2 and out == ""
    assert err.strip() == (f"invalid: regression.yaml:{line}: train.early_stopping.monitor: "
                           "got 'accuracy': diabetes is a regression set, whose runs record "
                           "val_loss, mae, rmse, r2; expected one of those")
    # train refuses it the same way, before any run folder exists
    rc, out, err = run_cli(["train", path.name, "--out", "runs"], tmp_path)
    assert rc == 2 and not (tmp_path / "runs").exists()
    assert "train.early_stopping.monitor: got 'accuracy'" in err


@pytest.mark.parametrize("option, says", [
    ("train.early_stopping.monitor=perplexity",
     "got 'perplexity': digits is a classification set, whose runs record val_loss, accuracy "
     "(bits_per_char and perplexity: a character model's); expected one of those"),
    ("train.early_stopping.monitor=acuracy",
     "unknown metric 'acuracy' (did you mean 'accuracy'?); expected one of: val_loss, "
     "accuracy, mae, rmse, r2, bits_per_char, perplexity"),
    ("train.early_stopping.mode=up", "mode must be 'min', 'max' or null, got 'up'"),
])
def test_a_monitor_or_mode_mistake_is_one_line(tmp_path, main_here, option, says):
    write_config(tmp_path, "tiny")
    rc, out, err = main_here("validate", "tiny.yaml", "--set", option)
    assert rc == 2
    key = option.split("=")[0]
    assert err.strip() == f"invalid: tiny.yaml (--set {option}): {key}: {says}"


def test_the_mode_can_be_turned_around(tmp_path):
    # mode min on accuracy keeps the worst evaluation: the mode is the user's to give
    write_config(tmp_path, "worst", train={"epochs": 4, "eval_every": 1, "early_stopping": {
        "monitor": "accuracy", "mode": "min", "patience": None}})
    rc, out, err = run_cli(["train", "worst.yaml", "--out", "runs", "-q", "--json"], tmp_path)
    assert rc == 0, err
    summary = json.loads(out)
    records = runs.read_metrics(run_folder("runs", tmp_path))
    at = ruled_best([r["accuracy"] for r in records], "min")
    assert summary["best_epoch"] == records[at]["epoch"]
    assert summary["best_value"] == min(r["accuracy"] for r in records)


def test_the_library_refuses_a_monitored_metric_without_validation_data():
    import scratchnet as sn

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), np.eye(2)[rng.integers(0, 2, 20)]
    net = sn.NeuralNetwork([sn.Dense(2)], sn.SoftmaxCrossEntropy(), seed=1)
    trainer = sn.Trainer(net, sn.SGD(0.1))
    with pytest.raises(sn.ConfigError, match="monitors accuracy, a metric of the validation"):
        trainer.fit(X, Y, epochs=2, early_stopping=sn.EarlyStopping(monitor="accuracy"))
    with pytest.raises(sn.ConfigError, match="monitors mae, which this run does not record; "
                                              "it records val_loss, accuracy"):
        trainer.fit(X, Y, X, Y, epochs=2, eval_every=1,
                    early_stopping=sn.EarlyStopping(monitor="mae"))


def test_a_checkpoint_of_another_monitor_is_refused_and_a_damaged_one_named():
    import scratchnet as sn
    from scratchnet.errors import CheckpointError
    from scratchnet.nn.checkpoints import check_meta

    accuracy = sn.EarlyStopping(monitor="accuracy")
    assert (accuracy.mode, accuracy.best) == ("max", -np.inf)
    meta, arrays = sn.EarlyStopping().state_dict()  # the validation loss, mode min
    with pytest.raises(sn.ConfigError, match="the checkpoint's early stopping monitored "
                                              "val_loss \\(mode min\\); this fit monitors "
                                              "accuracy \\(mode max\\)"):
        accuracy.load_state_dict(meta, arrays)
    # a checkpoint of an earlier release: the loss, under best_loss
    loss = sn.EarlyStopping()
    loss.load_state_dict({"best_loss": 0.25, "best_epoch": 3, "wait": 1}, {})
    assert (loss.best, loss.best_epoch, loss.wait) == (0.25, 3, 1)
    for bad in ("accuracy ", ["accuracy"], 3):
        with pytest.raises(CheckpointError, match="early_stopping.monitor is"):
            check_meta({"epoch": 0, "batch": 0, "batch_size": 1, "loss_sum": 0.0,
                        "shuffle_rng": np.random.default_rng(0).bit_generator.state,
                        "dropout_rng": np.random.default_rng(0).bit_generator.state,
                        "early_stopping": {"monitor": bad}})
