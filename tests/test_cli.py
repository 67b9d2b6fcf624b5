"""The command line, run for real: ``python -m scratchnet ...`` in a subprocess, on real
files, training on scikit-learn's bundled digits for a few epochs.

Exit codes (issue 4): 0 success; 2 usage and config errors, found before any training
starts; 1 failures while running. The data rule that follows from it: a data file the
experiment names that does not exist is a mistake in the config (exit 2, reported by
``validate`` too); a file that exists but cannot be read or parsed fails while running
(exit 1, and the other experiments of the same command still train).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import scratchnet
from conftest import TINY_CONFIG, run_cli, run_in_terminal, write_config
from scratchnet.config import load_config, validate

REQUIRED_JSON_KEYS = {"name", "config", "run_dir", "epochs_run", "best_epoch", "stopped_early",
                      "test", "seconds", "seconds_per_epoch"}
COMMANDS = ["train", "eval", "validate", "show", "schema"]
LONG_NAME = "digits_tanh_sixteen_units_long_name"  # must not be cut short in tables


def one_line_error(rc: int, out: str, err: str, code: int = 2) -> str:
    """Assert the shape of every user error: the exit code, nothing on stdout, one line
    on stderr and no traceback. Returns that line."""
    assert rc == code, (rc, out, err)
    assert out == "", out
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in lines[0], err
    return lines[0]


def json_lines(out: str) -> list[dict]:
    """stdout of --json: every line one JSON object, nothing else."""
    lines = out.splitlines()
    assert lines and all(line.strip() for line in lines), out
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    return objects


def run_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_dir()) if Path(folder).exists() else []


# -- one command that trains two experiments with --json, shared by several tests --------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("trained")
    a = write_config(work, LONG_NAME, train={"epochs": 3, "eval_every": 2})
    b = write_config(work, "b", model={"layers": [{"neurons": 8, "activation": "relu"},
                                                  {"neurons": 10}]})
    rc, out, err = run_cli(["train", a.name, b.name, "--json", "--out", "results",
                            "--set", "train.batch_size=128"], work)
    assert rc == 0, err
    return {"work": work, "out": out, "err": err, "summaries": json_lines(out)}


def test_json_is_one_object_per_run_and_nothing_else(trained):
    summaries = trained["summaries"]
    assert [s["name"] for s in summaries] == [LONG_NAME, "b"]
    for s in summaries:
        assert REQUIRED_JSON_KEYS <= set(s), set(s)
        assert s["status"] == "completed"
        assert set(s["test"]) == {"accuracy", "loss"}
        assert 0.5 < s["test"]["accuracy"] <= 1 and s["test"]["loss"] > 0
        assert s["config"]["name"] == s["name"]
        assert s["seconds"] >= 0 and s["seconds_per_epoch"] >= 0
        assert s["stopped_early"] is False
        assert Path(trained["work"], s["run_dir"]).is_dir()
    assert summaries[0]["epochs_run"] == 3 and summaries[1]["epochs_run"] == 2
    assert summaries[0]["best_epoch"] in (2, 3)


def test_json_mode_sends_the_tables_to_stderr_uncut(trained):
    err = trained["err"]
    # a row per evaluation, the summary and the comparison table, all on stderr
    assert "epoch" in err and "train loss" in err and "val loss" in err
    assert "best epoch" in err and "stopped early" in err and "run folder" in err
    assert "comparison" in err
    # stderr is a pipe here, not a terminal: names and run folders are not cut short
    table_rows = [line for line in err.splitlines() if LONG_NAME in line and "completed" in line]
    assert table_rows, err
    for s in trained["summaries"]:
        assert s["run_dir"] in err
    assert "…" not in err


def test_set_applies_to_every_config_trained(trained):
    for s in trained["summaries"]:
        saved = yaml.safe_load(Path(trained["work"], s["run_dir"], "config.yaml").read_text())
        assert saved["train"]["batch_size"] == 128
        assert s["config"]["train"]["batch_size"] == 128


def test_run_folder_contents(trained):
    from safetensors.numpy import load_file

    work = trained["work"]
    assert sorted(p.name for p in (work / "results").iterdir()) == sorted(
        Path(s["run_dir"]).name for s in trained["summaries"])
    s = trained["summaries"][0]
    run = work / s["run_dir"]
    assert run.name.startswith(f"{LONG_NAME}-") and run.parent.name == "results"
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "weights.safetensors"} <= names
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names  # atomic writes

    # config.yaml: resolved (defaults filled in), with the seed, and valid on its own
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["seed"] == TINY_CONFIG["seed"] and saved["name"] == LONG_NAME
    assert saved["train"]["dtype"] == "float32" and saved["optimizer"]["decay"]["type"] == "none"
    assert validate(saved, "config.yaml").to_dict() == s["config"]
    rc, out, err = run_cli(["validate", run / "config.yaml"], work)
    assert rc == 0, err

    # metrics.jsonl: one line per epoch; the evaluations (every 2 epochs, and the last)
    # add the validation numbers
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert set(records[0]) == {"epoch", "train_loss", "lr", "seconds"}
    evaluations = [r for r in records if "val_loss" in r]
    assert [r["epoch"] for r in evaluations] == [2, 3]
    for r in evaluations:
        assert {"train_loss", "val_loss", "accuracy", "lr"} <= set(r)
    assert s["best_epoch"] == min(evaluations, key=lambda r: r["val_loss"])["epoch"]

    # summary.json on disk is what --json printed
    summary = json.loads((run / "summary.json").read_text())
    for key in REQUIRED_JSON_KEYS:
        assert summary[key] == s[key], key

    # the weights load with safetensors (no pickle) and have the configured shapes
    weights = load_file(str(run / "weights.safetensors"))
    shapes = sorted(tuple(w.shape) for w in weights.values())
    assert sorted(tuple(int(d) for d in sh if d != 1) for sh in shapes) == sorted(
        [(64, 16), (16,), (16, 10), (10,)])
    assert all(np.isfinite(w).all() for w in weights.values())

    # files in the run folder are as readable as any other new file (not mkstemp's 0600)
    mask = os.umask(0o022)
    os.umask(mask)
    for p in run.iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p


def test_eval_uses_the_best_weights_on_the_test_split(trained):
    s = trained["summaries"][0]
    rc, out, err = run_cli(["eval", s["run_dir"], "--json"], trained["work"])
    assert rc == 0, err
    [result] = json_lines(out)
    assert result["test"]["accuracy"] == pytest.approx(s["test"]["accuracy"], abs=1e-9)
    assert result["test"]["loss"] == pytest.approx(s["test"]["loss"], rel=1e-5)
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (10, 10)
    assert cm.sum() == 360  # digits: 1797 examples, a fifth held out for testing
    assert np.trace(cm) / cm.sum() == pytest.approx(result["test"]["accuracy"])
    assert [c["class"] for c in result["per_class"]] == list(range(10))
    for c, row in zip(result["per_class"], cm, strict=True):
        assert c["support"] == row.sum()
        assert c["recall"] == pytest.approx(row[c["class"]] / row.sum())
        assert 0 <= c["precision"] <= 1


def test_eval_for_people(trained, main_here):
    s = trained["summaries"][1]
    rc, out, err = main_here("eval", trained["work"] / s["run_dir"])
    assert rc == 0, err
    assert "accuracy" in out and f"{100 * s['test']['accuracy']:.2f}%" in out
    assert "confusion matrix" in out and "precision" in out and "recall" in out


@pytest.mark.parametrize("target", ["missing_run", "b.yaml"])
def test_eval_of_something_that_is_not_a_run_folder(main_here, tiny_config, target):
    tiny_config("b")
    line = one_line_error(*main_here("eval", target))
    assert target in line and "not a run folder" in line


# -- training output for people -----------------------------------------------------------
def test_train_for_people_on_a_pipe(cli, tiny_config, tmp_path):
    """Three experiments, the middle one's data corrupt: rows per evaluation and a summary
    for each good one, the others still train, exit 1, and the comparison lists all three."""
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n3\n")  # a short row: fails while running
    a = tiny_config("first", train={"epochs": 2})
    b = tiny_config("broken", data={"dataset": "csv", "path": "bad.csv", "target": "y"})
    c = tiny_config("third", train={"epochs": 1})
    rc, out, err = cli("train", a.name, b.name, c.name, "--out", "runs")
    assert rc == 1, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "train loss" in line)
    rows = [line.split() for line in lines[header + 1:header + 3]]
    assert [r[0] for r in rows] == ["1", "2"]  # one row per evaluation
    assert out.count("test accuracy") == 2 and out.count("stopped early") == 2
    assert "test loss" in out and "best epoch" in out
    runs = run_dirs(tmp_path / "runs")
    assert sorted(p.name.rsplit("-", 2)[0] for p in runs) == ["first", "third"]
    for run in runs:
        assert str(Path("runs") / run.name) in out  # the run folder, whole
    table = out[out.index("comparison"):]
    assert "first" in table and "third" in table and "failed" in table
    assert "\x1b[" not in out  # no terminal control codes on a pipe
    [line] = err.strip().splitlines()
    assert "broken" in line and "bad.csv" in line and "Traceback" not in err


def test_train_in_a_terminal_shows_progress_and_finishes(tiny_config, tmp_path):
    cfg = tiny_config("tty", train={"epochs": 2})
    rc, text = run_in_terminal(["train", cfg.name, "--out", "runs"], tmp_path)
    assert rc == 0, text
    assert "Traceback" not in text and "error" not in text.lower()
    assert "test accuracy" in text and "run folder" in text
    assert "tty epoch 1/2" in text  # the progress bar was drawn (it is cleared at the end)
    assert len(run_dirs(tmp_path / "runs")) == 1


def test_quiet_prints_nothing_and_out_defaults_to_runs(cli, tiny_config, tmp_path):
    cfg = tiny_config("quiet", train={"epochs": 1})
    rc, out, err = cli("train", cfg.name, "--quiet")
    assert (rc, out, err) == (0, "", "")
    [run] = run_dirs(tmp_path / "runs")
    assert run.name.startswith("quiet-")
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


# -- the batch loop of the issue -------------------------------------------------------------
def test_batch_loop_over_configs(tmp_path):
    configs = tmp_path / "configs"
    write_config(configs, "a_good", train={"epochs": 1})
    write_config(configs, "b_corrupt_data", data={"dataset": "csv", "path": "bad.csv",
                                                  "target": "y"})
    write_config(configs, "c_bad_config", optimizer={"lr": -1})
    (tmp_path / "bad.csv").write_bytes(b"x,y\n1,\xff\xfe\n")  # not UTF-8: fails while running
    script = ('for f in configs/*.yaml; do "$PY" -m scratchnet train "$f" --json --quiet; '
              'echo "$f $?" >> codes.txt; done > results.jsonl')
    env = {k: v for k, v in os.environ.items() if k != "SCRATCHNET_DEBUG"}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env={**env, "PY": sys.executable},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    codes = dict(line.split() for line in (tmp_path / "codes.txt").read_text().splitlines())
    assert codes == {"configs/a_good.yaml": "0", "configs/b_corrupt_data.yaml": "1",
                     "configs/c_bad_config.yaml": "2"}
    results = json_lines((tmp_path / "results.jsonl").read_text())
    # one object per run that started; a config error starts nothing and prints no JSON
    assert [(r["name"], r["status"]) for r in results] == [
        ("a_good", "completed"), ("b_corrupt_data", "failed")]
    assert "bad.csv" in results[1]["error"]
    assert REQUIRED_JSON_KEYS <= set(results[0])
    # the failures explain themselves on stderr, one line each
    err_lines = proc.stderr.strip().splitlines()
    assert len(err_lines) == 2, proc.stderr
    assert "bad.csv" in err_lines[0] and "c_bad_config.yaml" in err_lines[1]
    assert "optimizer.lr" in err_lines[1]


# -- validate and show ------------------------------------------------------------------------
def test_validate_good_and_bad(cli, tiny_config):
    good = tiny_config("good")
    other = tiny_config("other", name="named_other")
    bad = tiny_config("bad", train={"epochs": 0})
    rc, out, err = cli("validate", good.name, bad.name, other.name)
    assert rc == 2
    assert out.splitlines() == ["ok: good.yaml (good)", "ok: other.yaml (named_other)"]
    [line] = err.strip().splitlines()
    assert "bad.yaml" in line and "train.epochs" in line and "0" in line


def test_show_resolves_defaults_overrides_and_counts_parameters(cli, tmp_path):
    raw = {"model": {"layers": [{"neurons": 16, "activation": "tanh"}, {"neurons": 10}]}}
    write_config(tmp_path, "minimal", raw=raw)
    rc, out, err = cli("show", "minimal.yaml", "--set", "model.layers.0.neurons=32",
                       "--set", "optimizer.decay.type=linear",
                       "--set", "optimizer.decay.final_lr=0.01")
    assert rc == 0, err
    lines = out.splitlines()
    title = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s+model: minimal\s*", line))
    shown = yaml.safe_load("\n".join(lines[:title]))
    assert shown["name"] == "minimal"  # the file's stem
    assert shown["seed"] == 0 and shown["data"]["dataset"] == "digits"
    assert shown["optimizer"]["name"] == "sgd_momentum" and shown["optimizer"]["lr"] == 0.1
    assert shown["optimizer"]["decay"] == {**shown["optimizer"]["decay"], "type": "linear",
                                           "final_lr": 0.01}
    assert shown["train"]["epochs"] == 10 and shown["train"]["batch_size"] == 32
    assert shown["train"]["early_stopping"] is False
    assert shown["model"]["layers"][0]["neurons"] == 32
    assert shown["model"]["layers"][0]["dropout"] == 0.0
    table = "\n".join(lines[title:])
    cells = [[c.strip() for c in re.split(r"[│┃]", line)[1:-1]] for line in lines[title:]
             if line.count("│") >= 5]
    assert cells == [["0", "Dense(32, tanh)", "64", "32", f"{64 * 32 + 32:,}"],
                     ["1", "Dense(10, linear)", "32", "10", f"{32 * 10 + 10:,}"]]
    assert f"total parameters: {64 * 32 + 32 + 32 * 10 + 10:,}" in table


def test_data_dir_finds_mnist(cli, tmp_path):
    """--data-dir is where MNIST is found: with no other place to look (no
    SCRATCHNET_DATA_DIR, an empty cache), show learns the input width 28*28 from it."""
    shared = os.environ.get("SCRATCHNET_DATA_DIR")
    if not shared or not (Path(shared) / "mnist").is_dir():
        pytest.skip("real MNIST not available (set SCRATCHNET_DATA_DIR)")
    raw = {"data": {"dataset": "mnist"},
           "model": {"layers": [{"neurons": 16, "activation": "tanh"}, {"neurons": 10}]}}
    write_config(tmp_path, "mnist_small", raw=raw)
    env = {"SCRATCHNET_DATA_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    rc, out, err = cli("show", "mnist_small.yaml", "--data-dir", shared, env=env)
    assert rc == 0, err
    assert f"{28 * 28 * 16 + 16:,}" in out and "784" in out
    assert not (tmp_path / "cache").exists()  # found, not downloaded


def test_schema_is_json_schema_that_forbids_unknown_keys(main_here):
    rc, out, err = main_here("schema")
    assert rc == 0, err
    schema = json.loads(out)
    assert schema["additionalProperties"] is False
    assert {"model", "optimizer", "train", "data", "seed", "name"} <= set(schema["properties"])


# -- --set -------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, expect", [
    ("model.layers.7.neurons=8", ["--set", "model.layers.7", "2 items"]),
    ("model.layers.first.neurons=8", ["--set", "model.layers.first"]),
    ("train.epochs=abc", ["--set train.epochs=abc", "train.epochs", "'abc'", "integer"]),
    ("model.layers.0.neurons=[1, 2]", ["model.layers.0.neurons", "[1, 2]", "integer"]),
    ("trian.epochs=3", ["trian", "did you mean 'train'"]),
    ("optimizer.lr=-0.5", ["optimizer.lr", "-0.5", "lr must be a number > 0"]),
    ("train.epochs", ["KEY=VALUE", "'train.epochs'"]),
    ("model.layers.0.activation=[bold]x", ["'[bold]x'", "expected one of"]),  # not rich markup
])
def test_bad_overrides(main_here, tiny_config, override, expect):
    cfg = tiny_config("ovr")
    line = one_line_error(*main_here("train", cfg.name, "--set", override, "--out", "runs"))
    for text in expect:
        assert text in line, (text, line)


def test_bad_override_in_a_real_process(cli, tiny_config, tmp_path):
    cfg = tiny_config("ovr")
    line = one_line_error(*cli("train", cfg.name, "--set", "model.layers.0.dropout=1.5"))
    assert "ovr.yaml (--set model.layers.0.dropout=1.5)" in line
    assert "dropout must be a number in [0, 1), got 1.5" in line
    assert not (tmp_path / "runs").exists()


def test_overrides_from_python_match_the_cli(tiny_config):
    cfg = load_config(tiny_config("py"), ["model.layers.1.activation=sigmoid", "train.epochs=4",
                                          "train.early_stopping.patience=2", "seed=11"])
    assert cfg.model.layers[1].activation == "sigmoid"
    assert cfg.train.epochs == 4 and cfg.seed == 11
    assert cfg.train.early_stopping.patience == 2 and cfg.train.early_stopping.restore_best is True


# -- broken experiment files -----------------------------------------------------------------
LAYERS = "model:\n  layers:\n    - {neurons: 8, activation: tanh}\n    - {neurons: 10}\n"
BROKEN = {
    "bad_yaml": ("model:\n  layers: [\n    {neurons: 8\n", ["bad_yaml.yaml:", "invalid YAML"]),
    "unknown_key": (LAYERS + "optimiser:\n  lr: 0.1\n",
                    ["unknown_key.yaml:5", "optimiser", "did you mean 'optimizer'"]),
    "unknown_nested": (LAYERS + "train:\n  epochs: 2\n  batchsize: 8\n",
                       ["unknown_nested.yaml:7", "train.batchsize", "did you mean 'batch_size'"]),
    "wrong_type": (LAYERS + "train:\n  epochs: two\n",
                   ["wrong_type.yaml:6", "train.epochs", "'two'", "integer"]),
    "negative_lr": (LAYERS + "optimizer:\n  lr: -0.1\n",
                    ["negative_lr.yaml:6", "optimizer.lr", "-0.1", "a number > 0"]),
    "dropout_one": ("model:\n  layers:\n    - {neurons: 8, dropout: 1.0}\n    - {neurons: 10}\n",
                    ["dropout_one.yaml:3", "model.layers.0.dropout", "1.0", "in [0, 1)"]),
    "dropout_negative": ("model:\n  layers:\n    - {neurons: 8}\n"
                         "    - {neurons: 10, dropout: -0.1}\n",
                         ["dropout_negative.yaml:4", "model.layers.1.dropout", "-0.1",
                          "in [0, 1)"]),
    "unknown_activation": ("model:\n  layers:\n    - {neurons: 8, activation: relux}\n",
                           ["unknown_activation.yaml:3", "model.layers.0.activation", "'relux'",
                            "did you mean 'relu'", "tanh"]),
    "no_layers": ("seed: 1\n", ["no_layers.yaml", "model", "missing"]),
    "empty": ("", ["empty.yaml", "empty"]),
    "comments_only": ("# nothing here\n", ["comments_only.yaml", "empty"]),
    "top_level_list": ("- neurons: 8\n- neurons: 10\n", ["top_level_list.yaml", "mapping", "list"]),
    "python_tag": ('!!python/object/apply:os.mkdir ["pwned"]\n',
                   ["python_tag.yaml:1", "invalid YAML"]),
    "bad_name": ("name: ../escape\n" + LAYERS, ["bad_name.yaml", "name", "'../escape'"]),
    "csv_missing_file": ("data: {dataset: csv, path: nowhere.csv, target: y}\n" + LAYERS,
                         ["csv_missing_file.yaml:1", "data.path", "'nowhere.csv'", "no such file"]),
    "csv_without_path": ("data: {dataset: csv, target: y}\n" + LAYERS,
                         ["csv_without_path.yaml:1", "data.path", "required for dataset csv"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config(main_here, tmp_path, case):
    text, expect = BROKEN[case]
    (tmp_path / f"{case}.yaml").write_text(text, encoding="utf-8")
    line = one_line_error(*main_here("train", f"{case}.yaml", "--out", "runs"))
    for part in expect:
        assert part in line, (part, line)
    assert not (tmp_path / "runs").exists()  # nothing started
    assert not (tmp_path / "pwned").exists()  # YAML is loaded safely


def test_broken_configs_in_a_real_process(cli, tmp_path):
    """``validate`` on every broken file at once: exit 2, one line per file, stdout empty;
    and ``train`` on one of them."""
    for case, (text, _) in BROKEN.items():
        (tmp_path / f"{case}.yaml").write_text(text, encoding="utf-8")
    rc, out, err = cli("validate", *[f"{case}.yaml" for case in sorted(BROKEN)])
    assert (rc, out) == (2, ""), out
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(BROKEN), err
    for line, case in zip(lines, sorted(BROKEN), strict=True):
        assert all(part in line for part in BROKEN[case][1]), (case, line)
    assert not (tmp_path / "pwned").exists()
    line = one_line_error(*cli("train", "unknown_key.yaml", "negative_lr.yaml"))
    assert "unknown_key.yaml:5" in line and not (tmp_path / "runs").exists()


def test_missing_config_file(cli):
    line = one_line_error(*cli("train", "nope.yaml"))
    assert "nope.yaml" in line and "no such file" in line


def test_every_config_is_checked_before_any_training(cli, main_here, tiny_config, tmp_path):
    good = tiny_config("good")
    bad = tiny_config("bad", data={"dataset": "csv", "path": "gone.csv", "target": "y"})
    line = one_line_error(*cli("train", good.name, bad.name, "--out", "runs"))
    assert "bad.yaml" in line and "gone.csv" in line
    assert not (tmp_path / "runs").exists()
    rc, out, err = main_here("validate", bad.name)
    assert rc == 2 and "gone.csv" in err


def test_out_pointing_at_a_file(cli, tiny_config, tmp_path):
    (tmp_path / "afile").write_text("x")
    line = one_line_error(*cli("train", tiny_config().name, "--out", "afile"))
    assert "afile" in line and "folder" in line


def test_corrupt_data_is_a_failure_while_running(cli, main_here, tiny_config, tmp_path):
    (tmp_path / "broken.csv").write_text("a,b,y\n1,2\n")
    cfg = tiny_config("corrupt", data={"dataset": "csv", "path": "broken.csv", "target": "y"})
    # validate reads the data it describes, so it finds the broken file too
    line = one_line_error(*main_here("validate", cfg.name))
    assert "broken.csv" in line and "file line 2 has 2 fields" in line
    rc, out, err = cli("train", cfg.name, "--out", "runs")
    assert rc == 1 and "Traceback" not in err
    [line] = [x for x in err.splitlines() if "error" in x]
    assert "broken.csv" in line


# -- usage: help, version, entry points -------------------------------------------------------
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(main_here, command):
    args = ([command] if command else []) + ["--help"]
    rc, out, err = main_here(*args)
    assert rc == 0, err
    assert "Usage" in out and "--help" in out
    if command is None:
        for c in COMMANDS:
            assert c in out
    if command == "train":
        for option in ("--set", "--out", "--json", "--quiet", "--data-dir"):
            assert option in out


def test_version(cli):
    rc, out, err = cli("--version")
    assert (rc, out.strip()) == (0, f"scratchnet {scratchnet.__version__}")


def test_help_and_usage_errors_in_a_real_process(cli):
    rc, out, err = cli()  # no arguments: the help, as a usage error
    assert rc == 2 and "Usage" in out + err and "train" in out + err
    rc, out, err = cli("train", "x.yaml", "--bogus")
    assert (rc, out) == (2, "") and "No such option" in err and "Traceback" not in err


@pytest.mark.parametrize("args, says", [
    (["train"], "Missing argument"),
    (["train", "x.yaml", "--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
    (["eval"], "Missing argument"),
    (["train", "x.yaml", "--set"], "requires an argument"),
])
def test_usage_errors_exit_2(main_here, args, says):
    rc, out, err = main_here(*args)
    assert rc == 2, err
    assert out == "" and "Traceback" not in err and "internal error" not in err
    assert says in err


def test_installed_script_matches_python_m(tmp_path):
    script = Path(sys.executable).with_name("scratchnet")
    if not script.exists():
        pytest.skip("no scratchnet script beside this interpreter")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"scratchnet {scratchnet.__version__}")


# -- the library behind the command ------------------------------------------------------------
def test_metrics_are_written_as_each_epoch_ends(tmp_path, tiny_config):
    """While training runs, metrics.jsonl already holds every epoch so far."""
    from scratchnet.nn.callbacks import Callback
    from scratchnet.experiment import train_experiment

    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, epoch):
            path = Path(trainer_run_dir[0]) / "metrics.jsonl"
            seen.append(len(path.read_text().splitlines()))

    trainer_run_dir = []
    cfg = load_config(tiny_config("live", train={"epochs": 3, "eval_every": 2}))
    result = train_experiment(cfg, out=tmp_path / "runs", callbacks=[Watch()],
                              on_start=lambda trainer, run_dir: trainer_run_dir.append(run_dir))
    assert seen == [1, 2, 3]
    assert result.summary["epochs_run"] == 3
