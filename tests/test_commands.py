"""The commands a person expects, through the real command line: ``--epochs``, ``--lr``,
``--batch-size`` and ``--seed`` as the ``--set`` they stand for; ``runs`` and ``@last``;
``eval --data``; predict's warning for inputs far outside the training range; optional
extras checked before anything runs; a resumed run finding its data; and ``--help`` and
usage errors as people read them."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import digits_config, run_cli, run_cli_without, write_config
from scratchnet import runs
from scratchnet.config import load_config
from scratchnet.experiment import load_data

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "configs" / "digits_quickstart.yaml"
FLAGS = ["--epochs", "2", "--lr", "0.05", "--batch-size", "16", "--seed", "3"]
SETS = ["--set", "train.epochs=2", "--set", "optimizer.lr=0.05", "--set",
        "train.batch_size=16", "--set", "seed=3"]


# -- --epochs, --lr, --batch-size, --seed ---------------------------------------------------
def test_the_flags_are_the_set_they_stand_for(main_here):
    rc, with_flags, err = main_here("show", QUICK, *FLAGS)
    assert rc == 0, err
    rc, with_set, err = main_here("show", QUICK, *SETS)
    assert rc == 0, err
    assert with_flags == with_set
    assert "epochs: 2" in with_flags and "lr: 0.05" in with_flags and "seed: 3" in with_flags
    # given both, the flag wins (it is applied after the --set options)
    rc, out, _ = main_here("show", QUICK, "--set", "train.epochs=9", "--epochs", "2")
    assert rc == 0 and "epochs: 2" in out and "epochs: 9" not in out


def test_a_bad_flag_value_is_the_one_line_config_error(main_here):
    rc, out, err = main_here("validate", QUICK, "--lr", "fast")
    assert rc == 2 and out == ""
    [line] = err.strip().splitlines()
    assert "optimizer.lr" in line and "fast" in line


def test_train_sweep_and_tune_take_the_flags(tmp_path, main_here):
    config = write_config(tmp_path, "tiny")
    rc, out, err = main_here("train", config, "--epochs", "1", "--lr", "0.05", "--seed", "5",
                             "--batch-size", "32", "--json", "-q")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["epochs_run"] == 1
    assert (summary["config"]["optimizer"]["lr"], summary["config"]["seed"],
            summary["config"]["train"]["batch_size"]) == (0.05, 5, 32)
    rc, out, err = main_here("sweep", config, "--grid", "model.layers.0.neurons=4,8",
                             "--epochs", "1", "--jobs", "1", "--json", "-q")
    assert rc == 0, err
    for run_dir in (tmp_path / "sweeps").glob("*/runs/*"):
        assert runs.read_run_config(run_dir)["train"]["epochs"] == 1
    pytest.importorskip("optuna")
    rc, out, err = main_here("tune", config, "--space", "optimizer.lr=uniform:0.05:0.1",
                             "--trials", "1", "--epochs", "1", "--seed", "0", "--json", "-q")
    assert rc == 0, err
    (trial,) = (tmp_path / "tunes").glob("*/runs/*")
    assert runs.read_run_config(trial)["train"]["epochs"] == 1


# -- runs and @last -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """A folder with two finished one-epoch runs, ``b`` started after ``a``."""
    work = tmp_path_factory.mktemp("two_runs")
    a, b = write_config(work, "a"), write_config(work, "b")
    rc, out, err = run_cli(["train", a, b, "--epochs", "1", "-q"], work)
    assert rc == 0, err
    return work


def _run_folders(work: Path) -> list[Path]:
    """The run folders of ``work/runs``, oldest first: ``a`` was started before ``b``
    (in the same second at most, where the name breaks the tie)."""
    return sorted((work / "runs").iterdir(), key=lambda p: (p.name.split("-", 1)[1], p.name))


def test_runs_lists_the_run_folders_oldest_first(two_runs, main_here, monkeypatch):
    a, b = _run_folders(two_runs)
    monkeypatch.chdir(two_runs)
    rc, out, err = main_here("runs", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [Path(r["run_dir"]).name for r in rows] == [a.name, b.name]
    for row, name in zip(rows, "ab", strict=True):
        assert row["name"] == name and row["status"] == "completed"
        assert row["metric"] == "accuracy" and 0 < row["value"] <= 1
        assert (row["epochs_run"], row["epochs"]) == (1, 1) and row["age_seconds"] >= 0
    rc, out, err = main_here("runs")
    assert rc == 0, err
    assert out.index(a.name) < out.index(b.name) and "completed" in out and "1/1" in out


def test_last_names_the_newest_run_wherever_a_run_folder_goes(two_runs, main_here, monkeypatch):
    a, b = _run_folders(two_runs)
    monkeypatch.chdir(two_runs)
    for name in ("@last", "runs/@last"):
        rc, out, err = main_here("eval", name, "--json")
        assert rc == 0, err
        assert Path(json.loads(out)["run_dir"]) == Path("runs") / b.name
    rc, out, err = main_here("compare", "@last", f"runs/{a.name}")
    assert rc == 0 and a.name in out and b.name in out, err
    rc, out, err = main_here("train", "--resume", "@last", "--epochs", "2", "-q")
    assert rc == 0, err
    assert f"extending runs/{b.name} to 2 epochs" in err


def test_a_folder_named_otherwise_is_placed_by_when_its_config_was_written(two_runs, tmp_path):
    from shutil import copytree

    from scratchnet.listing import newest, run_folders

    folder = tmp_path / "runs"
    for i, run in enumerate(_run_folders(two_runs)[:2]):
        copytree(run, folder / f"mine{i}")
        os.utime(folder / f"mine{i}" / runs.CONFIG, (1e9 - 60 * i, 1e9 - 60 * i))
    assert [p.name for p in run_folders(folder)] == ["mine1", "mine0"]
    assert newest(folder).name == "mine0"


def test_a_running_and_an_unfinished_run_say_so(two_runs, tmp_path):
    from shutil import copytree

    from scratchnet.listing import describe

    run = copytree(sorted((two_runs / "runs").iterdir())[0], tmp_path / "run")
    (run / runs.SUMMARY).unlink()
    assert describe(run)["status"] == "incomplete"
    with runs.locked(run):
        assert describe(run)["status"] == "training"


def test_runs_shows_no_control_characters_from_a_summary(two_runs, main_here, tmp_path):
    """A summary.json from elsewhere whose epochs_run is text (a terminal's escape codes)
    is listed with the epochs its metrics record, never with that text."""
    from shutil import copytree

    run = copytree(sorted((two_runs / "runs").iterdir())[0], tmp_path / "runs" / "x")
    summary = runs.read_json(run / runs.SUMMARY)
    (run / runs.SUMMARY).write_text(json.dumps({**summary, "epochs_run": "\x1b]0;owned\x07"}))
    rc, out, err = main_here("runs")
    assert rc == 0 and "\x1b" not in out and "owned" not in out, err
    assert " 1/1 " in out


def test_last_in_a_folder_without_runs_is_one_line(main_here, tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["eval", "empty/@last"], ["runs", "nowhere"]):
        rc, out, err = main_here(*args)
        assert rc == 2 and out == ""
        [line] = err.strip().splitlines()
        assert line.startswith("error: ") and ("no run folders" in line or "no such" in line)


# -- eval --data ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A digits run and a diabetes run (scaled targets), and their raw test splits."""
    work = tmp_path_factory.mktemp("eval_data")
    regression = digits_config(name="reg", data={"dataset": "diabetes",
                                                 "target_scale": "standard"},
                               model={"layers": [{"neurons": 8, "activation": "tanh"},
                                                 {"neurons": 1}], "loss": "mse"},
                               optimizer={"lr": 0.01})
    configs = [write_config(work, "cls"), write_config(work, "reg", raw=regression)]
    rc, out, err = run_cli(["train", *configs, "--json", "-q"], work)
    assert rc == 0, err
    out_runs = {}
    for summary in map(json.loads, out.splitlines()):
        run_dir = work / summary["run_dir"]
        ds = load_data(load_config(run_dir / runs.CONFIG))
        out_runs[summary["name"]] = (run_dir, ds)
    return out_runs


def _write_csv(path: Path, ds, labels) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*ds.feature_names, "label"])
        for row, label in zip(ds.X_test, labels, strict=True):
            writer.writerow([*(f"{v:.17g}" for v in row), label])
    return path


