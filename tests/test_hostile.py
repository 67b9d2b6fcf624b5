"""Nothing hangs, nothing explodes (issue 15), part 1: files that are not regular files,
inputs that cost far more than they look, damaged run folders, full and read-only disks,
NaN in --json, a CSV changed since training, control characters from data files, and
what a pickled estimator keeps. The dead peers and stopped sweeps are in
test_hostile_peers.py.

Everything that could hang runs the real command line in a subprocess with a time limit
(``run_cli(..., timeout=...)``), so a regression fails instead of hanging the test run.
Long lists of cheap checks of messages run in-process (``main_here``)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_config
from scratchnet import files, runs
from scratchnet.config import load_config
from scratchnet.errors import DataError
from scratchnet.experiment import prepare_data, train_experiment
from scratchnet.predict import MAX_IMAGE_PIXELS, read_image
from scratchnet.sweep import SweepFolder

LIMIT = 60  # seconds any one command may take before the test fails instead of hanging


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished two-epoch digits run (trained in this process, in a second)."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(write_config(out, "tiny"))
    return train_experiment(cfg, out=out / "runs").run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of :func:`trained` that a test may damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


# -- files that are not regular files ----------------------------------------------------
def _unix_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def test_validate_refuses_a_fifo_devices_a_folder_and_a_socket_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "folder.yaml").mkdir()
    sock = _unix_socket(tmp_path / "sock.yaml")
    try:
        t0 = time.monotonic()
        code, out, err = run_cli(["validate", "fifo.yaml", "/dev/zero", "/dev/urandom",
                                  "folder.yaml", "sock.yaml"], tmp_path, timeout=LIMIT)
    finally:
        sock.close()
    assert time.monotonic() - t0 < 20
    assert code == 2 and out == "", err
    lines = err.splitlines()
    assert lines == [
        "invalid: fifo.yaml: is a named pipe (FIFO), not a regular file; expected a YAML "
        "experiment file",
        "invalid: /dev/zero: is a character device, not a regular file; expected a YAML "
        "experiment file",
        "invalid: /dev/urandom: is a character device, not a regular file; expected a YAML "
        "experiment file",
        "invalid: folder.yaml: is a folder, not a regular file; expected a YAML experiment file",
        "invalid: sock.yaml: is a socket, not a regular file; expected a YAML experiment file",
    ]


@pytest.mark.parametrize("name, command", [
    (runs.WEIGHTS, "eval"), (runs.DATA, "eval"), (runs.SUMMARY, "eval"), (runs.CONFIG, "eval"),
    (runs.METRICS, "compare"), (runs.CHECKPOINT, "resume"),
])
def test_a_fifo_in_a_run_folder_is_refused_naming_it(run, tmp_path, name, command):
    (run / name).unlink()
    os.mkfifo(run / name)
    args = ["train", "--resume", run] if command == "resume" else [command, run]
    code, out, err = run_cli(args, tmp_path, timeout=LIMIT)
    assert code == 1, err
    assert f"{run / name}: is a named pipe (FIFO), not a regular file" in one_line(err)


def test_weights_linked_to_dev_zero_are_refused(run, tmp_path):
    (run / runs.WEIGHTS).unlink()
    (run / runs.WEIGHTS).symlink_to("/dev/zero")  # checked after the link is followed
    code, _, err = run_cli(["eval", run], tmp_path, timeout=LIMIT)
    assert code == 1 and "is a character device, not a regular file" in one_line(err)


def test_fifos_as_data_and_as_inputs_to_predict(run, tmp_path):
    os.mkfifo(tmp_path / "data.csv")
    cfg = write_config(tmp_path, "csv", data={"dataset": "csv", "path": "data.csv", "target": "y"})
    code, _, err = run_cli(["validate", cfg], tmp_path, timeout=LIMIT)
    assert code == 2 and "is a named pipe (FIFO), not a regular file" in err
    for name in ("rows.csv", "rows.npy", "digit.png"):
        os.mkfifo(tmp_path / name)
    code, _, err = run_cli(["predict", run, "rows.csv"], tmp_path, timeout=LIMIT)
    assert code == 1 and "rows.csv: is a named pipe (FIFO)" in one_line(err)
    for name in ("rows.npy", "digit.png"):
        code, _, err = run_cli(["predict", run, name], tmp_path, timeout=LIMIT)
        assert code == 1 and f"{name}: is a named pipe (FIFO)" in one_line(err)


# -- inputs that cost far more than they look --------------------------------------------
def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no disk used: the size is what is refused
    return path


def test_files_over_their_cap_are_refused_before_reading(run, tmp_path):
    _sparse(tmp_path / "huge.yaml", 35 * files.MiB)
    t0 = time.monotonic()
    code, _, err = run_cli(["sweep", "huge.yaml"], tmp_path, timeout=LIMIT)
    assert time.monotonic() - t0 < 20
    assert code == 2
    assert "huge.yaml: holds 35 MiB, more than the 4 MiB that scratchnet reads for a YAML " \
           "experiment file" in one_line(err)
    _sparse(run / runs.WEIGHTS, 2 * files.GiB)
    code, _, err = run_cli(["eval", run], tmp_path, timeout=LIMIT)
    assert code == 1 and "holds 2 GiB, more than the 1 GiB" in one_line(err)


def _png(path: Path, width: int, height: int) -> Path:
    """An all-black 8-bit grey PNG, written row by row: a few hundred KB on disk however
    many pixels it says it has (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    packer, row = zlib.compressobj(9), b"\0" * (width + 1)  # filter byte, then the pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                         8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [6000, 12000, 20000])  # ours, then Pillow's warning, its error
def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, side):
    bomb = _png(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 1_000_000
    t0 = time.monotonic()
    with pytest.raises(DataError, match=f"more than the {MAX_IMAGE_PIXELS:,} pixels"):
        read_image(bomb, (8, 8))
    assert time.monotonic() - t0 < 1.0  # decoding 36 to 400 million pixels takes far longer


def test_predict_refuses_a_bomb_and_a_npy_header_of_a_billion_rows(run, tmp_path):
    _png(tmp_path / "bomb.png", 12000, 12000)
    code, out, err = run_cli(["predict", run, "bomb.png"], tmp_path, timeout=LIMIT)
    assert code == 1 and out == ""
    assert f"bomb.png: more than the {MAX_IMAGE_PIXELS:,} pixels scratchnet decodes" in one_line(err)
    with open(tmp_path / "rows.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (10**9, 64)})
        f.write(b"\0" * 64)
    code, _, err = run_cli(["predict", run, "rows.npy"], tmp_path, timeout=LIMIT)
    assert code == 1 and "rows.npy: 1,000,000,000 rows of 64 features, more than the" in one_line(err)


def test_sweep_plans_are_counted_before_they_are_expanded(tmp_path):
    cfg = write_config(tmp_path, "tiny")
    t0 = time.monotonic()
    code, _, err = run_cli(["sweep", cfg, "--seeds", "1000000000"], tmp_path, timeout=LIMIT)
    assert code == 2 and "1 grid point x 1,000,000,000 seeds = 1,000,000,000 runs, more than " \
                         "the 1,000 allowed; pass --max-runs 1000000000" in one_line(err)
    grid = ",".join(str(i) for i in range(1, 1001))
    code, _, err = run_cli(["sweep", cfg, "--grid", f"train.epochs={grid}", "--grid",
                            f"model.layers.0.neurons={grid}"], tmp_path, timeout=LIMIT)
    assert code == 2 and "1,000,000 grid points x 1 seed = 1,000,000 runs" in one_line(err)
    code, _, err = run_cli(["sweep", cfg, "--grid", "optimizer.lr=0.1,0.2,0.3", "--seeds", "2",
                            "--max-runs", "5"], tmp_path, timeout=LIMIT)
    assert code == 2 and "= 6 runs, more than the 5 allowed" in one_line(err)
    code, _, err = run_cli(["tune", cfg, "--space", "optimizer.lr=loguniform:0.01:1",
                            "--trials", "5000"], tmp_path, timeout=LIMIT)
    assert code == 2 and "the study has 5,000 trials, more than the 1,000 allowed" in one_line(err)
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "tunes").exists()
    # --max-runs is the override: the same plan is accepted with it
    folder = SweepFolder.create(tmp_path / "s", load_config(cfg), {"optimizer.lr": [0.1, 0.2, 0.3]},
                                2, max_runs=6)
    assert len(folder.tasks) == 6


# -- damaged run folders ------------------------------------------------------------------
def _edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    path.write_text(change(obj) if callable(change) else change)


@pytest.mark.parametrize("name, content, expected", [
    (runs.DATA, lambda d: json.dumps({k: v for k, v in d.items() if k != "n_features"}),
     "n_features: required key is missing"),
    (runs.DATA, lambda d: json.dumps({**d, "n_features": -3}), "n_features: got -3"),
    (runs.DATA, lambda d: json.dumps({**d, "classes": "abc"}), "classes: got 'abc'"),
    (runs.DATA, lambda d: json.dumps({**d, "feature_names": ["x"]}),
     "1 feature_names for n_features 64"),
    (runs.DATA, lambda d: json.dumps({**d, "scaler": {"kind": "bogus"}}), "scaler:"),
    (runs.DATA, "[1, 2]", "expected a JSON object (a mapping of keys), got list"),
    (runs.DATA, "{not json", "not valid JSON"),
    (runs.DATA, "[" * 100_000, "nested too deeply"),
    (runs.SUMMARY, "[]", "expected a JSON object"),
    (runs.SUMMARY, lambda s: json.dumps({**s, "status": 5}), "status is 5; expected a string"),
    (runs.SUMMARY, lambda s: json.dumps({**s, "test": "x"}), "test is 'x'; expected a mapping"),
])
def test_damaged_data_and_summary_name_the_file_and_the_key(run, main_here, name, content,
                                                            expected):
    _edit_json(run / name, content)
    code, out, err = main_here("eval", run)
    assert code == 1 and out == "", err
    line = one_line(err)
    assert f"{run / name}:" in line and expected in line


def test_a_damaged_metrics_file_names_its_line(run, main_here):
    (run / runs.METRICS).write_text('{"epoch": 1}\n[1, 2]\n')
    code, _, err = main_here("compare", run)
    assert code == 1 and f"{run / runs.METRICS}: line 2 is not an evaluation record" in one_line(err)


@pytest.fixture(scope="module")
def n_train(trained) -> int:
    return len(prepare_data(load_config(trained / runs.CONFIG)).X_train)


MISSING = object()


def _checkpoint(run: Path, **changes) -> None:
    """Rewrite ``run``'s (valid safetensors) checkpoint as one stopped at epoch 1, with
    ``changes`` to its metadata (``perm=`` and ``net_W=`` replace arrays)."""
    arrays, meta = runs.load_arrays(run / runs.CHECKPOINT, files.MAX_CHECKPOINT_BYTES)
    meta.update(epoch=1, batch=0)
    for key, value in changes.items():
        if key == "perm":
            arrays["perm"] = value
        elif key == "net_W":
            arrays["net.layers.0.W"] = value
        elif value is MISSING:
            meta.pop(key)
        else:
            meta[key] = value
    runs.save_arrays(run / runs.CHECKPOINT, arrays, meta)
    (run / runs.SUMMARY).unlink(missing_ok=True)


@pytest.mark.parametrize("changes, expected", [
    ({"epoch": -1}, "epoch is -1; expected a whole number >= 0"),
    ({"epoch": "1"}, "epoch is '1'; expected a whole number"),
    ({"epoch": 10**9}, "epoch 1000000000 is beyond the run's 2 epochs"),
    ({"batch": 10**6}, "batch 1000000 is beyond the"),
    ({"batch": 1}, "holds no permutation of the rows"),
    ({"shuffle_rng": MISSING}, "the metadata has no 'shuffle_rng'"),
    ({"shuffle_rng": [1, 2]}, "shuffle_rng is [1, 2]; expected a mapping"),
    ({"dropout_rng": {"bit_generator": "PCG64", "state": {"state": 2**200, "inc": 1},
                      "has_uint32": 0, "uinteger": 0}}, "dropout_rng.state.state is"),
    ({"loss_sum": float("nan")}, "loss_sum is nan; expected a finite number"),
    ({"history": {"records": 5}}, "history.records is not a list"),
    ({"early_stopping": {"wait": -2}}, "early_stopping.wait is -2"),
    ({"net_W": np.zeros((3, 3), np.float32)}, "it does not fit this run"),
])
def test_a_damaged_checkpoint_is_refused_naming_what_is_wrong(run, main_here, changes, expected):
    _checkpoint(run, **changes)
    code, _, err = main_here("train", "--resume", run)
    assert code == 1, err
    line = one_line(err)
    assert f"{run / runs.CHECKPOINT}: not a usable checkpoint: " in line and expected in line


def test_a_permutation_that_is_not_one_is_refused_not_clipped(run, main_here, n_train):
    for perm in (np.arange(5), np.zeros(n_train, np.int64), np.arange(n_train) + 10**6,
                 np.arange(n_train, dtype=np.float32)):
        _checkpoint(run, batch=1, perm=perm)
        code, _, err = main_here("train", "--resume", run)
        assert code == 1 and f"perm ({perm.dtype}, shape {perm.shape}) is not a permutation " \
                             f"of the {n_train} training rows" in one_line(err)
    _checkpoint(run, batch=1, perm=np.random.default_rng(0).permutation(n_train))
    code, _, err = main_here("train", "--resume", run, "--quiet")  # the undamaged one resumes
    assert code == 0, err


def test_a_damaged_sweep_or_tune_state_names_its_file(tmp_path, main_here):
    cfg = load_config(write_config(tmp_path, "tiny"))
    folder = SweepFolder.create(tmp_path / "sweeps", cfg, {"optimizer.lr": [0.1]}, 1)
    state = json.loads((folder.path / "sweep.json").read_text())
    for change, expected in (({"runs": []}, "runs: got []"), ({"seeds": "2"}, "seeds: got '2'"),
                             ({"grid": ["x"]}, "grid: got ['x']"),
                             ({"runs": {"k": {"status": 3}}}, "runs.k.status: got 3")):
        (folder.path / "sweep.json").write_text(json.dumps({**state, **change}))
        code, _, err = main_here("sweep", "--resume", folder.path)
        assert code == 1 and f"{folder.path / 'sweep.json'}: " in one_line(err) and expected in err
    from scratchnet.tune import TuneFolder

    tune = TuneFolder.create(tmp_path / "tunes", cfg, {"optimizer.lr": "loguniform:0.01:1"})
    state = json.loads((tune.path / "tune.json").read_text())
    (tune.path / "tune.json").write_text(json.dumps({**state, "direction": "sideways"}))
    code, _, err = main_here("tune", "--resume", tune.path)
    assert code == 1 and f"{tune.path / 'tune.json'}: direction: got 'sideways'" in one_line(err)


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
    rng = np.random.default_rng(3)
    rows = [f"{a:.3f},{b:.3f},{labels[int(a + b > 0)]}" for a, b in rng.normal(size=(60, 2))]
    (tmp_path / "data.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return write_config(tmp_path, "csv", data={"dataset": "csv", "path": "data.csv", "target": "y"},
                        model={"layers": [{"neurons": 8, "activation": "tanh"},
                                          {"neurons": 2, "activation": "linear"}]},
                        train={"epochs": 1, "batch_size": 16})


def test_eval_warns_when_the_csv_changed_since_training(tmp_path):
    cfg = _csv_run(tmp_path, "a,b,y", ("no", "yes"))
    code, out, err = run_cli(["train", cfg, "--json", "--quiet"], tmp_path, timeout=LIMIT)
    assert code == 0, err
    run_dir = tmp_path / json.loads(out)["run_dir"]
    info = json.loads((run_dir / runs.DATA).read_text())
    assert info["source_file"]["bytes"] == (tmp_path / "data.csv").stat().st_size
    code, _, err = run_cli(["eval", run_dir, "--json"], tmp_path, timeout=LIMIT)
    assert code == 0 and err == ""
    with open(tmp_path / "data.csv", "a") as f:
        f.write("0.5,0.5,yes\n")
    code, out, err = run_cli(["eval", run_dir, "--json"], tmp_path, timeout=LIMIT)
    assert code == 0 and _strict_json(out)["test"]
    assert "data.csv changed since the run was trained" in one_line(err) and "warning:" in err


def test_control_characters_from_data_files_are_escaped(tmp_path):
    evil = "\x1b]0;owned\x07\x1b[2J"
    cfg = _csv_run(tmp_path, f"a{evil},b,y", (f"no{evil}", "yes\b\x7f"))
    code, out, err = run_cli(["train", cfg, "--json", "--quiet"], tmp_path, timeout=LIMIT)
    assert code == 0, err
    run_dir = json.loads(out)["run_dir"]
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
