"""Nothing lost (issue 7), through the real command line: Ctrl-C and SIGTERM in the middle
of an epoch, a second Ctrl-C, resuming bit for bit, SIGKILL at random moments, divergence,
hostile weight and YAML files, edited run folders, and run folders never clobbered.

Signals go to ``python -m scratchnet train`` in a subprocess. A test never relies on a
fixed sleep: it waits (with a generous timeout) until the run folder shows that training
has really started, then signals. The long runs train on scikit-learn's bundled digits
with ``batch_size: 1`` (about 1300 batches an epoch), so a signal lands inside an epoch.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_cli, write_config
from test_trainer import best_by_the_rule
from scratchnet import runs
from scratchnet.config import validate
from scratchnet.errors import DataError

#: long enough to interrupt (about 0.1 s an epoch), short enough to run whole: dropout
#: (a random stream), momentum (optimizer state), a decaying learning rate (schedule
#: position) and early stopping with patience all have state that a resumed run must get
#: back exactly. The stop is built in, not found by the trajectory: a cross-entropy is
#: never below 0, so once ``min_delta`` exceeds the first validation loss no later
#: evaluation can beat it by ``min_delta``; the first evaluation stays the best and the run
#: stops after ``patience`` more, at epoch 1 + patience = 5 of 12, on every CPU and BLAS
#: kernel (:func:`stopping_epoch`).
LONG = {
    "seed": 11,
    "data": {"dataset": "digits", "scale": "standard", "validation": 0.1},
    "model": {"layers": [{"neurons": 24, "activation": "tanh", "dropout": 0.1},
                         {"neurons": 10, "activation": "linear"}],
              "loss": "softmax_cross_entropy"},
    "optimizer": {"name": "sgd_momentum", "lr": 0.02, "momentum": 0.9,
                  "decay": {"type": "linear", "final_lr": 0.002}},
    "train": {"epochs": 12, "batch_size": 1, "eval_every": 1,
              "early_stopping": {"patience": 4, "min_delta": 10.0, "restore_best": True}},
}
#: the same with Adam (two moments and a step count per parameter), batch normalisation
#: (running statistics), and a reduce-on-plateau schedule, whose best loss and wait must
#: travel in the checkpoint
LONG_ADAM = {
    "seed": 5,
    "data": {"dataset": "digits", "scale": "standard", "validation": 0.1},
    "model": {"layers": [{"neurons": 24, "activation": "relu", "dropout": 0.1, "batch_norm": True},
                         {"neurons": 10, "activation": "linear"}],
              "loss": "softmax_cross_entropy"},
    "optimizer": {"name": "adam", "lr": 0.01,
                  "decay": {"type": "plateau", "factor": 0.5, "patience": 1}},
    "train": {"epochs": 16, "batch_size": 3, "eval_every": 2, "checkpoint_every": 4},
}
#: a character model whose LSTM carries its state from batch to batch along 2 streams of a
#: text (about 2,400 batches an epoch), with dropout and Adam: the carried state must come
#: back from the checkpoint exactly too
TEXT_STATEFUL = {
    "seed": 3,
    "data": {"dataset": "text", "path": "text.txt", "seq_len": 4, "streams": 2,
             "validation": 0.1, "test_fraction": 0.1},
    "model": {"layers": [{"type": "embedding", "dim": 4},
                         {"type": "lstm", "hidden_size": 8, "stateful": True, "dropout": 0.1},
                         {"neurons": "auto"}],
              "loss": "softmax_cross_entropy"},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 2, "eval_every": 1},
}
#: the text it reads: 800 numbered lines, 24,000 characters
TEXT = "".join(f"{i * 7919 % 1000:03d} the cat sat on the mat.\n" for i in range(800))
#: early stopping that monitors the accuracy (mode max) and a plateau schedule that
#: follows it: the stopper's best accuracy and the schedule's must travel in the
#: checkpoint. It stops where LONG does: an accuracy is at most 1, so nothing beats the
#: first evaluation's by more than min_delta 1.0
LONG_ACCURACY = {
    **LONG,
    "optimizer": {"name": "sgd_momentum", "lr": 0.02, "momentum": 0.9,
                  "decay": {"type": "plateau", "factor": 0.5, "patience": 0}},
    "train": {**LONG["train"], "early_stopping": {"monitor": "accuracy", "patience": 4,
                                                  "min_delta": 1.0}},
}
TIMEOUT = 120  # seconds for anything to happen on a busy machine


def _env() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("SCRATCHNET_DEBUG", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}


class Run:
    """``python -m scratchnet ARGS`` in the background; stdout and stderr are read by
    threads as they come, so the test can wait for a line and pipes never fill."""

    def __init__(self, args, cwd):
        self.proc = subprocess.Popen([sys.executable, "-m", "scratchnet", *map(str, args)],
                                     cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._out, self._err = [], []
        self._threads = [threading.Thread(target=self._pump, args=(s, buf), daemon=True)
                         for s, buf in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf):
        for line in stream:
            buf.append(line)

    @property
    def err(self) -> str:
        return "".join(self._err)

    @property
    def out(self) -> str:
        return "".join(self._out)

    def wait_until(self, condition, what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                self.finish()
                pytest.fail(f"the run ended (exit {self.proc.returncode}) before {what}:\n{self.err}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"timed out waiting for {what}:\n{self.err}")
            time.sleep(0.005)

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for t in self._threads:
            t.join(10)
        return rc


def run_dir_in(out: Path) -> Path | None:
    """The one run folder under ``out`` (None until it exists)."""
    dirs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
    assert len(dirs) <= 1, dirs
    return dirs[0] if dirs else None


def has(out: Path, name: str):
    """A condition: the run folder under ``out`` holds ``name``."""
    def check():
        d = run_dir_in(out)
        return d is not None and (d / name).exists()
    return check


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err


def strip_seconds(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def assert_same_arrays(a: Path, b: Path) -> None:
    """Bit for bit: the same names, dtypes, shapes and every value."""
    xa, _ = runs.load_arrays(a)
    xb, _ = runs.load_arrays(b)
    assert sorted(xa) == sorted(xb)
    for name in xa:
        assert xa[name].dtype == xb[name].dtype and xa[name].shape == xb[name].shape, name
        assert np.array_equal(xa[name], xb[name]), f"{name} differs"


def assert_finite_arrays(path: Path) -> dict:
    arrays, meta = runs.load_arrays(path)
    assert arrays
    for name, a in arrays.items():
        assert np.isfinite(a).all(), f"{path.name}: {name} is not finite"
    return meta


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """``trained_once("long")`` -> (config path, run A): the experiment trained in one go,
    once per module."""
    cache = {}

    def get(stem: str) -> tuple[Path, Path]:
        if stem not in cache:
            config = write_config(tmp_path_factory.mktemp(stem), stem, raw=VARIANTS[stem])
            (config.parent / "text.txt").write_text(TEXT, encoding="utf-8")
            rc, out, err = run_cli(["train", config.name, "-q", "--out", "A"], config.parent)
            assert rc == 0, err
            cache[stem] = config, run_dir_in(config.parent / "A")
        return cache[stem]
    return get


VARIANTS = {"long": LONG, "long_adam": LONG_ADAM, "long_accuracy": LONG_ACCURACY,
            "text_stateful": TEXT_STATEFUL}


@pytest.fixture(scope="module")
def long_config(trained_once) -> Path:
    return trained_once("long")[0]


def stopping_epoch(records: list[dict], stopping: dict) -> int:
    """Where ``stopping`` (patience, min_delta) must stop a run that evaluates every epoch:
    1 + patience, once the first validation loss is below ``min_delta`` (the loss cannot go
    below 0, so nothing can improve on it by more than that)."""
    first = records[0]["val_loss"]
    assert 0 <= first < stopping["min_delta"], f"the first validation loss is {first}"
    return 1 + stopping["patience"]


@pytest.fixture(scope="module")
def uninterrupted(trained_once) -> Path:
    """Run A: the long experiment trained in one go; it stops early where its rule must."""
    run = trained_once("long")[1]
    summary = runs.read_json(run / runs.SUMMARY)
    stopping = LONG["train"]["early_stopping"]
    expected = stopping_epoch(runs.read_metrics(run), stopping)
    assert summary["status"] == "completed" and summary["stopped_early"]
    assert summary["epochs_run"] == expected < LONG["train"]["epochs"]
    assert summary["best_epoch"] == 1
    return run


def interrupt(config: Path, out: str, sig=signal.SIGINT) -> tuple[int, str, Path]:
    """Train ``config`` into ``out``, send ``sig`` once the first checkpoint is written
    (training is then in the epoch after it), and wait for the exit."""
    run = Run(["train", config.name, "-q", "--out", out], config.parent)
    run.wait_until(has(config.parent / out, runs.CHECKPOINT), "the first checkpoint")
    run.signal(sig)
    rc = run.finish()
    return rc, run.err, run_dir_in(config.parent / out)


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_at_the_end_of_the_batch_and_saves_everything(long_config, sig, code):
    rc, err, run_dir = interrupt(long_config, f"out-{sig.name}", sig)
    assert rc == code, err
    no_traceback(err)
    assert "stopping at the end of this batch" in err
    shown = run_dir.relative_to(long_config.parent)  # as given: --out is relative
    assert f"saved in {shown}" in err
    # the hint is a command that resumes this run (tested to work below)
    assert f"resume with: scratchnet train --resume {shown}" in err  # no config needed

    names = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    assert {runs.CONFIG, runs.DATA, runs.METRICS, runs.WEIGHTS, runs.CHECKPOINT,
            runs.SUMMARY} <= names
    summary = runs.read_json(run_dir / runs.SUMMARY)
    assert summary["status"] == "interrupted"
    assert 1 <= summary["epochs_run"] < LONG["train"]["epochs"]

    ckpt, meta = runs.load_arrays(run_dir / runs.CHECKPOINT)
    assert meta["epoch"] == summary["epochs_run"]
    assert {"net.layers.0.W", "opt.layers.0.W.velocity", "best.layers.0.W"} <= set(ckpt)
    if meta["batch"]:  # stopped inside an epoch: where it was in that epoch's order
        assert sorted(ckpt["perm"].tolist()) == list(range(len(ckpt["perm"])))
    # the metrics up to that point, the same the checkpoint carries
    metrics = runs.read_metrics(run_dir)
    assert len(metrics) == meta["epoch"]
    assert metrics == meta["history"]["records"]
    # the best weights so far are the best evaluation's, by the run's own rule
    weights_meta = assert_finite_arrays(run_dir / runs.WEIGHTS)
    val = {r["epoch"]: r["val_loss"] for r in metrics}
    best = best_by_the_rule(val, LONG["train"]["early_stopping"]["min_delta"])
    assert weights_meta["epoch"] == best == summary["best_epoch"]


@pytest.mark.slow
@pytest.mark.parametrize("stem", list(VARIANTS))
def test_interrupt_then_resume_equals_uninterrupted_bit_for_bit(trained_once, stem):
    long_config, uninterrupted = trained_once(stem)
    # Run B: interrupted inside an epoch (retried in the rare case the signal lands on an
    # epoch boundary), then resumed with the command the CLI printed.
    for attempt in range(5):
        rc, err, run_b = interrupt(long_config, f"B{attempt}")
        assert rc == 130, err
        _, meta = runs.load_arrays(run_b / runs.CHECKPOINT)
        if meta["batch"] > 0:
            break
    assert meta["batch"] > 0, "every interrupt landed on an epoch boundary"
    interrupted_at = (meta["epoch"], meta["batch"])
    if stem == "text_stateful":  # stopped inside an epoch: the state it carries is kept
        arrays, _ = runs.load_arrays(run_b / runs.CHECKPOINT)
        assert {"carry.layers.1.h", "carry.layers.1.c"} <= set(arrays)
        assert arrays["carry.layers.1.h"].shape == (2, 8) and arrays["carry.layers.1.h"].any()
        assert np.array_equal(arrays["perm"], np.arange(len(arrays["perm"])))  # in order

    hint = re.search(r"resume with: scratchnet (.+)", err).group(1)
    rc, out, err = run_cli(shlex.split(hint) + ["-q"], long_config.parent)
    assert rc == 0, err
    no_traceback(err)

    a, b = uninterrupted, run_b
    assert_same_arrays(a / runs.WEIGHTS, b / runs.WEIGHTS)
    assert_same_arrays(a / runs.CHECKPOINT, b / runs.CHECKPOINT)
    assert strip_seconds(runs.read_metrics(a)) == strip_seconds(runs.read_metrics(b))
    sa, sb = runs.read_json(a / runs.SUMMARY), runs.read_json(b / runs.SUMMARY)
    for key in ("status", "epochs_run", "best_epoch", "stopped_early", "best_val_loss", "test",
                "config_hash", "best_metric", "best_value"):
        assert sa[key] == sb[key], key
    stopping = VARIANTS[stem]["train"].get("early_stopping", {})
    if stopping.get("monitor", "val_loss") != "val_loss":  # stopped by its rule, built in
        assert sa["best_metric"] == stopping["monitor"] and sa["stopped_early"]
        assert sa["epochs_run"] == 1 + stopping["patience"] and sa["best_epoch"] == 1
    # the resumed run's checkpoint holds the same random-stream states and stopper state
    _, ma = runs.load_arrays(a / runs.CHECKPOINT)
    _, mb = runs.load_arrays(b / runs.CHECKPOINT)
    for key in ("epoch", "batch", "shuffle_rng", "dropout_rng", "early_stopping", "schedule"):
        assert ma.get(key) == mb.get(key), key
    assert strip_seconds(ma["history"]["records"]) == strip_seconds(mb["history"]["records"])
    assert interrupted_at[0] < sa["epochs_run"]


def test_resuming_a_finished_run_says_there_is_nothing_to_do(long_config, uninterrupted):
    rc, out, err = run_cli(["train", long_config.name, "--resume", uninterrupted],
                           long_config.parent)
    assert rc == 2, err
    no_traceback(err)
    assert "nothing to resume" in err and str(uninterrupted) in err


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    """The first Ctrl-C asks for a stop at the end of the batch; the second exits before
    that batch ends or anything is saved. One batch of this wide network takes a while."""
    config = write_config(tmp_path, "wide", raw={
        "seed": 1, "data": {"dataset": "digits"},
        "model": {"layers": [{"neurons": 2500, "activation": "relu"},
                             {"neurons": 2500, "activation": "relu"},
                             {"neurons": 10}]},
        "train": {"epochs": 3, "batch_size": 2048, "eval_every": 1}})
    run = Run(["train", config.name, "-q", "--out", "out"], tmp_path)
    run.wait_until(has(tmp_path / "out", runs.DATA), "the run folder")
    run.signal(signal.SIGINT)
    run.wait_until(lambda: "stopping at the end of this batch" in run.err, "the first Ctrl-C")
    run.signal(signal.SIGINT)
    assert run.finish() == 130, run.err
    assert "stopping now" in run.err
    no_traceback(run.err)
    assert not (run_dir_in(tmp_path / "out") / runs.SUMMARY).exists()


def test_a_signal_before_training_starts_is_not_lost(tmp_path):
    """Ctrl-C while the data loads (before Trainer.fit, which clears ``stop_requested``)
    still stops the run after its first batch. In-process with the CLI's handler and a
    real signal: the window is too short to hit from outside."""
    from scratchnet.cli.signals import GracefulStop
    from scratchnet.experiment import build_network, build_optimizer, prepare_data
    from scratchnet.nn.trainer import Trainer

    cfg = validate(LONG)
    data = prepare_data(cfg)
    trainer = Trainer(build_network(cfg, data.n_features), build_optimizer(cfg))
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + TIMEOUT
        while stop.signum is None and time.monotonic() < deadline:
            time.sleep(0.001)  # the handler runs between bytecodes of this thread
        assert stop.signum == signal.SIGTERM
        stop.attach(trainer, tmp_path)
        history = trainer.fit(data.X_train, data.Y_train, data.X_val, data.Y_val, epochs=3,
                              batch_size=1, seed=cfg.seed)
    assert history.interrupted and history.epochs_run == 0
    meta, _ = trainer.checkpoint()
    assert (meta["epoch"], meta["batch"]) == (0, 1)


# -- SIGKILL ------------------------------------------------------------------------------
WRITER = """
import sys
from pathlib import Path
import numpy as np
from scratchnet import runs

