"""MLflow tracking against a real SQLite tracking store: runs trained through the real
command line, then everything read back through ``MlflowClient``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import digits_config, run_cli, run_cli_without, write_config
from scratchnet import runs

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

# MLflow's SQLite store on SQLAlchemy 2.1 (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One tracking database for the module (creating one takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return folder, f"sqlite:///{folder / 'tracking.db'}"


def only_run_dir(out: Path) -> Path:
    found = [p for p in out.iterdir() if p.is_dir() and (p / runs.CONFIG).is_file()]
    assert len(found) == 1, found
    return found[0]


def mlflow_run(client: MlflowClient, run_dir: Path):
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`scratchnet.run_dir` = '{run_dir.resolve()}'")
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_a_trained_run_is_logged_with_params_metrics_tags_and_artifacts(tmp_path, store):
    folder, uri = store
    path = write_config(tmp_path, "tracked", train={"epochs": 4, "eval_every": 2})
    rc, out, err = run_cli(["train", path, "--mlflow-uri", uri, "--json", "--quiet"], tmp_path)
    assert rc == 0, err
    assert err == ""  # MLflow's own "creating tables" chatter is kept quiet
    summary = json.loads(out)
    run_dir = Path(summary["run_dir"])
    client = MlflowClient(uri)
    run = mlflow_run(client, tmp_path / run_dir)
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    params = run.data.params
    assert params["optimizer.lr"] == "0.1" and params["model.layers.0.neurons"] == "16"
    assert params["model.layers.0.activation"] == "tanh" and params["train.epochs"] == "4"
    assert not any(k.startswith(("tracking", "tune", "sweep")) for k in params)
    history = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
               for k in ("train_loss", "val_loss", "accuracy", "lr")}
    records = runs.read_metrics(tmp_path / run_dir)
    for key, logged in history.items():
        assert logged == [(r["epoch"], pytest.approx(r[key])) for r in records if key in r]
    assert [step for step, _ in history["val_loss"]] == [2, 4]
    assert [step for step, _ in history["train_loss"]] == [1, 2, 3, 4]  # every epoch
    metrics = run.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert metrics["test_loss"] == pytest.approx(summary["test"]["loss"])
    tags = run.data.tags
    assert tags["scratchnet.config_hash"] == summary["config_hash"]
    assert tags["scratchnet.version"] == summary["scratchnet_version"]
    assert tags["scratchnet.status"] == "completed"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {runs.CONFIG, runs.METRICS, runs.SUMMARY, runs.WEIGHTS, runs.DATA} <= artifacts
    # the artifacts sit beside the database, not in the working folder's ./mlruns
    assert run.info.artifact_uri.startswith((folder / "mlartifacts").as_uri())
    assert not (tmp_path / "mlruns").exists()


def test_a_runs_health_is_logged_layer_by_layer(tmp_path, store):
    folder, uri = store
    path = write_config(tmp_path, "watched", train={"epochs": 2})
    rc, out, err = run_cli(["train", path, "--health", "--mlflow-uri", uri, "--json", "-q"],
                           tmp_path)
    assert rc == 0, err
    run_dir = tmp_path / json.loads(out)["run_dir"]
    client = MlflowClient(uri)
    run_id = mlflow_run(client, run_dir).info.run_id
    records = runs.read_metrics(run_dir)
    for key, read in [("health.layers.0.saturated", lambda h: h[0]["saturated"]),
                      ("health.layers.1.mean", lambda h: h[1]["mean"]),
                      ("health.layers.0.W.update_ratio",
                       lambda h: h[0]["params"]["W"]["update_ratio"])]:
        logged = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        assert logged == [(r["epoch"], pytest.approx(read(r["health"]))) for r in records]
    # a number that does not apply (no dead units in a tanh layer) is not logged
    assert client.get_metric_history(run_id, "health.layers.0.dead") == []


@pytest.mark.slow
def test_the_yaml_section_and_set_track_to_the_default_database(tmp_path, store, main_here):
    # in this process (MLflow is imported once); the subprocess tests above and below
    # run the same code path
    path = write_config(tmp_path, "section", tracking={"mlflow": True})
    rc, _, err = main_here("train", path, "--out", "out", "-q",
                           "--set", "tracking.experiment=from-set")
    assert rc == 0, err
    db = tmp_path / "out" / "mlflow.db"  # beside the run folders
    assert db.is_file()
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("from-set")
    assert experiment.artifact_location == (tmp_path / "out" / "mlartifacts").as_uri()
    run = mlflow_run(client, only_run_dir(tmp_path / "out"))
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    # the same through --set alone, in a file without the section
    plain = write_config(tmp_path, "plain")
    _, uri = store
    rc, _, err = main_here("train", plain, "--out", "out2", "-q", "--set", "tracking.mlflow=true",
                           "--set", f"tracking.uri={uri}")
    assert rc == 0, err
    assert mlflow_run(MlflowClient(uri), only_run_dir(tmp_path / "out2")).info.status == "FINISHED"


@pytest.mark.slow
def test_a_tracker_that_cannot_write_warns_once_and_the_run_completes(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"  # unusable, even for root
    path = write_config(tmp_path, "untracked")
    rc, out, err = run_cli(["train", path, "--mlflow-uri", uri, "--json", "-q"], tmp_path)
    assert rc == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: MLflow tracking ({uri}) failed")
    assert "Traceback" not in err
    summary = json.loads(out)
    run_dir = tmp_path / summary["run_dir"]
    assert summary["status"] == "completed"
    for name in (runs.CONFIG, runs.DATA, runs.METRICS, runs.WEIGHTS, runs.CHECKPOINT, runs.SUMMARY):
        assert (run_dir / name).is_file(), name


def test_without_mlflow_installed_the_error_names_the_install_command(tmp_path):
    path = write_config(tmp_path, "tiny")
    rc, _, err = run_cli_without("mlflow", ["train", path, "--mlflow"], tmp_path)
    assert rc == 2
    assert err.strip() == "error: MLflow tracking needs mlflow: pip install 'scratchnet-dlfs[mlflow]'"
    assert not (tmp_path / "runs").exists()  # refused before any training


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, store):
    from scratchnet.config import validate
    from scratchnet.experiment import train_experiment
    from scratchnet.nn import Callback

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, epoch):
            trainer.stop_requested = True

    _, uri = store
    cfg = validate(digits_config(name="resumed", train={"epochs": 3},
                                 tracking={"mlflow": True, "uri": uri}))
    first = train_experiment(cfg, out=tmp_path, callbacks=[StopAfterFirstEpoch()])
    assert first.status == "interrupted"
    client = MlflowClient(uri)
    assert mlflow_run(client, first.run_dir).info.status == "KILLED"
    again = train_experiment(cfg, out=tmp_path, resume=first.run_dir)
    assert again.status == "completed"
    run = mlflow_run(client, first.run_dir)  # still one MLflow run for the folder
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]


def test_long_param_values_are_shortened_to_mlflows_limit(store):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    from scratchnet.tracking import Tracker

    _, uri = store
    tracker = Tracker(uri, "long-values")
    run_id = tracker.create_run("long", {})
    tracker.log(run_id, params={"data.path": "x" * (MAX_PARAM_VAL_LENGTH + 50), "short": [1, 2]})
    assert not tracker.failed
    params = MlflowClient(uri).get_run(run_id).data.params
    assert len(params["data.path"]) == MAX_PARAM_VAL_LENGTH and params["data.path"].endswith("...")
    assert params["short"] == "[1,2]"


@pytest.mark.slow
def test_a_sweep_logs_each_run_nested_under_one_parent(tmp_path, store):
    _, uri = store
    path = write_config(tmp_path, "swept")
    rc, out, err = run_cli(["sweep", path, "--grid", "optimizer.lr=0.05,0.1", "--seeds", "2",
                            "--jobs", "2", "--mlflow-uri", uri, "--json", "-q"], tmp_path)
    assert rc == 0, err
    sweep_dir = Path(json.loads(out)["sweep"])
    state = json.loads((tmp_path / sweep_dir / "sweep.json").read_text())
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep_dir.name)  # named after the sweep
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.run_id == state["tracking"]["parent_run_id"]
    assert parent.info.status == "FINISHED" and parent.data.params["seeds"] == "2"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted((r.data.params["optimizer.lr"], r.data.params["seed"]) for r in children) == [
        ("0.05", "7"), ("0.05", "8"), ("0.1", "7"), ("0.1", "8")]
    for r in children:
        assert r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")] == [1, 2]
    # the runs' own configs are not tracked: the sweep logged them
    entry = next(iter(state["runs"].values()))
    assert runs.read_run_config(tmp_path / sweep_dir / entry["run_dir"])["tracking"] is None


def test_where_a_run_was_tracked_is_no_difference_between_runs():
    from scratchnet.config import differing_keys

    tracked = digits_config(tracking={"mlflow": True, "uri": "sqlite:///x.db"})
    assert differing_keys([digits_config(), tracked]) == []  # compare, plot labels
    assert differing_keys([digits_config(), digits_config(seed=1)]) == ["seed"]


def test_a_tracked_tune_logs_each_trial_under_one_parent(tmp_path, store, main_here):
    optuna = pytest.importorskip("optuna")
    _, uri = store
    path = write_config(tmp_path, "tuned", tracking={"mlflow": True, "uri": uri})
    rc, _, err = main_here("tune", path, "--space", "optimizer.lr=loguniform:1e-2:1",
                           "--trials", "2", "--seed", "0", "--pruner", "none", "-q")
    assert rc == 0, err
    tune_dir = next((tmp_path / "tunes").iterdir())
    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name(tune_dir.name).experiment_id])
    (parent,) = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    assert parent.data.params["space.optimizer.lr"] == "loguniform:1e-2:1"
    study = optuna.load_study(study_name=tune_dir.name, storage=f"sqlite:///{tune_dir / 'study.db'}")
    assert {r.data.params["optimizer.lr"] for r in trials} == {
        str(t.params["optimizer.lr"]) for t in study.trials}
