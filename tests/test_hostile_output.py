"""Nothing hangs, nothing explodes (issue 15), part 2: full and read-only disks and names
too long for the file system, NaN in --json, a CSV changed since training, control
characters from data files on their way to a terminal, and what a pickled estimator
keeps."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_config
from hostile_helpers import LIMIT, one_line
from scratchnet import files, runs
from scratchnet.config import load_config
from scratchnet.experiment import train_experiment

#: the fixtures ``trained`` (a finished run) and ``run`` (a copy to damage)
pytest_plugins = ["hostile_helpers"]


# -- full and read-only disks, names too long ------------------------------------------------
def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _limit_file_size(limit: int):
    def preexec():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_a_full_disk_is_one_line_and_the_run_folder_keeps_what_was_saved(tmp_path):
    """``--out`` on a 2 MB tmpfs, nearly filled; where mounting is not allowed, the same
    through a file size limit (RLIMIT_FSIZE) on the training process."""
    cfg = write_config(tmp_path, "wide", model={"layers": [
        {"neurons": 400, "activation": "tanh"}, {"neurons": 10, "activation": "linear"}]})
    disk, preexec = tmp_path / "disk", None
    if _mount(disk, "size=2m"):
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * (free - 150 * files.KiB))
        expected = "no space left on the device (the disk is full)"
    else:
        disk.mkdir(exist_ok=True)
        preexec, expected = _limit_file_size(150 * files.KiB), "larger than this process may write"
    try:
        env = {k: v for k, v in os.environ.items() if k != "SCRATCHNET_DEBUG"}
        proc = subprocess.run([sys.executable, "-m", "scratchnet", "train", str(cfg), "--out",
                               str(disk / "runs"), "--quiet"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=LIMIT, preexec_fn=preexec)
        assert proc.returncode == 1, proc.stderr
        line = one_line(proc.stderr)
        (run_dir,) = (disk / "runs").iterdir()
        assert expected in line and f"{run_dir} holds what was saved so far" in line
        assert runs.CONFIG in {p.name for p in run_dir.iterdir()}
        assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # nothing half-written
    finally:
        _umount(disk)


@pytest.mark.slow
def test_a_read_only_output_folder_and_a_name_too_long(tmp_path):
    cfg = write_config(tmp_path, "tiny")
    ro = tmp_path / "ro"
    if not _mount(ro, "ro,size=1m"):
        pytest.skip("cannot mount a read-only tmpfs here (not root?); chmod is no test for root")
    try:
        code, _, err = run_cli(["train", cfg, "--out", ro], tmp_path, timeout=LIMIT)
        assert code == 2 and f"--out {ro}: cannot create the folder tiny-" in one_line(err)
        assert "the file system is read-only" in err
        code, _, err = run_cli(["sweep", cfg, "--out", ro / "sweeps"], tmp_path, timeout=LIMIT)
        assert code == 2 and f"--out {ro / 'sweeps'}: cannot create (the file system is " \
                             "read-only)" in one_line(err)
    finally:
        _umount(ro)
    long = tmp_path / ("n" * 300)
    code, _, err = run_cli(["train", cfg, "--out", long], tmp_path, timeout=LIMIT)
    assert code == 2 and "the name is too long for the file system" in one_line(err)


# -- what reaches stdout and the terminal ---------------------------------------------------
def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_output_never_holds_nan(run, tmp_path):
    arrays, meta = runs.load_arrays(run / runs.WEIGHTS)
    arrays["layers.1.W"] = np.full_like(arrays["layers.1.W"], 3e38)  # logits overflow
    runs.save_arrays(run / runs.WEIGHTS, arrays, meta)
    code, out, err = run_cli(["eval", run, "--json", "--proba", "2"], tmp_path, timeout=LIMIT)
    assert code == 0, err
    result = _strict_json(out)
    assert result["test"]["loss"] is None
    np.save(tmp_path / "x.npy", np.zeros((2, 64)))
    code, out, err = run_cli(["predict", run, "x.npy", "--proba", "3", "-f", "json"], tmp_path,
                             timeout=LIMIT)
    assert code == 0, err
    assert _strict_json(out)[0]["top"][0]["probability"] is None


def _csv_run(tmp_path: Path, header: str, labels: tuple[str, str]) -> Path:
    """A one-epoch run (trained in this process) on a CSV file with ``header`` and two
    classes ``labels``; returns its run folder."""
    rng = np.random.default_rng(3)
    rows = [f"{a:.3f},{b:.3f},{labels[int(a + b > 0)]}" for a, b in rng.normal(size=(60, 2))]
    (tmp_path / "data.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    cfg = write_config(tmp_path, "csv", data={"dataset": "csv", "path": str(tmp_path / "data.csv"),
                                              "target": "y"},
                       model={"layers": [{"neurons": 8, "activation": "tanh"},
                                         {"neurons": 2, "activation": "linear"}]},
                       train={"epochs": 1, "batch_size": 16})
    return train_experiment(load_config(cfg), out=tmp_path / "runs").run_dir


def test_eval_warns_when_the_csv_changed_since_training(tmp_path):
    run_dir = _csv_run(tmp_path, "a,b,y", ("no", "yes"))
    info = json.loads((run_dir / runs.DATA).read_text())
    assert info["source_file"]["bytes"] == (tmp_path / "data.csv").stat().st_size
    code, _, err = run_cli(["eval", run_dir, "--json"], tmp_path, timeout=LIMIT)
    assert code == 0 and err == ""
    with open(tmp_path / "data.csv", "a") as f:
        f.write("0.5,0.5,yes\n")
    code, out, err = run_cli(["eval", run_dir, "--json"], tmp_path, timeout=LIMIT)
    assert code == 0 and _strict_json(out)["test"]
    assert "data.csv changed since the run was trained" in one_line(err) and "warning:" in err


@pytest.mark.slow
def test_control_characters_from_data_files_are_escaped(tmp_path):
    evil = "\x1b]0;owned\x07\x1b[2J"
    run_dir = _csv_run(tmp_path, f"a{evil},b,y", (f"no{evil}", "yes\b\x7f"))
    (tmp_path / f"in{evil}.csv").write_text(f"a{evil},b\n0.1,0.2\n")
    shown = {}
    for args in (["eval", run_dir], ["predict", run_dir, f"in{evil}.csv", "--proba", "2"],
                 ["compare", run_dir, run_dir]):
        code, out, err = run_cli(args, tmp_path, timeout=LIMIT)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err, (args, out)
        shown[args[0]] = out
    assert "no\\x1b]0;owned\\x07\\x1b[2J" in shown["eval"]  # a class: a table cell
    assert "yes\\x08\\x7f" in shown["eval"]
    assert "in\\x1b]0;owned\\x07\\x1b[2J.csv:1" in shown["predict"]  # a file name
    # an error that quotes the header
    bad = write_config(tmp_path, "bad", data={"dataset": "csv", "path": "data.csv", "target": "z"})
    code, _, err = run_cli(["validate", bad], tmp_path, timeout=LIMIT)
    assert code == 2 and "\x1b" not in err and "a\\x1b]0;owned\\x07\\x1b[2J" in err


# -- what a pickled estimator keeps -----------------------------------------------------------
def test_a_pickled_estimator_keeps_parameters_and_settings_only():
    from scratchnet.sklearn import ScratchNetClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20))
    clf = ScratchNetClassifier(hidden_layer_sizes=(32,), epochs=2, random_state=0).fit(
        X, (X[:, 0] > 0).astype(int))
    before = len(pickle.dumps(clf))
    big = rng.normal(size=(100_000, 20))
    predicted = clf.predict(big)
    after = pickle.dumps(clf)
    assert len(after) <= before + 512  # not the last batch's inputs and activations
    clone = pickle.loads(after)
    ops = [op for layer in clone.network_.layers for op in layer.operations]
    assert all(op.input_ is None and op.output is None for op in ops)
    assert clone.network_.loss.prediction is None
    assert set(clone.network_.state_dict()) == {p.name for p in clone.network_.params()}
    np.testing.assert_array_equal(clone.predict(big), predicted)  # and it predicts the same
    np.testing.assert_array_equal(clone.predict_proba(big[:5]), clf.predict_proba(big[:5]))