@pytest.mark.parametrize("name", ["cls", "reg"])
def test_eval_data_of_the_runs_own_test_split_scores_the_same(trained, name, main_here,
                                                              tmp_path):
    run_dir, ds = trained[name]
    labels = ([ds.classes[i] for i in ds.y_test] if ds.task == "classification"
              else ds.y_test)
    rc, out, err = main_here("eval", run_dir, "--json")
    assert rc == 0, err
    expected = json.loads(out)["test"]
    files = {"csv": ["--data", _write_csv(tmp_path / "t.csv", ds, labels)]}
    np.savez(tmp_path / "t.npz", x=ds.X_test, y=np.asarray(labels))
    files["npz"] = ["--data", tmp_path / "t.npz"]
    np.save(tmp_path / "x.npy", ds.X_test)
    np.save(tmp_path / "y.npy", np.asarray(labels))
    files["npy"] = ["--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"]
    for kind, args in files.items():
        rc, out, err = main_here("eval", run_dir, *args, "--json")
        assert rc == 0, (kind, err)
        got = json.loads(out)
        assert got["data"] == str(args[1])
        assert got["test"] == pytest.approx(expected, rel=1e-9), kind
    rc, out, err = main_here("eval", run_dir, *files["csv"])
    assert rc == 0 and "t.csv" in out and "metrics" in out, err


