"""Nothing hangs, nothing explodes (issue 15), part 1: files that are not regular files,
inputs that cost far more than they look, damaged run folders. Full and read-only disks,
what reaches stdout and the terminal, and pickles are in test_hostile_output.py; dead
peers and stopped sweeps in test_hostile_peers.py.

Everything that could hang runs the real command line in a subprocess with a time limit
(``run_cli(..., timeout=...)``), so a regression fails instead of hanging the test run.
Long lists of cheap checks of messages run in-process (``main_here``)."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_config
from hostile_helpers import LIMIT, one_line
from scratchnet import files, runs
from scratchnet.config import load_config
from scratchnet.errors import DataError
from scratchnet.experiment import prepare_data
from scratchnet.predict import MAX_IMAGE_PIXELS, read_image
from scratchnet.sweep import SweepFolder

#: the fixtures ``trained`` (a finished run) and ``run`` (a copy to damage)
pytest_plugins = ["hostile_helpers"]


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
    assert (f"bomb.png: more than the {MAX_IMAGE_PIXELS:,} pixels scratchnet decodes"
            in one_line(err))
    with open(tmp_path / "rows.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (10**9, 64)})
        f.write(b"\0" * 64)
    code, _, err = run_cli(["predict", run, "rows.npy"], tmp_path, timeout=LIMIT)
    assert code == 1
    assert "rows.npy: 1,000,000,000 rows of 64 features, more than the" in one_line(err)


def test_an_npz_fifo_or_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.npz")
    cfg = write_config(tmp_path, "pipe", data={"dataset": "npz", "path": "pipe.npz"})
    code, _, err = run_cli(["validate", cfg], tmp_path, timeout=LIMIT)
    assert code == 2 and "data.path: got 'pipe.npz': is a named pipe (FIFO)" in one_line(err)
    zeros = np.zeros((2000, 100))  # 1.6 MB of float64 that compresses to a few KB
    np.savez_compressed(tmp_path / "bomb.npz", x_train=zeros, y_train=np.zeros(2000, int),
                        x_test=zeros, y_test=np.zeros(2000, int))
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    monkeypatch.setattr(files, "MAX_NPZ_UNPACKED_BYTES", files.MiB)  # the cap, scaled down
    with pytest.raises(DataError, match=r"bomb.npz: its arrays unpack to 3.1 MiB, more than "
                                        r"the 1 MiB that scratchnet reads"):
        prepare_data(load_config(write_config(tmp_path, "bomb", data={
            "dataset": "npz", "path": str(tmp_path / "bomb.npz")})))


@pytest.mark.slow
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
    (runs.DATA, lambda d: json.dumps({**d, "feature_range": {**d["feature_range"], "max": "x"}}),
     "feature_range.max: got 'x'"),
    (runs.DATA, lambda d: json.dumps({**d, "feature_range": {"min": [0.0], "max": []}}),
     "feature_range: 1 min values for 0 max values"),
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
    assert code == 1
    assert f"{run / runs.METRICS}: line 2 is not an evaluation record" in one_line(err)


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
