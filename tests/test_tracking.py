"""MLflow tracking against a real SQLite tracking store: runs trained through the real
command line, then everything read back through ``MlflowClient``."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
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
    assert err.strip() == ("error: MLflow tracking needs mlflow: "
                           "pip install 'scratchnet-dlfs[mlflow]'")
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
    study = optuna.load_study(study_name=tune_dir.name,
                              storage=f"sqlite:///{tune_dir / 'study.db'}")
    assert {r.data.params["optimizer.lr"] for r in trials} == {
        str(t.params["optimizer.lr"]) for t in study.trials}


# -- the store a user names: never someone else's database, never a hang (issue 26) -------
def _one_warning(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # MLflow's own log lines and retries are kept quiet
    assert lines[0].startswith("warning: MLflow tracking (") and "Traceback" not in err
    return lines[0]


def _trained_untracked(tmp_path, uri: str, env: dict | None = None, limit: float = 60):
    """Train with ``--mlflow-uri uri``: the one warning line, once the run completed with
    its folder whole, within ``limit`` seconds."""
    import time

    path = write_config(tmp_path, "untracked")
    t0 = time.monotonic()
    rc, out, err = run_cli(["train", path, "--mlflow-uri", uri, "--json", "-q"], tmp_path,
                           env=env, timeout=limit)
    seconds = time.monotonic() - t0
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed"
    assert (tmp_path / summary["run_dir"] / runs.WEIGHTS).is_file()
    return _one_warning(err), seconds


def test_someone_elses_sqlite_database_is_never_written_into(tmp_path):
    import hashlib
    import sqlite3

    theirs = tmp_path / "shop.db"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        db.execute("INSERT INTO customers VALUES (1, 'Ada')")
    db.close()
    before = hashlib.sha256(theirs.read_bytes()).hexdigest()
    line, _ = _trained_untracked(tmp_path, f"sqlite:///{theirs}")
    assert f"{theirs}: a SQLite database that is not an MLflow store (its tables: customers)" \
        in line and "does not write into it" in line
    assert hashlib.sha256(theirs.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("shop")) == ["shop.db"]
    # a file that is not SQLite at all is left alone too
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n")
    line, _ = _trained_untracked(tmp_path, f"sqlite:///{notes}")
    assert f"{notes}: not a SQLite database" in line
    assert notes.read_text() == "my notes, not a database\n"


def test_a_fifo_or_an_unwritable_place_is_one_warning_at_once(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    line, seconds = _trained_untracked(tmp_path, f"sqlite:///{fifo}")
    assert f"{fifo}: is a named pipe (FIFO), not a regular file" in line
    assert seconds < 30  # MLflow's own retries took minutes
    if Path("/proc/self").is_dir():  # a folder nobody can create files in, even root
        line, seconds = _trained_untracked(tmp_path, "sqlite:////proc/scratchnet/mlflow.db")
        assert "/proc/scratchnet/mlflow.db: its folder cannot be written" in line
        assert seconds < 30


def test_a_server_that_never_answers_costs_the_tracking_timeout_not_the_run(tmp_path):
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))  # accepts, reads nothing, says nothing
    held: list = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    uri = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        line, seconds = _trained_untracked(tmp_path, uri,
                                           env={"SCRATCHNET_TRACKING_TIMEOUT": "2"})
    finally:
        for conn, _ in held:
            conn.close()
        server.close()
    assert f"({uri}) failed while connecting: TimeoutError: no answer within 2 s" in line
    assert seconds < 40


# -- MLflow's own server reads the store a run wrote (issue 29) ---------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(store: Path, cwd: Path, limit: float = 120):
    """``mlflow server`` (the full package's) on ``store``, on loopback and a free port;
    yields its base URL once it answers /health, stopped with everything it started."""
    import signal
    import subprocess
    import time
    import urllib.request

    port = _free_port()
    log = cwd / "mlflow-server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
             f"sqlite:///{store}", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # (its background job runner, a handful of processes, is not what is tested)
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + limit
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}):\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer within {limit} s:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


def _rest(url: str, endpoint: str, body: dict | None = None, **query) -> dict:
    import urllib.parse
    import urllib.request

    full = f"{url}/api/2.0/mlflow/{endpoint}"
    if query:
        full += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_mlflows_own_server_answers_with_the_run_a_training_wrote(tmp_path):
    pytest.importorskip("mlflow.server", reason="the mlflow extra installs the full package; "
                        "this Python has mlflow-skinny only")
    from importlib.metadata import version

    # the client that writes and the server that reads are one release
    assert version("mlflow") == version("mlflow-skinny")
    path = write_config(tmp_path, "served", train={"epochs": 2})
    rc, out, err = run_cli(["train", path, "--mlflow", "--json", "-q"], tmp_path)
    assert rc == 0 and err == "", err
    summary = json.loads(out)
    run_dir = (tmp_path / summary["run_dir"]).resolve()
    with mlflow_server(tmp_path / "runs" / "mlflow.db", tmp_path) as url:
        experiment = _rest(url, "experiments/get-by-name", experiment_name="served")["experiment"]
        found = _rest(url, "runs/search", {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.`scratchnet.run_dir` = '{run_dir}'"})["runs"]
        assert len(found) == 1
        run = found[0]
        history = _rest(url, "metrics/get-history", run_id=run["info"]["run_id"],
                        metric_key="val_loss")["metrics"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == run_dir.name
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["optimizer.lr"] == "0.1" and params["train.epochs"] == "2"
    assert params["model.layers.0.activation"] == "tanh"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["test_accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert metrics["test_loss"] == pytest.approx(summary["test"]["loss"])
    records = runs.read_metrics(run_dir)
    assert sorted((m["step"], m["value"]) for m in history) == [
        (r["epoch"], pytest.approx(r["val_loss"])) for r in records if "val_loss" in r]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["scratchnet.config_hash"] == summary["config_hash"]