folder, version = Path(sys.argv[1]), int(sys.argv[2])
shapes = {"net.layers.0.W": (784, 256), "net.layers.1.W": (256, 10),
          "opt.layers.0.W.velocity": (784, 256), "best.layers.0.W": (784, 256)}
while True:
    arrays = {k: np.full(s, version, dtype=np.float32) for k, s in shapes.items()}
    arrays["perm"] = np.arange(60000, dtype=np.int64) + version
    runs.save_arrays(folder / "checkpoint.safetensors", arrays, {"version": version})
    runs.write_json(folder / "summary.json", {"version": version})
    runs.write_metrics(folder, [{"epoch": i, "version": version} for i in range(version % 7)])
    runs.write_config(folder, {"version": version, "text": "x" * 10000})
    print(version, flush=True)
    version += 1
"""


@pytest.mark.slow
def test_sigkill_during_writes_leaves_the_previous_files_readable(tmp_path):
    """A process writes a checkpoint-sized file, a summary, metrics and a config in a loop
    and is killed with SIGKILL at random moments, 20 times: every file still loads, holds
    one whole version (never a mix), and no version goes backwards."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    folder = tmp_path / "run"
    folder.mkdir()
    rng = random.Random(7)
    last = 0
    for kill in range(20):
        proc = subprocess.Popen([sys.executable, str(script), str(folder), str(last + 1)],
                                stdout=subprocess.PIPE, text=True, env=_env())
        first = proc.stdout.readline()  # one full round written
        assert first.strip().isdigit(), f"the writer failed: {first!r}"
        time.sleep(rng.uniform(0, 0.06))  # then somewhere inside a later round
        proc.kill()
        proc.wait(TIMEOUT)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL

        arrays, meta = runs.load_arrays(folder / "checkpoint.safetensors")
        v = meta["version"]
        assert v > last
        for name, a in arrays.items():
            expected = np.arange(60000) + v if name == "perm" else v
            assert np.array_equal(a, np.broadcast_to(expected, a.shape)), name
        s = runs.read_json(folder / "summary.json")["version"]
        metrics = runs.read_metrics(folder)
        config = runs.read_run_config(folder)
        assert s in (v, v - 1) and config["version"] in (s, s - 1)
        assert all(r["version"] == metrics[0]["version"] for r in metrics)
        assert config["text"] == "x" * 10000
        last = v
        # leftovers of an interrupted write are hidden temporary files, never the real name
        for p in folder.iterdir():
            assert p.name in {"checkpoint.safetensors", "summary.json", "metrics.jsonl",
                              "config.yaml"} or re.fullmatch(r"\.[a-z.]+\.\w+\.tmp", p.name), p.name


