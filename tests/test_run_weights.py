"""Which weights a run keeps, one rule (README "A run's weights", docs/format.md): a
completed run's weights are those it ended with (the best evaluation's when early
stopping restores them, else the last epoch's); until it completes, the best evaluation
so far, or the weights as they were when stopped before the first evaluation. The
summary, the messages, `eval`, `predict` and `export` and their help say the same. Every
case here is forced by the config (a min_delta no loss can beat), not by a trajectory."""

from __future__ import annotations

import json

from conftest import run_cli, run_in_terminal, screen_of, write_config
from scratchnet import runs
from scratchnet.constants import WEIGHTS_RULE

#: no evaluation after the first improves on it by this much: the rule stops at the second
NEVER_BETTER = {"patience": 1, "min_delta": 1000.0, "restore_best": True}


def _train(tmp_path, stem: str, **train) -> tuple[dict, str, object]:
    cfg = write_config(tmp_path, stem, train={"eval_every": 1, **train})
    rc, out, err = run_cli(["train", cfg, "--out", "runs"], tmp_path)
    assert rc == 0, err
    [run] = (tmp_path / "runs").glob(f"{stem}-*")
    return runs.read_json(run / runs.SUMMARY), out, run


def _weights_epoch(run) -> int | None:
    return runs.load_arrays(run / runs.WEIGHTS)[1]["epoch"]


def _table_row(out: str, name: str) -> str:
    [row] = [line for line in out.splitlines() if line.startswith(f" {name} ")]
    return " ".join(row.split()[len(name.split()):])


def test_without_early_stopping_the_run_keeps_and_tests_its_last_weights(tmp_path):
    summary, out, run = _train(tmp_path, "last", epochs=3)
    assert (summary["weights"], summary["weights_epoch"], _weights_epoch(run)) == ("last", 3, 3)
    assert _table_row(out, "weights") == "epoch 3, the last"
    assert _table_row(out, "stopped early") == "no"
    rc, out, err = run_cli(["eval", run, "--json"], tmp_path)  # the same weights, tested
    assert rc == 0 and json.loads(out)["test"] == summary["test"], err


def test_the_stopping_rule_at_the_last_epoch_is_not_stopping_early(tmp_path):
    summary, out, run = _train(tmp_path, "at_last", epochs=2, early_stopping=NEVER_BETTER)
    assert (summary["epochs_run"], summary["stopped_early"]) == (2, False)
    assert (summary["weights"], summary["weights_epoch"], _weights_epoch(run)) == ("best", 1, 1)
    assert _table_row(out, "weights") == "epoch 1, the best evaluation"
    assert _table_row(out, "stopped early") == "no"
    summary, out, run = _train(tmp_path, "before", epochs=4, early_stopping=NEVER_BETTER)
    assert (summary["epochs_run"], summary["stopped_early"]) == (2, True)
    assert _table_row(out, "stopped early") == "yes"
    assert _table_row(out, "epochs run") == "2"


def test_a_run_stopped_before_its_first_evaluation_says_its_weights_are_not_evaluated(
        tmp_path):
    cfg = write_config(tmp_path, "early", train={"epochs": 400, "eval_every": 400,
                                                 "batch_size": 8})
    rc, text = run_in_terminal(["train", cfg, "--out", "runs"], tmp_path, 120,
                               interrupt_when="ETA")
    lines = screen_of(text, 120)
    assert rc == 130, "\n".join(lines)
    assert " ".join(next(line for line in lines if line.startswith(" best epoch")).split()) \
        == "best epoch -"
    assert " ".join(next(line for line in lines if line.startswith(" weights")).split()) \
        == "weights not evaluated yet"
    [message] = [line for line in lines if line.startswith("interrupted: ")]
    assert message.startswith("interrupted: weights (not evaluated yet), checkpoint and "
                              "metrics saved in runs/early-")
    assert "best" not in message
    [run] = (tmp_path / "runs").iterdir()
    summary = runs.read_json(run / runs.SUMMARY)
    assert (summary["weights"], summary["weights_epoch"], summary["best_epoch"]) == \
        ("unevaluated", None, None)
    assert _weights_epoch(run) is None
    rc, out, err = run_cli(["eval", run, "--json"], tmp_path)  # usable all the same
    assert rc == 0, err


def test_eval_and_export_help_state_the_rule():
    for command in ("eval", "export"):
        rc, out, err = run_cli([command, "--help"], ".", env={"COLUMNS": "300"})
        assert rc == 0, err
        text = " ".join(out.replace("│", " ").split())
        assert WEIGHTS_RULE in text and "best weights" not in text, text
