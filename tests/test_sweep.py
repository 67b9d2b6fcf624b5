"""Sweeps: grid x seeds in worker processes, failing points, resuming, and a real Dask
cluster. Every run trains for real on scikit-learn's bundled data sets (a few epochs)."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scratchnet import runs
from scratchnet.nn.callbacks import Callback
from conftest import digits_config, run_main as cli
from scratchnet.config import load_config
from scratchnet.errors import ConfigError
from scratchnet.experiment import train_experiment
from scratchnet.config.diff import differing_keys, short_keys
from scratchnet.sweep import (STATE, SweepFolder, check_grid, parse_grid_option, plan, point_id,
                              run_sweep)

REGRESSION = {
    "name": "diabetes_tiny",
    "seed": 3,
    "data": {"dataset": "diabetes", "scale": "standard", "validation": 0.2},
    "model": {"layers": [{"neurons": 8, "activation": "tanh"},
                         {"neurons": 1, "activation": "linear"}],
              "loss": "mean_squared_error"},
    "optimizer": {"name": "sgd_momentum", "lr": 0.01, "momentum": 0.9},
    "train": {"epochs": 3, "batch_size": 32},
}

DIGITS = digits_config(name="digits_small", train={"epochs": 4})


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path




def only_sweep(out_dir: Path) -> Path:
    folders = [p for p in out_dir.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


# -- the grid ------------------------------------------------------------------------------
def test_grid_option_reads_yaml_values_and_keeps_mappings_whole():
    assert parse_grid_option("optimizer.lr=0.05,0.1,0.2") == ("optimizer.lr", [0.05, 0.1, 0.2])
    key, values = parse_grid_option(
        "model.layers.0.activation=tanh,{name: leaky_relu, negative_slope: 0.1}")
    assert key == "model.layers.0.activation"
    assert values == ["tanh", {"name": "leaky_relu", "negative_slope": 0.1}]
    assert parse_grid_option("train.batch_size=[16, 32]") == ("train.batch_size", [16, 32])
    assert parse_grid_option("train.early_stopping=true,false")[1] == [True, False]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_grid_option("optimizer.lr")


@pytest.mark.parametrize("grid, message", [
    ({"optimizer.lr": []}, "non-empty list"),
    ({"optimizer.lr": [0.1, 0.1]}, "listed twice"),
    ({"name": ["a", "b"]}, "cannot be swept"),
    ({"optimizer..lr": [1]}, "bad key"),
])
def test_bad_grids_are_refused(grid, message):
    with pytest.raises(ConfigError, match=message):
        check_grid(grid)


def test_plan_is_the_cross_product_with_seeds_and_stable_ids():
    base = load_config_dict(DIGITS)
    grid = {"optimizer.lr": [0.05, 0.1], "model.layers.0.activation": ["tanh", "sigmoid", "relu"]}
    points, tasks = plan(base, grid, seeds=2)
    assert len(points) == 6 and len(tasks) == 12
    # the first key varies slowest, like itertools.product
    assert [p.overrides["optimizer.lr"] for p in points] == [0.05] * 3 + [0.1] * 3
    # seed k runs with cfg.seed + k, and every run has its own name
    assert sorted({t.seed for t in tasks}) == [7, 8]
    assert len({t.run_name for t in tasks}) == 12
    for t in tasks:
        assert t.config["seed"] == t.seed and t.config["name"] == t.run_name
        p = next(p for p in points if p.id == t.point)
        assert t.config["optimizer"]["lr"] == p.overrides["optimizer.lr"]
        assert (t.config["model"]["layers"][0]["activation"]
                == p.overrides["model.layers.0.activation"])
    # the id depends on the values, not on the order of the grid's keys
    again, _ = plan(base, dict(reversed(list(grid.items()))), seeds=1)
    assert {p.id for p in again} == {p.id for p in points}
    assert point_id({"a": 1, "b": 2}) == point_id({"b": 2, "a": 1}) != point_id({"a": 1, "b": 3})


def test_an_invalid_point_is_planned_with_its_error_not_dropped():
    points, tasks = plan(load_config_dict(DIGITS), {"optimizer.lr": [0.1, -1]}, seeds=1)
    good, bad = tasks
    assert good.error is None and good.config is not None
    assert bad.config is None
    assert "optimizer.lr" in bad.error and "-1" in bad.error


def test_a_grid_with_no_valid_point_is_refused_before_any_folder(tmp_path):
    cfg = load_config(write_config(tmp_path / "d.yaml", DIGITS))
    with pytest.raises(ConfigError, match="no grid point"):
        SweepFolder.create(tmp_path / "sweeps", cfg, {"optimizer.lrr": [0.1, 0.2]})
    assert not (tmp_path / "sweeps").exists()


def test_short_keys_keep_list_indices_with_their_names():
    names = short_keys(["optimizer.lr", "model.layers.0.activation", "model.layers.1.activation",
                        "optimizer.decay.final_lr"])
    assert names == {"optimizer.lr": "lr", "model.layers.0.activation": "layers.0.activation",
                     "model.layers.1.activation": "layers.1.activation",
                     "optimizer.decay.final_lr": "final_lr"}
    assert differing_keys([{"name": "a", "x": {"y": 1, "z": 2}},
                           {"name": "b", "x": {"y": 1, "z": 3}}]) == ["x.z"]


def load_config_dict(raw: dict) -> dict:
    from scratchnet.config import validate

    return validate(dict(raw), "test").to_dict()


# -- a real sweep through the command line ---------------------------------------------------
def test_the_sweep_table_reads_whole_at_80_columns(tmp_path):
    """Ten columns of regression metrics do not fit 80 columns: the points turn into
    columns, nothing is cut short with an ellipsis, and each failed point's error is a
    line of its own under the table."""
    cfg = dict(REGRESSION, sweep={"grid": {"optimizer.lr": [0.001, 100, -1]}, "seeds": 1})
    path = write_config(tmp_path / "reg.yaml", cfg)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "scratchnet", "sweep", path, "--jobs", "1",
                           "--out", tmp_path / "sweeps"], capture_output=True, text=True,
                          env={**env, "COLUMNS": "80"}, timeout=120)
    assert proc.returncode == 1, proc.stderr  # two points failed
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in proc.stdout, proc.stdout
    assert "ok (best)" in proc.stdout
    errors = [line for line in lines if ": diverged: " in line or ": invalid: " in line]
    assert len(errors) == 2 and "lr must be a number > 0" in proc.stdout, proc.stdout


def test_sweep_grid_x_seeds_in_worker_processes_with_failing_points(tmp_path, capsys):
    # The file's sweep: section gives the learning rates (one fine, one that diverges, one
    # invalid) and the seeds; the command line adds the activation.
    cfg = dict(REGRESSION, sweep={"grid": {"optimizer.lr": [0.001, 100, -1]}, "seeds": 2})
    path = write_config(tmp_path / "reg.yaml", cfg)
    code, out, err = cli(capsys, "sweep", path, "--grid", "model.layers.0.activation=tanh,sigmoid",
                         "--jobs", "2", "--out", tmp_path / "sweeps")
    assert code == 1, err  # some points failed: the exit status says so
    folder = only_sweep(tmp_path / "sweeps")
    assert "(best)" in out and "diverged" in out and "invalid" in out

    results = json.loads((folder / "results.json").read_text())
    rows = {(r["overrides"]["optimizer.lr"], r["overrides"]["model.layers.0.activation"]): r
            for r in results["points"]}
    assert len(rows) == 6 and results["seeds"] == 2
    for act in ("tanh", "sigmoid"):
        assert rows[(0.001, act)]["status"] == "ok" and rows[(0.001, act)]["runs_ok"] == 2
        assert rows[(100, act)]["status"] == "diverged"
        assert "diverged" in rows[(100, act)]["error"]
        assert rows[(-1, act)]["status"] == "invalid"
        assert "optimizer.lr" in rows[(-1, act)]["error"]

    # mean and (sample) std agree with the run folders' own summaries
    state = json.loads((folder / STATE).read_text())
    for act in ("tanh", "sigmoid"):
        row = rows[(0.001, act)]
        maes = []
        for rel in row["run_dirs"]:
            summary = json.loads((folder / rel / runs.SUMMARY).read_text())
            assert summary["status"] == "completed"
            assert summary["config"]["model"]["layers"][0]["activation"] == act
            assert summary["config"]["optimizer"]["lr"] == 0.001
            maes.append(summary["test"]["mae"])
        assert sorted(json.loads((folder / rel / runs.SUMMARY).read_text())["config"]["seed"]
                      for rel in row["run_dirs"]) == [3, 4]
        mean = sum(maes) / 2
        std = math.sqrt(sum((m - mean) ** 2 for m in maes))  # n - 1 = 1
        assert row["metrics"]["mae"]["mean"] == pytest.approx(mean)
        assert row["metrics"]["mae"]["std"] == pytest.approx(std)
    best = [r for r in results["points"] if r["best"]]
    assert len(best) == 1 and best[0]["status"] == "ok"
    ok = [r for r in results["points"] if r["status"] == "ok"]
    assert (best[0]["metrics"]["val_loss"]["mean"]
            == min(r["metrics"]["val_loss"]["mean"] for r in ok))

    # every run is recorded; diverged runs keep their folder, invalid ones never had one
    statuses = sorted(e["status"] for e in state["runs"].values())
    assert statuses == ["completed"] * 4 + ["diverged"] * 4 + ["invalid"] * 4
    assert len(list((folder / "runs").iterdir())) == 8

    with open(folder / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6
    assert {"point", "optimizer.lr", "model.layers.0.activation", "status", "mae_mean", "mae_std",
            "best"} <= set(table[0])
    assert sum(int(r["best"]) for r in table) == 1


class StopAfter(Callback):
    """What Ctrl-C in the middle of training leaves: raised after epoch ``n``'s checkpoint."""

    def __init__(self, n):
        self.n = n

    def on_epoch_end(self, trainer, epoch):
        if epoch + 1 == self.n:
            raise KeyboardInterrupt


