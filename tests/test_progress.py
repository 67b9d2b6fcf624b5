"""What ``train`` shows while it trains, checked on the screen a terminal shows: the raw
output of the real command in a pseudo-terminal, rendered by a terminal emulator (pyte,
and tmux where it is installed), with a CPU-busy process beside it so that the bar's
redraws and the rows interleave as on a loaded machine. One bar for the whole run under
the rows, fitted to the width and cleared at the end and on Ctrl-C; a plain line per
epoch where the output is not a terminal; every epoch's training loss in the table and
in metrics.jsonl. Nothing here depends on timing: only the final screen and the lines
the bar was drawn as are asserted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import TERMINAL_LINES, run_cli, run_in_terminal, screen_of, write_config

#: what a piece of the bar looks like on screen (rich's bar characters, the time columns)
BAR_PIECES = re.compile(r"[━╸╺╾]|ETA|\d+:\d\d:\d\d|/s\b")
NAME = "a_long_experiment_name_for_the_bar"  # longer than an 80-column bar has room for
ROW = re.compile(r" +(\d+) +(\d+\.\d{4}) +(-|\d+\.\d{4}) +(-|\d+\.\d\d%) +\S+ +\d+\.\d$")


def _bar_lines(text: str, columns: int) -> list[str]:
    """Every line the bar was drawn as: the output fed to a terminal emulator piece by
    piece, each piece from one carriage return to the next (rich draws the bar from the
    start of its line), and the cursor's line read after each."""
    import pyte

    screen = pyte.Screen(columns, TERMINAL_LINES)
    stream = pyte.Stream(screen)
    drawn = []
    for piece in re.split(r"(?=\r)", text):
        stream.feed(piece)
        line = screen.display[screen.cursor.y].rstrip()
        if "ETA" in line:
            drawn.append(line)
    return drawn


def _check_final_screen(lines: list[str], columns: int, epochs: int, evaluated: set[int],
                        status: str = "completed") -> None:
    """The screen after a run: the header (never broken in a word), the column header,
    exactly one line per epoch, the summary, and not a piece of the bar anywhere."""
    text = "\n".join(lines)
    assert not [line for line in lines if BAR_PIECES.search(line)], text
    assert all(len(line) <= columns for line in lines)
    assert lines[0].startswith(f"training {NAME}: 2 layers, {epochs} epochs;"), text
    loading = "loading digits (1,437 + 360 images of 1 x 8 x 8)"
    assert lines[0].endswith(loading) or lines[1] == loading, text
    heads = [i for i, line in enumerate(lines) if line.split() == [
        "epoch", "train", "loss", "val", "loss", "accuracy", "lr", "seconds"]]
    assert len(heads) == 1, text
    rows = [ROW.match(line) for line in lines[heads[0] + 1:heads[0] + 1 + epochs]]
    assert all(rows), text  # one whole line per epoch, nothing between them
    assert [int(r[1]) for r in rows] == list(range(1, epochs + 1))
    assert {int(r[1]) for r in rows if r[3] != "-"} == evaluated  # validation columns
    assert sum(1 for line in lines if ROW.match(line)) == epochs  # and no row twice
    summary = lines[heads[0] + 1 + epochs:]
    assert summary[0].strip() == f"{NAME}: {status}", text
    assert [line.split()[0] for line in summary[1:]][-1] == "run"  # ends with the run folder


@pytest.mark.parametrize("columns", [80, 120])
def test_the_final_screen_holds_the_rows_and_no_bar(tmp_path, busy_cpu, columns):
    cfg = write_config(tmp_path, "barred", name=NAME, train={"epochs": 6, "eval_every": 2})
    rc, text = run_in_terminal(["train", cfg, "--out", "runs"], tmp_path, columns)
    lines = screen_of(text, columns)
    assert rc == 0, "\n".join(lines)
    _check_final_screen(lines, columns, 6, {2, 4, 6})
    # the bar was drawn (at least at every epoch's start), a column short of the width,
    # with the times whole; the name is cut to fit, the epoch is not
    drawn = _bar_lines(text, columns)
    assert {re.search(r"epoch (\d)/6", line)[1] for line in drawn} == set("123456"), drawn
    times = r" (\d+:\d\d:\d\d|-:--:--) ETA( \d+:\d\d:\d\d| -:--:--)?$"
    assert all(len(line) < columns and re.search(times, line) for line in drawn), drawn
    assert all(line.startswith(NAME if columns == 120 else NAME[:10]) for line in drawn)
    assert all((NAME in line) == (columns == 120) for line in drawn), drawn


@pytest.mark.parametrize("width", [70, 80, 99, 100, 120, 200])
def test_the_bar_keeps_its_times_and_cuts_the_name_to_fit(width):
    from scratchnet.cli.render import ConsoleReporter, bar_layout

    for epoch, loss, rate in (("epoch 1/8", "-", None), ("epoch 12/120", "0.0281", 50977.0),
                              ("epoch 120/120", "12.3456", 123456.0)):
        description, after, bar = bar_layout(width, NAME, epoch, loss, rate)
        line = f"{description} {'━' * bar} {after} 0:00:01 ETA 0:00:02"
        assert len(line) < width, line  # a column to spare: no terminal wraps it
        assert description.endswith(epoch) and after.startswith(f"loss {loss}")
        assert ConsoleReporter.BAR_MIN <= bar <= ConsoleReporter.BAR_MAX
        name = description[:-len(epoch)].strip()
        assert name in (NAME, "") or (name.endswith("…") and NAME.startswith(name[:-1]))
        assert name or width < 80  # the name left out only where under 4 columns are left
    assert (NAME in description) == (width >= 120)


