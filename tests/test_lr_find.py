"""``scratchnet lr-find``: the learning-rate range test through the real command line, on
the shipped digits experiment. Every assertion is a property of the test (the rates it
tries, the smoothing, the stopping rule, where the suggestion lies), never one machine's
suggested value."""

from __future__ import annotations

import json
import math
import shlex
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, run_cli_without, write_config
from scratchnet.lr_find import SKIP_END, RangeTest, valley

DIGITS = Path(__file__).resolve().parents[1] / "configs" / "digits_quickstart.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def digits(tmp_path) -> Path:
    """The shipped digits experiment, copied into the test's folder (the working folder)."""
    path = tmp_path / "digits.yaml"
    path.write_bytes(DIGITS.read_bytes())
    return path


def one_line(rc: int, out: str, err: str, code: int = 2) -> str:
    assert (rc, out) == (code, ""), (rc, out, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header chunk, which must come first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def test_the_range_test_on_digits_draws_suggests_and_changes_nothing(tmp_path, digits):
    before = digits.read_bytes(), digits.stat().st_mtime_ns
    rc, out, err = run_cli(["lr-find", digits.name, "--end-lr", "100", "-o", "lr.png",
                            "--json"], tmp_path)
    assert rc == 0, err
    assert out.count("\n") == 1 and out.endswith("\n")  # --json: one object, one line
    r = json.loads(out)
    # what the test tried: the declared number of rates, geometric from start to end
    settings = RangeTest(end_lr=100.0)
    rates, losses, smoothed = (np.array(r[k]) for k in ("rates", "losses", "smoothed"))
    n = r["batches_run"]
    assert r["batches"] == settings.batches and len(rates) == len(losses) == len(smoothed) == n
    np.testing.assert_allclose(rates, settings.rates()[:n], rtol=1e-12)
    step = math.log(100 / 1e-7) / (settings.batches - 1)  # the same factor every batch
    assert rates[0] == settings.start_lr and np.allclose(np.diff(np.log(rates)), step)
    # the smoothed loss is the bias-corrected exponential average of the batch losses
    beta = settings.beta
    weights = beta ** np.arange(n)[::-1]
    expected = [np.dot(weights[n - k - 1:], losses[:k + 1]) * (1 - beta) / (1 - beta ** (k + 1))
                for k in range(n)]
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
    # it falls, then rises past 4 x its lowest, and the test stops there, before the end
    lowest = np.minimum.accumulate(smoothed)
    assert smoothed.min() < 0.8 * smoothed[0]
    assert r["stopped"] == "exploded" and n < settings.batches
    assert smoothed[-1] > settings.stop_factor * lowest[-1]
    assert np.all(smoothed[:-1] <= settings.stop_factor * lowest[:-1])
    assert r["lowest"] == {"lr": rates[np.argmin(smoothed)], "loss": smoothed.min()}
    # the suggestion: finite, tested, inside its valley, where the smoothed loss falls
    s = r["suggestion"]
    low, high = r["valley"]
    assert math.isfinite(s) and rates[0] <= s <= rates[-1]
    assert rates[settings.batches // 10] <= low <= s * 1.06 and s <= high * 1.06  # (rounded)
    assert high <= rates[-1 - SKIP_END]
    i, j = np.searchsorted(rates, [low, high])
    assert smoothed[j] < smoothed[i]
    assert r["set"][0] == f"optimizer.lr={s:g}"
    # the picture was written, a real PNG; nothing else was (no runs/), the config unchanged
    assert r["picture"] == "lr.png" and png_size(tmp_path / "lr.png") == (550, 400)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.yaml", "lr.png"]
    assert (digits.read_bytes(), digits.stat().st_mtime_ns) == before
    assert "lr-find digits_quickstart" in err  # the header goes to stderr with --json


def test_the_printed_line_trains_at_the_suggestion(tmp_path):
    # a decay that ends at the rate it starts from: a suggestion below it also needs a
    # lower final_lr, or the schedule would refuse the line
    path = write_config(tmp_path, "decay", optimizer={"lr": 1.0, "decay": {
        "type": "linear", "final_lr": 1.0}}, model={"layers": [
            {"neurons": 16, "activation": "tanh", "dropout": 0.2},
            {"neurons": 10, "activation": "linear"}]})
    rc, out, err = run_cli(["lr-find", path.name, "--set", "train.batch_size=32"], tmp_path)
    assert rc == 0, err
    assert "note: the config's linear decay is not used in the test" in out
    suggested = next(line for line in out.splitlines() if line.startswith("suggested"))
    lr = float(suggested.split()[3])
    train = next(line for line in out.splitlines() if line.startswith("train with it: "))
    words = shlex.split(train.removeprefix("train with it: "))
    assert words[:3] == ["scratchnet", "train", path.name]
    assert words[3:5] == ["--set", "train.batch_size=32"]  # the test's own overrides kept
    assert words[5:7] == ["--set", f"optimizer.lr={lr:g}"]
    assert ("--set" in words[7:]) == (lr < 1.0)  # final_lr, scaled, only where needed
    rc, out, err = run_cli(["validate", *words[3:], path.name], tmp_path)
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decay.yaml"]


def test_without_matplotlib_a_picture_is_one_install_line_before_any_work(tmp_path, digits):
    rc, out, err = run_cli_without("matplotlib", ["lr-find", digits.name, "-o", "lr.png"],
                                   tmp_path)
    line = one_line(rc, out, err)
    assert "matplotlib" in line and "pip install '" in line and "[plot]'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.yaml"]


@pytest.mark.parametrize("args, says", [
    (["--start-lr", "0"], "--start-lr: start_lr must be a number > 0, got 0.0"),
    (["--start-lr", "nan"], "--start-lr: start_lr must be"),
    (["--end-lr", "1e-8"], "--end-lr: end_lr must be larger than start_lr=1e-07, got 1e-08"),
    (["--batches", "5"], "--batches: batches must be"),
    (["--batches", "100000000"], "--batches: batches must be"),
    (["-o", "lr.jpg"], "pictures are written as PNG"),
    (["-o", "nowhere/lr.png"], "the folder nowhere does not exist"),
    (["--set", "optimizer.lr=-1"], "optimizer.lr"),
])
def test_bad_options_are_one_line_before_any_work(tmp_path, main_here, digits, args, says):
    line = one_line(*main_here("lr-find", digits.name, *args))
    assert says in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.yaml"]


def test_a_bad_option_in_a_real_process(tmp_path, digits):
    line = one_line(*run_cli(["lr-find", digits.name, "--end-lr", "-3"], tmp_path))
    assert line.startswith("error: --end-lr: end_lr must be a number > 0"), line


def test_a_test_that_explodes_at_once_says_to_start_lower(tmp_path, digits):
    rc, out, err = run_cli(["lr-find", digits.name, "--start-lr", "50", "--end-lr", "1e9"],
                           tmp_path)
    assert rc == 1 and out.startswith("lr-find digits_quickstart"), (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "too few to suggest a rate; start lower" in err, err


def test_the_command_lines_defaults_are_the_librarys():
    from scratchnet.cli import lr_find as cli

    assert (cli.START_LR, cli.END_LR, cli.BATCHES) == (RangeTest.start_lr, RangeTest.end_lr,
                                                       RangeTest.batches)


def test_valley_is_halfway_through_the_longest_fall():
    # worked by hand. Left out: the first 2 points (skip_start) and the last 5 (SKIP_END),
    # each of which would lengthen the fall (20 15 ... and ... 1). Among points 2..13,
    # the longest strictly decreasing subsequence is 9 8 7 6 5 4 3 2.5 (or 3.5 for 3):
    # 8 points, ending at point 12, so the valley is points 5..12 and halfway is point 8.
    losses = np.array([20, 15, 9, 9, 9, 8, 7, 6, 5, 4, 3, 3.5, 2.5, 6, 7, 8, 9, 10, 1],
                      dtype=float)
    rates = np.geomspace(1e-3, 1, len(losses))
    s = valley(rates, losses, skip_start=2)
    assert s.valley == (5, 12) and s.index == 8 and s.lr == rates[8] and s.rule == "valley"
    assert s.rounded == float(f"{rates[8]:.2g}")
