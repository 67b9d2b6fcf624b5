"""Nothing hangs, nothing explodes, part 5 (issue 26): values nobody checked, and runs that
stop at the worst moment. NaN or infinities in a run's scaling or weights, a config
edited after training, sweep grid keys that overlap; a disk that fills at the first
checkpoint, a run killed between its last checkpoint and its summary.

Every case runs the real command line within bounds of time and memory
(:func:`~hostile_helpers.run_bounded`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import write_config
from hostile_helpers import one_line, run_bounded
from scratchnet import runs
from scratchnet.errors import ConfigError
from scratchnet.sweep.grid import check_grid

#: the fixtures ``trained`` (a finished run) and ``run`` (a copy to damage)
pytest_plugins = ["hostile_helpers"]


# -- values nobody checked ------------------------------------------------------------------
def _commands(run_dir: Path, tmp_path: Path) -> dict[str, list]:
    """eval, predict and export of ``run_dir`` (a digits run): what reads its values."""
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 64)))
    return {"eval": ["eval", run_dir], "predict": ["predict", run_dir, rows],
            "export": ["export", run_dir, "-o", tmp_path / "model.onnx"]}


def _edit_scaler(run_dir: Path, key: str, value) -> None:
    info = json.loads((run_dir / runs.DATA).read_text())
    info["scaler"][key] = [value] + info["scaler"][key][1:]
    (run_dir / runs.DATA).write_text(json.dumps(info))  # (json writes NaN, Infinity)


SCALINGS = [
    ("mean", float("nan"), "scaler: saved scaler: mean holds NaN or infinite values"),
    ("std", float("inf"), "scaler: saved scaler: std holds NaN or infinite values"),
    ("std", 0.0, "scaler: saved scaler: std holds a zero"),
]


def test_a_scaler_that_is_not_finite_is_refused_naming_data_json(run, tmp_path):
    """(was: every prediction class 0, 33% accuracy, exit 0)"""
    key, value, expected = SCALINGS[0]
    _edit_scaler(run, key, value)
    code, out, err, _ = run_bounded(_commands(run, tmp_path)["predict"], tmp_path)
    assert code == 1 and out == "", err
    assert f"{run / runs.DATA}: {expected}" in one_line(err)


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
@pytest.mark.parametrize("key, value, expected", SCALINGS)
def test_every_command_refuses_every_scaling_that_is_not_finite(run, tmp_path, main_here,
                                                               command, key, value, expected):
    pytest.importorskip("onnx") if command == "export" else None
    _edit_scaler(run, key, value)
    code, out, err = main_here(*_commands(run, tmp_path)[command])
    assert code == 1 and out == "", err
    assert f"{run / runs.DATA}: {expected}" in one_line(err)
    assert not (tmp_path / "model.onnx").exists()


def _spoil_weights(run_dir: Path, bad: float) -> str:
    arrays, meta = runs.load_arrays(run_dir / runs.WEIGHTS)
    name = sorted(arrays)[0]
    arrays[name].flat[3] = bad
    runs.save_arrays(run_dir / runs.WEIGHTS, arrays, meta)
    return name


def test_weights_that_are_not_finite_are_refused_naming_the_file(run, tmp_path):
    name = _spoil_weights(run, np.nan)
    code, out, err, _ = run_bounded(_commands(run, tmp_path)["eval"], tmp_path)
    assert code == 1 and out == "", err
    assert f"{run / runs.WEIGHTS}: {name} holds NaN or infinite values; refusing to use " \
           "these weights" in one_line(err)


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_every_command_refuses_weights_that_are_not_finite(run, tmp_path, main_here, command,
                                                           bad):
    pytest.importorskip("onnx") if command == "export" else None
    name = _spoil_weights(run, bad)
    code, out, err = main_here(*_commands(run, tmp_path)[command])
    assert code == 1 and out == "", err
    assert f"{run / runs.WEIGHTS}: {name} holds NaN or infinite values" in one_line(err)


def test_a_config_edited_after_training_is_one_warning_in_eval_predict_and_export(run,
                                                                                tmp_path):
    """tanh to relu, same shapes (issue 26: only eval said so)."""
    pytest.importorskip("onnx")
    raw = yaml.safe_load((run / runs.CONFIG).read_text())
    raw["model"]["layers"][0]["activation"] = "relu"
    (run / runs.CONFIG).write_text(yaml.safe_dump(raw, sort_keys=False))
    for command, args in _commands(run, tmp_path).items():
        code, out, err, _ = run_bounded(args, tmp_path)
        assert code == 0, err
        assert one_line(err) == f"warning: {run / runs.CONFIG} was edited after training " \
                                "(its hash differs from the one stored in summary.json)", command
        assert out


@pytest.mark.parametrize("grid", [
    ["optimizer.lr=0.1,0.2", "optimizer={name: sgd, lr: 0.3}"],
    ["model.layers.0={neurons: 8, activation: tanh}", "model.layers.0.neurons=4,8"],
])
def test_overlapping_sweep_grid_keys_are_refused(tmp_path, grid):
    """(issue 26: both points trained with lr 0.3; results.csv said 0.1 and 0.2)"""
    cfg = write_config(tmp_path, "tiny")
    args = ["sweep", cfg]
    for g in grid:
        args += ["--grid", g]
    code, _, err, _ = run_bounded(args, tmp_path)
    assert code == 2, err
    outer, inner = sorted(g.split("=")[0] for g in grid)
    assert f"sweep grid: {outer} and {inner} overlap ({outer} sets {inner} too)" in one_line(err)
    assert not (tmp_path / "sweeps").exists()


def test_grid_keys_that_only_share_a_beginning_do_not_overlap():
    grid = {"optimizer.lr": [0.1], "optimizer.lr_decay": [0.5], "model.layers.1.neurons": [2],
            "model.layers.10.neurons": [3]}
    assert check_grid(grid) is grid
    with pytest.raises(ConfigError, match="model.layers.1 and model.layers.1.neurons overlap"):
        check_grid({**grid, "model.layers.1": [{"neurons": 4}]})


# -- runs that stop at the worst moment -------------------------------------------------------
WIDE = {"model": {"layers": [{"neurons": 400, "activation": "tanh"},
                             {"neurons": 10, "activation": "linear"}]},
        "train": {"epochs": 2, "batch_size": 64, "eval_every": 1}}


def test_a_run_the_disk_stopped_before_its_first_checkpoint_resumes(tmp_path):
    """Files of at most 250 KiB (RLIMIT_FSIZE, a disk that fills): the weights (~100 KB)
    are written, the first checkpoint (~300 KB) is not. The message says the run folder
    holds what was saved and how to resume it; resuming trains it from the start, into
    the weights of the same run never stopped (issue 26: "no checkpoint to resume")."""
    cfg = write_config(tmp_path, "wide", **WIDE)
    code, _, err, _ = run_bounded(["train", cfg, "--out", "runs", "--quiet"], tmp_path,
                                  file_size=250 * 1024)
    assert code == 1, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    named = run_dir.relative_to(tmp_path)  # as --out gave it
    assert f"{named / runs.CHECKPOINT}: cannot write: the file would be larger than this " \
           f"process may write (ulimit -f); {named} holds what was saved so far; once there " \
           f"is room: scratchnet train --resume {named}" in one_line(err)
    assert (run_dir / runs.WEIGHTS).exists() and not (run_dir / runs.CHECKPOINT).exists()
    code, _, err, _ = run_bounded(["train", "--resume", run_dir, "--quiet"], tmp_path)
    assert code == 0, err
    assert one_line(err) == f"warning: {run_dir} has no {runs.CHECKPOINT} (it stopped before " \
                            "its first one): training it from the start"
    assert runs.read_summary(run_dir)["status"] == "completed"
    code, _, err, _ = run_bounded(["train", cfg, "--out", "again", "--quiet"], tmp_path)
    assert code == 0, err
    (again,) = (tmp_path / "again").iterdir()
    _same_weights(run_dir, again)


def _same_weights(a: Path, b: Path) -> None:
    wa, _ = runs.load_arrays(a / runs.WEIGHTS)
    wb, _ = runs.load_arrays(b / runs.WEIGHTS)
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert np.array_equal(wa[name], wb[name]), name


@pytest.mark.parametrize("stopping", [False, {"patience": 1, "min_delta": 10.0}, "notebook"])
def test_a_run_killed_before_its_summary_is_finished_by_resume(tmp_path, stopping):
    """Killed after its final checkpoint, before ``summary.json`` (issue 26: resume said
    "already completed" while compare showed it incomplete): resuming trains no batch,
    writes the summary the run would have written, and compare shows it completed. Also
    for a run that stopped early (min_delta 10: no evaluation improves enough)."""
    cfg = write_config(tmp_path, "run", train={"epochs": 4, "early_stopping": stopping})
    code, _, err, _ = run_bounded(["train", cfg, "--out", "runs", "--quiet"], tmp_path)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    finished = runs.read_summary(run_dir)
    weights = (run_dir / runs.WEIGHTS).read_bytes()
    (run_dir / runs.SUMMARY).unlink()  # what a kill -9 at that moment leaves
    code, out, err, _ = run_bounded(["compare", run_dir, "--json"], tmp_path)
    assert json.loads(out)["runs"][0]["status"] != "completed"
    code, _, err, _ = run_bounded(["train", "--resume", run_dir, "--quiet"], tmp_path)
    assert code == 0, err
    summary = runs.read_summary(run_dir)
    for key in ("status", "epochs_run", "best_epoch", "weights_epoch", "stopped_early", "test"):
        assert summary[key] == finished[key], key
    assert (run_dir / runs.WEIGHTS).read_bytes() == weights
    code, out, err, _ = run_bounded(["compare", run_dir, "--json"], tmp_path)
    assert json.loads(out)["runs"][0]["status"] == "completed"
    code, _, err, _ = run_bounded(["train", "--resume", run_dir], tmp_path)  # and now it is
    assert code == 2 and "the run already completed" in one_line(err)
