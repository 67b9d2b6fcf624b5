"""Where a run ran (issue 29): ``summary.json`` records the environment, ``compare`` shows
what differs, and a resume on another BLAS kernel or CPU warns once. Through the real
command line; a run "from another machine" is one whose recorded environment was edited
in its folder (the tests never change OPENBLAS_CORETYPE)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_config
from scratchnet import runs


def _train(tmp_path, *args) -> Path:
    path = write_config(tmp_path, "tiny")
    rc, out, err = run_cli(["train", path, "--json", "-q", *args], tmp_path)
    assert rc == 0, err
    return tmp_path / json.loads(out)["run_dir"]


def _cpuinfo_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), None)


def test_summary_records_versions_blas_cpu_and_platform(tmp_path):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    env = runs.read_summary(_train(tmp_path))["environment"]
    assert env["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert env["numpy"] == np.__version__
    assert env["scratchnet"] == __import__("scratchnet").__version__
    assert env["platform"] == platform.platform()
    model = _cpuinfo_model()
    assert env["cpu"] == (model if model is not None else env["cpu"]) and env["cpu"]
    found = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
             and "numpy" in lib["filepath"]]
    if found:  # the library this test process's NumPy links: the child's is the same
        assert env["blas"]["library"] == found[0]["internal_api"]
        assert env["blas"]["version"] == found[0]["version"]
        assert env["blas"]["kernel"] == found[0]["architecture"]
        assert env["blas"]["threads"] == 1  # the trainer's default BLAS threads


def _edit_summary_environment(run_dir: Path, **changes) -> None:
    summary = runs.read_json(run_dir / runs.SUMMARY)
    summary["environment"].update(changes)
    runs.write_json(run_dir / runs.SUMMARY, summary)


def test_compare_lists_the_environment_keys_that_differ(tmp_path):
    a, b = _train(tmp_path / "a"), _train(tmp_path / "b")
    rc, out, err = run_cli(["compare", a, b, "--json"], tmp_path)
    assert rc == 0, err
    assert json.loads(out)["keys"] == []  # same config, same machine
    _edit_summary_environment(b, cpu="Some Other CPU", numpy="1.26.4")
    rc, out, err = run_cli(["compare", a, b, "--json"], tmp_path)
    assert rc == 0, err
    table = json.loads(out)
    assert table["keys"] == ["environment.numpy", "environment.cpu"]
    assert [r["config"]["environment.cpu"] for r in table["runs"]] == [
        runs.read_summary(a)["environment"]["cpu"], "Some Other CPU"]
    rc, out, err = run_cli(["compare", a, b], tmp_path, env={"COLUMNS": "200"})
    assert rc == 0, err
    assert "environment.cpu" in out or "cpu" in out
    assert "Some Other CPU" in out


def _move_checkpoint(run_dir: Path, **blas) -> dict:
    """Rewrite the checkpoint's recorded environment as if saved with other BLAS values."""
    path = run_dir / runs.CHECKPOINT
    arrays, meta = runs.load_arrays(path)
    recorded = meta["environment"]
    recorded["blas"].update(blas)
    runs.save_arrays(path, arrays, meta)
    return recorded


def test_a_resume_on_another_blas_kernel_warns_once_and_trains_on(tmp_path):
    run_dir = _train(tmp_path, "--set", "train.epochs=2")
    if runs.read_summary(run_dir)["environment"]["blas"] is None:
        pytest.skip("threadpoolctl finds no BLAS library under this NumPy")
    kernel = runs.read_summary(run_dir)["environment"]["blas"]["kernel"]
    config = tmp_path / "tiny.yaml"
    # same machine: extending the run says nothing
    rc, out, err = run_cli(["train", config, "--resume", run_dir, "--set", "train.epochs=3",
                            "--json", "-q"], tmp_path)
    assert rc == 0 and "warning" not in err, err
    _move_checkpoint(run_dir, kernel="NotThisKernel")
    rc, out, err = run_cli(["train", config, "--resume", run_dir, "--set", "train.epochs=3",
                            "--json", "-q"], tmp_path)
    assert rc == 0, err
    (line,) = [line for line in err.splitlines() if "warning" in line]
    assert line.startswith(f"warning: resuming {run_dir}"), line
    assert f"blas.kernel NotThisKernel -> {kernel}" in line and "bit for bit" in line
    assert json.loads(out)["status"] == "completed"


def test_an_interrupted_run_resumed_on_another_cpu_warns_once(tmp_path):
    from scratchnet.config import load_config
    from scratchnet.experiment import train_experiment
    from scratchnet.nn import Callback

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, epoch):
            trainer.stop_requested = True

    config = write_config(tmp_path, "tiny", train={"epochs": 3})
    first = train_experiment(load_config(config), out=tmp_path / "runs",
                             callbacks=[StopAfterFirstEpoch()])
    assert first.status == "interrupted"
    path = first.run_dir / runs.CHECKPOINT
    arrays, meta = runs.load_arrays(path)
    cpu = meta["environment"]["cpu"]
    meta["environment"]["cpu"] = "A CPU elsewhere"
    runs.save_arrays(path, arrays, meta)
    rc, out, err = run_cli(["train", config, "--resume", first.run_dir, "--json", "-q"], tmp_path)
    assert rc == 0, err
    (line,) = err.strip().splitlines()
    assert line.startswith("warning: resuming") and f"cpu A CPU elsewhere -> {cpu}" in line
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["epochs_run"] == 3