@pytest.mark.slow
def test_sigkill_during_training_then_resume_equals_uninterrupted(long_config, uninterrupted):
    """Killed with SIGKILL (nothing saved on the way out): the last checkpoint resumes, and
    the run still ends with the same weights as the one never interrupted."""
    out = long_config.parent / "K"
    run = Run(["train", long_config.name, "-q", "--out", "K"], long_config.parent)

    def two_evaluations():
        d = run_dir_in(out)
        return d is not None and (d / runs.METRICS).exists() and \
            len(runs.read_metrics(d)) >= 2
    run.wait_until(two_evaluations, "two evaluations")
    time.sleep(random.uniform(0, 0.05))
    run.proc.kill()
    assert run.finish() == -signal.SIGKILL
    run_dir = run_dir_in(out)
    assert not (run_dir / runs.SUMMARY).exists()
    validate(runs.read_run_config(run_dir))
    assert len(runs.read_metrics(run_dir)) >= 2
    assert_finite_arrays(run_dir / runs.WEIGHTS)
    runs.load_arrays(run_dir / runs.CHECKPOINT)

    rc, _, err = run_cli(["train", long_config.name, "-q", "--resume", run_dir], long_config.parent)
    assert rc == 0, err
    assert_same_arrays(uninterrupted / runs.WEIGHTS, run_dir / runs.WEIGHTS)
    assert strip_seconds(runs.read_metrics(uninterrupted)) == strip_seconds(runs.read_metrics(run_dir))


