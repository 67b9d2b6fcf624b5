"""What ``train`` shows while it trains: one bar for the whole run in a terminal (cleared
at the end and on Ctrl-C), a plain line per epoch where stderr is not a terminal, every
epoch's training loss in the table and in metrics.jsonl."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_cli, run_in_terminal, write_config

ERASE_LINE = "\x1b[2K"  # how rich takes a transient bar off the screen


def _in_a_terminal(args: list, cwd: Path, interrupt_when: str | None = None) -> tuple[int, str]:
    return run_in_terminal(args, cwd, 120, interrupt_when)


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)


def test_the_bar_shows_the_whole_run_and_is_cleared(tmp_path):
    cfg = write_config(tmp_path, "barred", train={"epochs": 3, "eval_every": 2})
    rc, text = _in_a_terminal(["train", cfg, "--out", "runs"], tmp_path)
    assert rc == 0, _plain(text)
    plain = _plain(text)
    bar = [line for line in plain.splitlines() if "samples/s" in line]
    assert bar, plain  # drawn at least once
    assert all(re.search(r"barred epoch [123]/3 .* loss \d+\.\d{4} +[\d,]+ samples/s "
                         r"\d+:\d\d:\d\d ETA", line) for line in bar), bar
    assert ERASE_LINE in text[text.rindex("samples/s"):]  # taken off the screen
    rows = [line.split() for line in plain.splitlines() if re.match(r" +[123] +\d", line)]
    assert [r[0] for r in rows] == ["1", "2", "3"]  # a row per epoch
    assert rows[0][2] == "-" and rows[1][2] != "-"  # validation columns at evaluations


def test_ctrl_c_clears_the_bar_and_saves(tmp_path):
    cfg = write_config(tmp_path, "stopped", train={"epochs": 400, "batch_size": 8})
    rc, text = _in_a_terminal(["train", cfg, "--out", "runs"], tmp_path,
                              interrupt_when="samples/s")
    assert rc == 130, _plain(text)
    assert "interrupted: best weights, checkpoint and metrics saved" in _plain(text)
    assert ERASE_LINE in text[text.rindex("samples/s"):]


def test_without_a_terminal_there_is_no_bar_only_a_line_per_epoch(tmp_path):
    cfg = write_config(tmp_path, "logged", train={"epochs": 4, "eval_every": 2})
    rc, out, err = run_cli(["train", cfg, "--out", "runs"], tmp_path)
    assert rc == 0 and err == ""  # no bar on a stderr that is a file or a pipe
    assert "\x1b[" not in out and "\r" not in out
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
