"""Every count in an experiment file has an upper bound or costs the same to check whatever
it holds: a number of epochs, layers, units or a batch size that no machine could train is
one line and exit 2 at once, never a hang or a swap storm. Each check runs the real command
line in a child bounded in time and in memory, so a regression fails instead of hanging CI."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest
import yaml

from scratchnet.nn.network import MAX_LAYERS
from scratchnet.options import MAX_EPOCHS, MAX_SIZE

#: what one command may take: seconds of CPU, and bytes of address space
CPU_SECONDS, MEMORY = 30, 3 << 30


def bounded(args, cwd) -> tuple[int, str, str, float]:
    """``python -m scratchnet ARGS`` under a time and address-space limit: (exit code,
    stdout, stderr, CPU seconds it used)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))

    env = {k: v for k, v in os.environ.items() if k not in ("SCRATCHNET_DEBUG", "COLUMNS")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "scratchnet", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, preexec_fn=limit,
                          timeout=4 * CPU_SECONDS)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, proc.stdout, proc.stderr, cpu


def write(tmp_path, layers) -> str:
    (tmp_path / "counts.yaml").write_text(yaml.safe_dump({"model": {"layers": layers}}))
    return "counts.yaml"


TWO = [{"neurons": 8, "activation": "tanh"}, {"neurons": 10}]


@pytest.mark.parametrize("command", ["validate", "train"])
def test_a_trillion_epochs_is_refused_at_once(tmp_path, command):
    rc, out, err, _ = bounded([command, write(tmp_path, TWO), "--set",
                               "train.epochs=1000000000000"], tmp_path)
    assert rc == 2, err
    assert (f"train.epochs: epochs must be an integer in [1, {MAX_EPOCHS}], got "
            "1000000000000") in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key, value", [
    ("model.layers.0.neurons", MAX_SIZE + 1), ("train.batch_size", 10**15),
    ("train.eval_every", 10**12), ("train.checkpoint_every", 10**12),
    ("train.early_stopping.patience", 10**12), ("optimizer.decay.warmup_epochs", 10**12),
    ("seed", 2**64),
])
def test_a_count_beyond_its_bound_is_one_line(tmp_path, key, value):
    rc, out, err, _ = bounded(["validate", write(tmp_path, TWO), "--set", f"{key}={value}"],
                              tmp_path)
    assert rc == 2 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{key}: " in lines[0] and str(value) in lines[0], err


def test_twenty_thousand_layers_are_refused_fast(tmp_path):
    rc, out, err, cpu = bounded(["validate", write(tmp_path, TWO * 10_000)], tmp_path)
    assert rc == 2, err
    assert f"model.layers: layers must be a list of 1 to {MAX_LAYERS} items, got a list of " \
           "20000" in err
    assert cpu < CPU_SECONDS / 2, cpu


def test_the_most_layers_validate_in_bounded_time(tmp_path):
    layers = [{"neurons": 4, "activation": "relu"}] * (MAX_LAYERS - 1) + [{"neurons": 10}]
    rc, out, err, cpu = bounded(["validate", write(tmp_path, layers)], tmp_path)
    assert rc == 0, err
    assert cpu < CPU_SECONDS / 2, cpu


def test_show_summarises_the_rate_of_a_long_run(tmp_path):
    rc, out, err, _ = bounded(["show", write(tmp_path, TWO), "--schedule", "--set",
                               f"train.epochs={MAX_EPOCHS}", "--set",
                               "optimizer.decay={type: cosine}"], tmp_path)
    assert rc == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│")]
    rates = rows[-100:]
    assert 100 <= len(rows) < 120 and rates[-1].split("│")[1].strip() == f"{MAX_EPOCHS:,}" \
        .replace(",", "")
    assert f"100 of {MAX_EPOCHS:,} epochs, evenly spaced" in " ".join(out.split())