# -- divergence ---------------------------------------------------------------------------
DIVERGED = re.compile(r"training diverged: (validation )?loss is (nan|inf|-inf) (at|after) "
                      r"epoch (\d+)(, batch (\d+))? \(learning rate \S+ too high\?\)")
#: a loss that exploded while staying finite (the trainer's rule: 1000 times its start)
EXPLODED = re.compile(r"training diverged: the training loss of epoch (\d+) is \S+, more than "
                      r"1000 times its starting value \S+ \(learning rate \S+ too high\?\)")


def test_divergence_before_any_evaluation(tmp_path):
    config = write_config(tmp_path, "huge_lr", model={"layers": [
        {"neurons": 16, "activation": "relu"}, {"neurons": 10}]}, optimizer={"lr": 1e6})
    rc, out, err = run_cli(["train", config.name, "-q", "--out", "out"], tmp_path)
    assert rc == 1, err
    no_traceback(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # no NumPy overflow warnings on the way
    m = DIVERGED.search(lines[0])
    assert m and m.group(4) == "1" and m.group(6), lines[0]
    assert "1e+06" in lines[0] and "no weights were saved" in lines[0]
    run_dir = run_dir_in(tmp_path / "out")
    assert str(run_dir.relative_to(tmp_path)) in lines[0]
    summary = runs.read_json(run_dir / runs.SUMMARY)
    assert summary["status"] == "diverged" and summary["has_weights"] is False
    assert not (run_dir / runs.WEIGHTS).exists()


def test_divergence_keeps_the_best_weights_so_far(tmp_path):
    """Too high a learning rate for ReLU, reached by a warm-up: the first evaluations are
    finite, then the loss explodes. The best weights written before that stay, finite,
    and evaluate."""
    config = write_config(tmp_path, "high_lr", model={"layers": [
        {"neurons": 16, "activation": "relu"}, {"neurons": 10}]},
        optimizer={"lr": 0.3, "decay": {"warmup_epochs": 4}},
        train={"epochs": 10, "batch_size": 8})
    rc, out, err = run_cli(["train", config.name, "-q", "--out", "out"], tmp_path)
    assert rc == 1, err
    no_traceback(err)
    assert len(err.strip().splitlines()) == 1, err
    m = EXPLODED.search(err)
    assert m, err
    diverged_epoch = int(m.group(1))
    run_dir = run_dir_in(tmp_path / "out")
    assert "the best weights so far (epoch " in err
    assert f"kept in {run_dir.relative_to(tmp_path)}" in err

    summary = runs.read_json(run_dir / runs.SUMMARY)
    assert summary["status"] == "diverged" and summary["has_weights"] is True
    metrics = runs.read_metrics(run_dir)
    assert metrics and all(np.isfinite(r["val_loss"]) and np.isfinite(r["train_loss"])
                           for r in metrics)
    weights_meta = assert_finite_arrays(run_dir / runs.WEIGHTS)
    best = min(metrics, key=lambda r: r["val_loss"])
    assert weights_meta["epoch"] == best["epoch"] == summary["best_epoch"] < diverged_epoch + 1
    assert_finite_arrays(run_dir / runs.CHECKPOINT)
    rc, out, err = run_cli(["eval", run_dir, "--json"], tmp_path)
    assert rc == 0, err
    assert np.isfinite(json.loads(out)["test"]["loss"])


# -- hostile files --------------------------------------------------------------------------
class _Marker:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _npz(marker) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{"layers.0.W": np.zeros((64, 16), np.float32),
                     "evil": np.array([_Marker(marker)], dtype=object)})  # pickled inside
    return buf.getvalue()