def test_resume_skips_finished_runs_and_continues_a_stopped_one(tmp_path, capsys):
    cfg = load_config(write_config(tmp_path / "d.yaml",
                                   dict(DIGITS, train=dict(DIGITS["train"], epochs=4))))
    folder = SweepFolder.create(tmp_path / "sweeps", cfg, {"optimizer.lr": [0.05, 0.1, 0.2]},
                                seeds=1)
    seen = []

    def stop_after_two(task, entry):
        seen.append(task.key)
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the sweep waits for the next run

    with pytest.raises(KeyboardInterrupt):
        run_sweep(folder, jobs=1, on_result=stop_after_two)
    state = json.loads((folder.path / STATE).read_text())
    assert sorted(state["runs"]) == sorted(seen)
    finished = {k: folder.path / e["run_dir"] for k, e in state["runs"].items()}
    stamps = {k: (p / runs.SUMMARY).stat().st_mtime_ns for k, p in finished.items()}

    # the third run is stopped by Ctrl-C after its second epoch's checkpoint
    third = next(t for t in folder.tasks if t.key not in seen)
    from scratchnet.config import validate

    with pytest.raises(KeyboardInterrupt):
        train_experiment(validate(third.config), out=folder.runs_dir, callbacks=[StopAfter(2)])
    stopped = [p for p in folder.runs_dir.iterdir() if p.name.startswith(third.run_name + "-")]
    assert len(stopped) == 1 and (stopped[0] / runs.CHECKPOINT).exists()
    assert not (stopped[0] / runs.SUMMARY).exists()

    code, out, err = cli(capsys, "sweep", "--resume", folder.path, "--json", "--jobs", "1")
    assert code == 0, err
    assert "2 runs were already finished" in err
    result = json.loads(out)
    assert [r["status"] for r in result["points"]] == ["ok"] * 3
    state = json.loads((folder.path / STATE).read_text())
    for k, p in finished.items():  # not run again: same folder, summary untouched
        assert folder.path / state["runs"][k]["run_dir"] == p
        assert (p / runs.SUMMARY).stat().st_mtime_ns == stamps[k]
    # the stopped run went on in its own folder from its checkpoint: epochs 1..4, once each
    assert folder.path / state["runs"][third.key]["run_dir"] == stopped[0]
    assert [r["epoch"] for r in runs.read_metrics(stopped[0])] == [1, 2, 3, 4]
    assert len(list(folder.runs_dir.iterdir())) == 3

    # A run that finished while nobody recorded it (the sweep killed just then) is
    # adopted from its folder, not trained again.
    state["runs"].pop(third.key)
    runs.write_json(folder.path / STATE, state)
    code, out, err = cli(capsys, "sweep", "--resume", folder.path, "--jobs", "1", "--quiet")
    assert code == 0, err
    assert len(list(folder.runs_dir.iterdir())) == 3
    assert json.loads((folder.path / STATE).read_text())["runs"][third.key]["status"] == "completed"