def test_eval_data_refuses_what_it_cannot_score(trained, main_here, tmp_path):
    run_dir, ds = trained["cls"]
    labels = [ds.classes[i] for i in ds.y_test]
    path = _write_csv(tmp_path / "odd.csv", ds, ["42", *labels[1:]])
    cases = {("--data", path): "label '42' is not one of the run's classes",
             ("--data", path, "--target", "digit"): "no label column 'digit'",
             ("--data", tmp_path / "x.npy"): "give their labels with --labels"}
    np.save(tmp_path / "x.npy", ds.X_test)
    for args, says in cases.items():
        rc, out, err = main_here("eval", run_dir, *args)
        assert rc == 1 and out == "", err
        [line] = err.strip().splitlines()
        assert says in line, line


# -- predict: inputs far outside the training range ----------------------------------------
def test_predict_warns_once_about_inputs_far_outside_the_training_range(trained, main_here,
                                                                        tmp_path):
    run_dir, ds = trained["cls"]
    info = json.loads((run_dir / runs.DATA).read_text())
    # the training part of the training split, in pixel values (0 to 16)
    low, high = (np.array(info["feature_range"][k]) for k in ("min", "max"))
    assert np.allclose(high, np.round(high), atol=1e-5) and np.allclose(low, 0, atol=1e-5)
    assert (high <= ds.X_train.max(axis=0) + 1e-5).all() and high.max() == pytest.approx(16)
    np.save(tmp_path / "fine.npy", ds.X_test[:3])
    rc, out, err = main_here("predict", run_dir, tmp_path / "fine.npy")
    assert rc == 0 and "warning" not in err, err
    far = ds.X_test[:3].copy()
    far[1:, 20] = 100.0  # digits pixels run from 0 to 16
    np.save(tmp_path / "far.npy", far)
    rc, out, err = main_here("predict", run_dir, tmp_path / "far.npy", "-f", "json")
    assert rc == 0, err
    assert len(json.loads(out)) == 3  # still predicted, stdout untouched
    [line] = err.strip().splitlines()
    assert line.startswith("warning: 2 of 3 inputs hold values far outside the training range")
    assert "far.npy[1], pixel_2_4 = 100" in line
    # a run trained before the range was recorded: no warning
    del info["feature_range"]
    (run_dir / runs.DATA).write_text(json.dumps(info))
    rc, out, err = main_here("predict", run_dir, tmp_path / "far.npy")
    assert rc == 0 and "warning" not in err, err


# -- optional extras are checked before anything runs ---------------------------------------
def test_missing_extras_stop_the_command_before_anything_runs(tmp_path):
    a = write_config(tmp_path, "a")
    b = write_config(tmp_path, "b", tracking={"mlflow": True})
    cases = [("matplotlib", ["train", a, b, "--plot"], "plotting needs matplotlib", "plot"),
             ("mlflow", ["train", a, b], "MLflow tracking needs mlflow", "mlflow"),
             ("distributed", ["sweep", a, "--executor", "dask", "--address",
                              "tcp://127.0.0.1:9"], "the dask executor needs dask.distributed",
              "dask")]
    for module, args, says, extra in cases:
        rc, out, err = run_cli_without(module, args, tmp_path)
        assert rc == 2, (module, err)
        assert err.strip() == f"error: {says}: pip install 'scratchnet-dlfs[{extra}]'"
        assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_plot_and_picture_predictions_check_their_extras_first(trained, tmp_path):
    run_dir, _ = trained["cls"]
    (tmp_path / "seven.png").write_bytes(b"not read")
    rc, _, err = run_cli_without("matplotlib", ["plot", run_dir, "-o", "c.png"], tmp_path)
    assert rc == 2 and err.strip().startswith("error: plotting needs matplotlib")
    rc, _, err = run_cli_without("PIL", ["predict", run_dir, "seven.png"], tmp_path)
    assert rc == 2 and err.strip().startswith("error: reading images needs Pillow")