def _npy_with_objects(marker) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_Marker(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


HOSTILE_WEIGHTS = {
    "pickle": lambda marker, good: pickle.dumps(_Marker(marker)),
    "npy-with-pickled-objects": lambda marker, good: _npy_with_objects(marker),
    "npz": lambda marker, good: _npz(marker),
    "random-bytes": lambda marker, good: random.Random(3).randbytes(5000),
    "truncated": lambda marker, good: good[: len(good) // 2],
    "empty": lambda marker, good: b"",
    "lying-header-length": lambda marker, good: (2 ** 40).to_bytes(8, "little") + b"{}",
    "json": lambda marker, good: b'{"layers.0.W": [[1, 2]]}',
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A small finished run to copy and damage."""
    work = tmp_path_factory.mktemp("finished")
    config = write_config(work, "small")
    rc, out, err = run_cli(["train", config.name, "-q", "--out", "runs"], work)
    assert rc == 0, err
    return run_dir_in(work / "runs")


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


@pytest.mark.parametrize("kind", ["pickle", "npy-with-pickled-objects", "npz", "truncated"])
def test_eval_refuses_weights_that_are_not_safetensors(finished, tmp_path, kind):
    run = _copy(finished, tmp_path)
    marker = tmp_path / "code-ran"
    good = (run / runs.WEIGHTS).read_bytes()
    (run / runs.WEIGHTS).write_bytes(HOSTILE_WEIGHTS[kind](marker, good))
    rc, out, err = run_cli(["eval", run], tmp_path)
    assert rc == 1, err
    assert out == ""
    no_traceback(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(run / runs.WEIGHTS) in lines[0] and "refusing to load it" in lines[0]
    assert not marker.exists()


def test_library_refuses_the_same_files(finished, tmp_path):
    """``runs.load_arrays`` is what every command uses (eval, predict, --resume): it never
    unpickles. Every kind of bad file here; the CLI's handling of a few above."""
    marker = tmp_path / "code-ran"
    good = (finished / runs.WEIGHTS).read_bytes()
    for kind, make in HOSTILE_WEIGHTS.items():
        path = tmp_path / f"{kind}.safetensors"
        path.write_bytes(make(marker, good))
        with pytest.raises(DataError, match="refusing to load it"):
            runs.load_arrays(path)
    assert not marker.exists()


def test_resume_refuses_a_pickled_checkpoint(finished, tmp_path):
    run = _copy(finished, tmp_path)
    marker = tmp_path / "code-ran"
    (run / runs.CHECKPOINT).write_bytes(pickle.dumps(_Marker(marker)))
    config = write_config(tmp_path, "small")
    rc, out, err = run_cli(["train", config.name, "--resume", run], tmp_path)
    assert rc == 1, err
    no_traceback(err)
    assert runs.CHECKPOINT in err and "refusing to load it" in err
    assert not marker.exists()


def test_yaml_tags_never_run_code(finished, tmp_path):
    marker = tmp_path / "code-ran"
    evil = (f"name: !!python/object/apply:os.mkdir [{str(marker)!r}]\n"
            "model:\n  layers: [{neurons: 10}]\n")
    (tmp_path / "evil.yaml").write_text(evil)
    for command in ("train", "validate"):
        rc, out, err = run_cli([command, "evil.yaml"], tmp_path)
        assert rc == 2, err
        no_traceback(err)
        assert "evil.yaml:1" in err and "python/object/apply" in err
    # the same tag in a run folder's config.yaml
    run = _copy(finished, tmp_path)
    text = (run / runs.CONFIG).read_text()
    (run / runs.CONFIG).write_text(text.replace("seed: 7", f"seed: !!python/object/apply:os.mkdir [{str(marker)!r}]"))
    rc, out, err = run_cli(["eval", run], tmp_path)
    assert rc == 2, err
    no_traceback(err)
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()  # train made no run folder


def test_eval_warns_when_the_config_was_edited_after_training(finished, tmp_path):
    from scratchnet.experiment import config_edited

    run = _copy(finished, tmp_path)
    summary = runs.read_json(run / runs.SUMMARY)
    assert len(summary["config_hash"]) == 64 and not config_edited(run, summary)
    # a comment changes nothing the run was trained with: no warning
    with open(run / runs.CONFIG, "a") as f:
        f.write("# looked at this run on Tuesday\n")
    rc, out, err = run_cli(["eval", run, "--json"], tmp_path)
    assert rc == 0 and "warning" not in err, err
    # a new learning rate does
    raw = yaml.safe_load((run / runs.CONFIG).read_text())
    raw["optimizer"]["lr"] = 0.5
    (run / runs.CONFIG).write_text(yaml.safe_dump(raw, sort_keys=False))
    rc, out, err = run_cli(["eval", run, "--json"], tmp_path)
    assert rc == 0, err
    assert "warning:" in err and "was edited after training" in err and runs.CONFIG in err
    assert json.loads(out)["test"]["accuracy"] > 0.5  # and it still evaluates


# -- never clobber ----------------------------------------------------------------------------
def test_runs_in_the_same_second_get_their_own_folders(tmp_path):
    """Folders named for the coming seconds already exist (with a file in each): two runs
    started together take new folders and leave the old ones alone."""
    config = write_config(tmp_path, "same")
    out = tmp_path / "out"
    out.mkdir()
    now = time.time()
    taken = set()
    for dt in range(-2, 60):
        name = f"same-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now + dt))}"
        (out / name).mkdir()
        (out / name / "keep.txt").write_text(name)
        taken.add(name)
    both = [Run(["train", config.name, "-q", "--out", "out"], tmp_path) for _ in range(2)]
    for run in both:
        assert run.finish() == 0, run.err
    new = sorted(p for p in out.iterdir() if p.name not in taken)
    assert len(new) == 2 and new[0].name != new[1].name
    for run_dir in new:
        assert runs.read_json(run_dir / runs.SUMMARY)["status"] == "completed"
        assert runs.read_json(run_dir / runs.SUMMARY)["run_dir"].endswith(run_dir.name)
    for name in taken:
        assert sorted(p.name for p in (out / name).iterdir()) == ["keep.txt"]
        assert (out / name / "keep.txt").read_text() == name
