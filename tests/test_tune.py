"""``scratchnet tune``: real optuna studies on bundled digits with a SQLite storage. The
sampler is seeded and training is seeded, so every study here runs the same trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, run_cli_without, write_config
from scratchnet import runs

optuna = pytest.importorskip("optuna")

SPACE = ["--space", "optimizer.lr=loguniform:1e-4:1",
         "--space", "model.layers.0.activation=choice:tanh,relu"]


def only_tune(out: Path) -> Path:
    found = [p for p in out.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def stored_trials(tune_dir: Path) -> list:
    state = json.loads((tune_dir / "tune.json").read_text())
    return optuna.load_study(study_name=state["study"],
                             storage=f"sqlite:///{tune_dir / 'study.db'}").trials


@pytest.mark.slow
def test_a_study_prunes_records_every_trial_and_its_best_config_trains(tmp_path):
    path = write_config(tmp_path, "search", train={"epochs": 4})
    rc, out, err = run_cli(["tune", path, *SPACE, "--trials", "8", "--seed", "0",
                            "--set", "tune.startup_trials=2", "--json", "-q"], tmp_path)
    assert rc == 0, err
    result = json.loads(out)
    tune_dir = tmp_path / result["tune"]
    trials = stored_trials(tune_dir)
    assert len(trials) == 8 and {t.number for t in trials} == set(range(8))
    states = [t.state.name for t in trials]
    assert "PRUNED" in states and states.count("COMPLETE") >= 2
    assert result["counts"]["pruned"] == states.count("PRUNED")
    # every trial is an ordinary run folder; a pruned one says so in its summary
    run_dirs = sorted((tune_dir / "runs").iterdir())
    assert len(run_dirs) == 8
    for t in trials:
        summary = runs.read_json(tune_dir / t.user_attrs["run_dir"] / runs.SUMMARY)
        if t.state.name == "PRUNED":
            assert summary["status"] == "pruned"
            assert summary["pruned_at"] == summary["epochs_run"] == max(t.intermediate_values)
            assert summary["epochs_run"] < 4
        else:
            assert summary["status"] == "completed" and summary["epochs_run"] == 4
            # every evaluation was reported, and the objective is the best of them
            history = runs.read_metrics(tune_dir / t.user_attrs["run_dir"])
            assert t.intermediate_values == {r["epoch"]: pytest.approx(r["val_loss"])
                                             for r in history}
            assert t.value == pytest.approx(min(r["val_loss"] for r in history))
    # the table: best first, the best completed trial's config written out
    best = result["best"]
    assert best["value"] == min(t.value for t in trials if t.state.name == "COMPLETE")
    assert [r["trial"] for r in result["trials"]][0] == best["trial"]
    assert set(result["importances"]) == {"optimizer.lr", "model.layers.0.activation"}
    best_yaml = tmp_path / result["best_config"]
    assert best_yaml == tune_dir / "best.yaml"
    raw = yaml.safe_load(best_yaml.read_text())
    assert raw["optimizer"]["lr"] == best["params"]["optimizer.lr"] and raw["name"] == "search"
    assert "tune" not in raw or raw["tune"] is None
    rc, out, err = run_cli(["train", best_yaml, "--json", "-q"], tmp_path)
    assert rc == 0, err
    assert json.loads(out)["best_val_loss"] == pytest.approx(best["value"])  # the same run again


def test_the_yaml_section_plans_and_a_resumed_study_continues_its_count(tmp_path, main_here):
    path = write_config(tmp_path, "plan", tune={
        "space": {"optimizer.lr": "loguniform:1e-2:1", "model.layers.0.neurons": "int:8:32:8"},
        "trials": 3, "seed": 1, "pruner": "none"})
    rc, _, err = main_here("tune", path, "-q")
    assert rc == 0, err
    tune_dir = only_tune(tmp_path / "tunes")
    assert len(stored_trials(tune_dir)) == 3
    assert all(t.params["model.layers.0.neurons"] in (8, 16, 24, 32)
               for t in stored_trials(tune_dir))
    # a trial a killed tune left running is not finished: it does not count
    state = json.loads((tune_dir / "tune.json").read_text())
    optuna.load_study(study_name=state["study"], storage=f"sqlite:///{tune_dir / 'study.db'}").ask()
    rc, _, err = main_here("tune", "--resume", tune_dir, "--trials", "5")
    assert rc == 0, err
    assert err.splitlines()[0].endswith(f"3 of 5 trials finished, val_loss minimized, none pruner, "
                                        f"1 process, in {tune_dir}")
    trials = stored_trials(tune_dir)
    assert [t.state.name for t in trials].count("COMPLETE") == 5
    assert [t.state.name for t in trials].count("FAIL") == 1  # the one left running
    assert len(list((tune_dir / "runs").iterdir())) == 5
    rc, _, err = main_here("tune", "--resume", tune_dir)
    assert rc == 0 and "the study already has its 5 trials; none run" in err
    assert len(stored_trials(tune_dir)) == 6
    rc, _, err = main_here("tune", "--resume", tune_dir, "--space", "optimizer.lr=uniform:0.1:1")
    assert rc == 2
    assert err.startswith(f"error: --resume takes the plan from {tune_dir / 'tune.json'}")


BAD_SPACES = [
    ("optimizer.lrr=uniform:0.1:1", "optimizer.lrr: unknown key 'lrr' (did you mean 'lr'?); "
                                    "expected one of: name, lr,"),
    ("model.layers.5.neurons=int:8:16", "model.layers.5: no list item '5' (the list has 2 items)"),
    ("optimizer.lr=uniform:1:0.1",
     "low 1 is greater than high 0.1; expected uniform:LOW:HIGH with LOW <= HIGH"),
    ("optimizer.lr=loguniform:0:1",
     "a log range must be above 0, got low 0; expected loguniform:LOW:HIGH"),
    ("optimizer.lr=loguniform:-1:1", "a log range must be above 0, got low -1"),
    ("model.layers.0.neurons=int:0:8:log", "a log range must be above 0, got low 0"),
    ("optimizer.lr=gauss:0:1", "unknown distribution 'gauss'; expected one of: uniform:LOW:HIGH, "
                               "loguniform:LOW:HIGH, int:LOW:HIGH[:STEP|:log], choice:A,B,..."),
    ("model.layers.0.activation=choice:tanh,relux", "model.layers.0.activation: unknown activation "
                                                    "'relux' (did you mean 'relu'?)"),
    ("model.layers.0.dropout=choice:0.1,1.5",
     "model.layers.0.dropout: dropout must be a number in [0, 1), got 1.5"),
    # an end is invalid
    ("optimizer.lr=uniform:0:1", "optimizer.lr: lr must be a number > 0, got 0"),
    ("model.layers.0.neurons=int:1.5:8",
     "'1.5' is not an integer; expected int:LOW:HIGH[:STEP|:log]"),
    ("optimizer.lr=uniform:0.1", "expected uniform:LOW:HIGH"),
    ("model.layers.0.activation=choice:tanh,tanh", "the value 'tanh' is listed twice"),
    ("name=choice:a,b", "'name' cannot be tuned"),
]


@pytest.mark.parametrize("space, message", BAD_SPACES, ids=[s for s, _ in BAD_SPACES])
def test_a_bad_space_is_one_line_before_any_trial(tmp_path, main_here, space, message):
    path = write_config(tmp_path, "bad")
    rc, out, err = main_here("tune", path, "--space", space, "--space",
                             "optimizer.momentum=uniform:0:0.9")
    assert rc == 2 and out == ""
    assert err.startswith(f"error: --space {space}: {message}"), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tunes").exists()


@pytest.mark.parametrize("args, message", [
    ([], "error: tune needs a search space: --space KEY=DISTRIBUTION (repeatable) or tune.space"),
    (["--space", "optimizer.lr"], "error: --space expects KEY=DISTRIBUTION"),
    (["--space", "optimizer.lr=uniform:0.1:1", "--space", "optimizer.lr=uniform:0.2:1"],
     "error: --space optimizer.lr is given twice"),
    (["--set", "tune.trails=3"], "tune.trails: unknown key 'trails' (did you mean 'trials'?)"),
])
def test_a_missing_or_repeated_space_and_a_bad_section_are_refused(tmp_path, main_here, args,
                                                                   message):
    path = write_config(tmp_path, "bad")
    rc, _, err = main_here("tune", path, *args)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tunes").exists()


def test_a_bad_space_in_the_file_names_the_file_and_key(tmp_path):
    # (and the bad-space errors through the real program, in a subprocess)
    path = write_config(tmp_path, "file", tune={"space": {"optimizer.lr": "loguniform:0:1"}})
    rc, out, err = run_cli(["tune", path], tmp_path)
    assert rc == 2 and out == ""
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "optimizer.lr" in text)
    assert err.strip() == (f"error: {path}:{line}: tune.space.optimizer.lr: a log range must be "
                           "above 0, got low 0; expected loguniform:LOW:HIGH with 0 < LOW <= HIGH")
    assert not (tmp_path / "tunes").exists()


def test_a_diverging_trial_is_recorded_and_no_completed_trial_fails(tmp_path, main_here):
    path = write_config(tmp_path, "wild", model={"layers": [
        {"neurons": 16, "activation": "relu"}, {"neurons": 10, "activation": "linear"}]})
    rc, _, err = main_here("tune", path, "--space", "optimizer.lr=choice:1000", "--trials", "1")
    assert rc == 1
    assert "[1/1] trial 0: lr=1000: diverged: training diverged" in err
    assert err.strip().splitlines()[-1] == "error: no trial completed, so there is no best config"
    assert "RuntimeWarning" not in err
    tune_dir = only_tune(tmp_path / "tunes")
    (trial,) = stored_trials(tune_dir)
    assert trial.state.name == "PRUNED" and trial.user_attrs["status"] == "diverged"
    summary = runs.read_json(tune_dir / trial.user_attrs["run_dir"] / runs.SUMMARY)
    assert summary["status"] == "diverged"


def test_a_metric_the_runs_do_not_measure_stops_the_tune(tmp_path, main_here):
    path = write_config(tmp_path, "regression", raw={
        "seed": 3, "data": {"dataset": "diabetes", "validation": 0.2},
        "model": {"layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 1}],
                  "loss": "mean_squared_error"},
        "train": {"epochs": 2}})
    rc, _, err = main_here("tune", path, "--space", "optimizer.lr=uniform:0.001:0.01",
                           "--metric", "accuracy", "--trials", "2", "-q")
    assert rc == 2
    assert err.strip() == ("error: metric 'accuracy' is not measured by this run; expected one "
                           "of: val_loss, mae, rmse, r2")


@pytest.mark.slow
def test_jobs_run_trials_in_processes_sharing_one_storage(tmp_path):
    path = write_config(tmp_path, "parallel")
    rc, out, err = run_cli(["tune", path, "--space", "optimizer.lr=loguniform:1e-2:1",
                            "--trials", "4", "--jobs", "2", "--seed", "0", "--json"], tmp_path)
    assert rc == 0, err
    tune_dir = tmp_path / json.loads(out)["tune"]
    trials = stored_trials(tune_dir)
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # two worker processes
    assert len({t.params["optimizer.lr"] for t in trials}) == 4  # seeded apart
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert sorted(line.split("]")[0] for line in lines) == ["[1/4", "[2/4", "[3/4", "[4/4"]


def test_without_optuna_installed_the_error_names_the_install_command(tmp_path):
    path = write_config(tmp_path, "tiny")
    rc, _, err = run_cli_without("optuna", ["tune", path, "--space", "optimizer.lr=uniform:0.1:1"],
                                 tmp_path)
    assert rc == 2
    assert err.strip() == "error: scratchnet tune needs optuna: pip install 'scratchnet-dlfs[tune]'"
    assert not (tmp_path / "tunes").exists()


def test_a_tune_on_dask_without_grpcio_names_the_install_command(tmp_path):
    path = write_config(tmp_path, "tiny")
    rc, _, err = run_cli_without("grpc", ["tune", path, "--space", "optimizer.lr=uniform:0.1:1",
                                          "--executor", "dask", "--address", "tcp://127.0.0.1:1"],
                                 tmp_path)
    assert rc == 2
    assert err.strip() == ("error: scratchnet tune --executor dask needs grpc: "
                           "pip install 'scratchnet-dlfs[tune]'")
    assert not (tmp_path / "tunes").exists()  # refused before any folder or connection