def test_resume_refuses_a_new_plan_and_a_missing_folder(tmp_path, capsys):
    code, _, err = cli(capsys, "sweep", "--resume", tmp_path / "nope")
    assert code == 2 and "not a sweep folder" in err
    cfg = write_config(tmp_path / "d.yaml", DIGITS)
    code, _, err = cli(capsys, "sweep", cfg, "--resume", tmp_path)
    assert code == 2 and "--resume takes the plan" in err
    code, _, err = cli(capsys, "sweep", cfg, "--grid", "optimizer.lr=0.1",
                       "--grid", "optimizer.lr=0.2")
    assert code == 2 and "given twice" in err


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_the_sweep_resumes(tmp_path):
    """A real SIGINT to a running `scratchnet sweep`: exit 130 with the resume command, the
    finished runs recorded; `--resume` runs only the rest."""
    cfg = write_config(tmp_path / "d.yaml", dict(DIGITS, train=dict(DIGITS["train"], epochs=30)))
    cmd = [sys.executable, "-m", "scratchnet", "sweep", str(cfg), "--grid",
           "optimizer.lr=0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08", "--jobs", "2",
           "--out", str(tmp_path / "sweeps")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        recorded = 0
        while time.monotonic() < deadline and proc.poll() is None:
            states = list((tmp_path / "sweeps").glob(f"*/{STATE}"))
            if states:
                try:
                    recorded = len(json.loads(states[0].read_text())["runs"])
                except (json.JSONDecodeError, KeyError):
                    recorded = 0
                if recorded >= 1:
                    break
            time.sleep(0.02)
        assert recorded >= 1 and proc.poll() is None, "the sweep should still be running"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    folder = only_sweep(tmp_path / "sweeps")
    assert f"scratchnet sweep --resume {folder}" in err
    state = json.loads((folder / STATE).read_text())
    done = {k: e["run_dir"] for k, e in state["runs"].items()}
    assert 1 <= len(done) < 8
    assert (folder / "results.csv").exists()  # the partial table is written too

    resumed = subprocess.run([sys.executable, "-m", "scratchnet", "sweep", "--resume", str(folder),
                              "--jobs", "2", "--json"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((folder / STATE).read_text())
    assert len(state["runs"]) == 8
    assert all(e["status"] == "completed" for e in state["runs"].values())
    for k, rel in done.items():
        assert state["runs"][k]["run_dir"] == rel
    # one folder per run, plus at most the folders of runs stopped before their first
    # checkpoint (started again from scratch)
    finished_dirs = {folder / e["run_dir"] for e in state["runs"].values()}
    assert len(finished_dirs) == 8


# -- Dask -----------------------------------------------------------------------------------
@pytest.fixture
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.mark.slow
def test_sweep_on_a_dask_cluster(dask_cluster, tmp_path, capsys):
    from distributed import Client, get_task_stream

    cfg = write_config(tmp_path / "d.yaml", DIGITS)
    with Client(dask_cluster.scheduler_address) as client, get_task_stream(client) as stream:
        code, out, err = cli(capsys, "sweep", cfg, "--grid", "optimizer.lr=0.05,0.1",
                             "--seeds", "2",
                             "--executor", "dask", "--address", dask_cluster.scheduler_address,
                             "--out", tmp_path / "sweeps", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [r["status"] for r in result["points"]] == ["ok", "ok"]
    # the four runs ran as tasks on the cluster's worker processes...
    tasks = [t for t in stream.data if "run_task_shipped" in t["key"] or "scratchnet" in t["key"]]
    assert len(tasks) == 4
    assert {t["worker"] for t in tasks} <= set(dask_cluster.scheduler_info["workers"])
    # ...and their run folders came back into the sweep folder, complete
    folder = only_sweep(tmp_path / "sweeps")
    dirs = sorted((folder / "runs").iterdir())
    assert len(dirs) == 4
    for d in dirs:
        assert ({runs.CONFIG, runs.DATA, runs.METRICS, runs.WEIGHTS, runs.SUMMARY}
                <= {p.name for p in d.iterdir()})
        summary = json.loads((d / runs.SUMMARY).read_text())
        assert summary["status"] == "completed" and Path(summary["run_dir"]) == d
    # compare reads the sweep folder like any other
    code, out, err = cli(capsys, "compare", folder, "--json")
    assert code == 0, err
    assert json.loads(out)["keys"] == ["seed", "optimizer.lr"]


def test_dask_executor_needs_a_reachable_scheduler(tmp_path, capsys):
    cfg = write_config(tmp_path / "d.yaml", DIGITS)
    code, _, err = cli(capsys, "sweep", cfg, "--executor", "dask", "--out", tmp_path / "s")
    assert code == 2 and "--address" in err
    code, _, err = cli(capsys, "sweep", cfg, "--executor", "dask", "--address", "tcp://127.0.0.1:9",
                       "--out", tmp_path / "s")
    assert code == 1 and "cannot reach the Dask scheduler" in err
    assert not (tmp_path / "s").exists()