# -- a resumed run finds its data where it found it before ----------------------------------
def test_resume_reads_the_data_from_where_the_run_found_it(main_here, tmp_path, monkeypatch):
    """An MNIST-format set given with --data-dir once: resuming (here, extending) needs no
    --data-dir again, as eval of the same run does not. A small IDX set stands in for
    MNIST (its official checksums are set aside), and nothing else may be found."""
    from scratchnet.data import mnist, write_idx

    monkeypatch.setitem(mnist.CHECKSUMS, "mnist", {})
    monkeypatch.setitem(mnist.MIRRORS, "mnist", ["http://127.0.0.1:9/"])
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "elsewhere" / "mnist"
    folder.mkdir(parents=True)
    for split, rows in (("train", 120), ("t10k", 40)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (rows, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", (np.arange(rows) % 10).astype(np.uint8))
    config = write_config(tmp_path, "m", data={"dataset": "mnist", "scale": "global"})
    rc, out, err = main_here("train", config, "--data-dir", tmp_path / "elsewhere", "-q",
                             "--epochs", "1")
    assert rc == 0, err
    rc, out, err = main_here("train", "--resume", "@last", "--epochs", "2", "-q", "--json")
    assert rc == 0, err
    assert json.loads(out)["epochs_run"] == 2


# -- --help and usage errors ----------------------------------------------------------------
PANELS = {"Train and evaluate": ["train", "eval", "predict", "runs"],
          "Compare and plot": ["compare", "plot", "report"], "Search": ["sweep", "tune", "lr-find"],
          "Tools": ["validate", "show", "explain", "schema", "gradcheck", "export"]}


def test_help_groups_the_commands_in_panels(main_here):
    rc, out, err = main_here("--help")
    assert rc == 0, err
    starts = [out.index(f"─ {panel} ─") for panel in PANELS]
    assert starts == sorted(starts)
    ends = [*starts[1:], len(out)]
    for (panel, commands), start, end in zip(PANELS.items(), starts, ends, strict=True):
        for command in commands:
            assert re.search(rf"│ {command} ", out[start:end]), (panel, command)


@pytest.mark.parametrize("command", [None, *[c for cs in PANELS.values() for c in cs]])
def test_help_shows_names_not_type_labels(main_here, command):
    rc, out, err = main_here(*([command] if command else []), "--help")
    assert rc == 0, err
    assert not re.search(r"<(bool|int|float|str|path|list\[)", out), out
    # arguments are named in capitals, one spelling each
    for name in re.findall(r"│ \*?\s+([A-Za-z_]+)\s{2,}", out.split("─ Options")[0]):
        assert name.isupper() or name in {c for cs in PANELS.values() for c in cs}, name


@pytest.mark.parametrize("args, says", [
    (["train", "x.yaml", "--bogus"], "error: No such option: --bogus"),
    (["eval"], "error: Missing argument 'RUN_DIR'; see scratchnet eval --help"),
    (["frobnicate"], "error: No such command 'frobnicate'; see scratchnet --help"),
    (["predict", "r", "x.csv", "--proba", "many"], "error: Invalid value for '--proba'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, says, tmp_path):
    rc, out, err = run_cli(args, tmp_path)
    assert (rc, out) == (2, "")
    [line] = err.strip().splitlines()
    assert line.startswith(says) and line.endswith("--help"), line
    assert "╭" not in err and "Usage" not in err


def test_tune_folders_are_ignored_and_cleaned():
    assert "tunes/" in (ROOT / ".gitignore").read_text().split()
    clean = re.search(r"^clean:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert clean and " tunes" in clean.group(1)


def test_a_small_run_imports_neither_scikit_learn_nor_scipy(tmp_path):
    """Importing scikit-learn (and SciPy with it) was most of a digits run's start-up."""
    config = write_config(tmp_path, "tiny")
    code = ("import sys\nfrom scratchnet.cli import main\ntry:\n"
            f"    main(['train', {str(config)!r}, '-q', '--epochs', '1'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