def test_ctrl_c_clears_the_bar_and_saves(tmp_path, busy_cpu):
    cfg = write_config(tmp_path, "stopped", name=NAME, train={"epochs": 400, "batch_size": 8})
    rc, text = run_in_terminal(["train", cfg, "--out", "runs"], tmp_path, 80,
                               interrupt_when="ETA")
    lines = screen_of(text, 80)
    screen = "\n".join(lines)
    assert rc == 130, screen
    assert not [line for line in lines if BAR_PIECES.search(line)], screen
    assert "stopping at the end of this batch and saving (Ctrl-C again to quit now)" in lines
    assert f"{NAME}: interrupted" in screen and "interrupted: " in screen
    assert any(line.startswith("resume with: scratchnet train --resume runs/")
               for line in lines[-2:]), screen


def test_the_health_table_fits_80_columns(tmp_path, busy_cpu):
    cfg = write_config(tmp_path, "watched", name=NAME, train={"epochs": 2, "eval_every": 1})
    rc, text = run_in_terminal(["train", cfg, "--out", "runs", "--health"], tmp_path, 80)
    lines = screen_of(text, 80)
    assert rc == 0, "\n".join(lines)
    heads = [line for line in lines if line.split()[:2] == ["layer", "activation"]]
    assert len(heads) == 2 and heads[0].split()[-1] == "update/W", lines  # whole, not wrapped
    layers = [line.split() for line in lines if re.match(r" +[01] +(tanh|linear) ", line)]
    assert [(w[0], w[1], len(w)) for w in layers] == [("0", "tanh", 9), ("1", "linear", 9)] * 2
    assert not [line for line in lines if BAR_PIECES.search(line)]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed "
                    "(.ci/run installs it)")
def test_the_final_screen_in_tmux_at_80_columns(tmp_path, busy_cpu):
    cfg = write_config(tmp_path, "barred", name=NAME, train={"epochs": 6, "eval_every": 2})
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]  # a server of its own
    done = tmp_path / "exit-code"
    command = (f"{sys.executable} -m scratchnet train {cfg} --out runs; echo $? > {done}")
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", str(TERMINAL_LINES),
                    "-c", str(tmp_path), command + "; sleep 600"], check=True)
    def capture() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-J"], capture_output=True,
                              text=True, check=True).stdout

    try:
        deadline = time.monotonic() + 120
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        shown, before = capture(), None
        while shown != before and time.monotonic() < deadline:  # tmux has drawn it all
            time.sleep(0.3)
            shown, before = capture(), shown
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert done.read_text().strip() == "0", shown
    lines = [line.rstrip() for line in shown.rstrip().splitlines()]
    _check_final_screen(lines, 80, 6, {2, 4, 6})


def test_without_a_terminal_there_is_no_bar_only_a_line_per_epoch(tmp_path):
    cfg = write_config(tmp_path, "logged", train={"epochs": 4, "eval_every": 2})
    rc, out, err = run_cli(["train", cfg, "--out", "runs"], tmp_path)
    assert rc == 0 and err == ""  # no bar on a stderr that is a file or a pipe
    assert "\x1b[" not in out and "\r" not in out
    assert not [line for line in out.splitlines() if line.endswith(" ")]  # no padding kept
    lines = out.splitlines()
    assert lines[0] == ("training logged: 2 layers, 4 epochs; loading digits (1,437 + 360 "
                        "images of 1 x 8 x 8)")
    assert lines[1].split() == ["epoch", "train", "loss", "val", "loss", "accuracy", "lr",
                                "seconds"]
    epochs = [line.split() for line in lines[2:6]]
    assert [e[0] for e in epochs] == ["1", "2", "3", "4"]
    assert [e[2] == "-" for e in epochs] == [True, False, True, False]
    [run] = (tmp_path / "runs").iterdir()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]  # every epoch's training loss
    assert ["val_loss" in r for r in records] == [False, True, False, True]
    assert [f"{r['train_loss']:.4f}" for r in records] == [e[1] for e in epochs]


def test_a_resumed_run_keeps_every_epochs_loss(tmp_path):
    cfg = write_config(tmp_path, "resumed", train={"epochs": 3, "eval_every": 2})
    rc, out, err = run_cli(["train", cfg, "--out", "runs", "-q"], tmp_path)
    assert rc == 0, err
    [run] = (tmp_path / "runs").iterdir()
    rc, out, err = run_cli(["train", "--resume", run, "--set", "train.epochs=5", "-q"], tmp_path)
    assert rc == 0, err
    extended = [p for p in (tmp_path / "runs").iterdir() if p != run]
    records = [json.loads(line) for line in
               (extended[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5]
