"""``scratchnet tune --executor dask`` (issue 29): trials on the workers of a real Dask
cluster, the study served to them by the tune process (Optuna's gRPC storage proxy).

Every cluster is real and on loopback: a ``dask scheduler`` and ``dask worker`` processes
(no nanny, so a killed worker stays dead) started here, in their own session, each test
bounded in time, everything stopped at the end. Every tune is the real command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, write_config
from scratchnet import runs

optuna = pytest.importorskip("optuna")
distributed = pytest.importorskip("distributed")
pytest.importorskip("grpc", reason="tune --executor dask needs grpcio (the tune extra)")
pytestmark = pytest.mark.slow

LIMIT = 240  # seconds any one tune may take here before the test fails instead of hanging
#: a digits run of a few seconds under load, evaluated every epoch
SLOW = {"train": {"epochs": 30, "batch_size": 4, "eval_every": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1, their
    logs and temporary folders under ``folder``. ``workers`` maps each worker's address
    to its process."""

    def __init__(self, folder: Path, workers: int):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", port,
                                  "--no-dashboard"])
        self.workers: dict[str, subprocess.Popen] = {}
        for i in range(workers):
            address = f"tcp://127.0.0.1:{_free_port()}"
            self.workers[address] = self._start(f"worker{i}", [
                "worker", self.address, "--host", "127.0.0.1",
                "--worker-port", address.rsplit(":", 1)[1], "--nthreads", "1", "--no-nanny",
                "--no-dashboard", "--local-directory", str(folder / f"worker{i}")])
        self._wait_for(workers)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        tmp = self.folder / f"{name}-tmp"  # a killed worker's leftovers stay here
        tmp.mkdir(parents=True)
        env = {**os.environ, "TMPDIR": str(tmp)}
        env.pop("SCRATCHNET_DATA_DIR", None)
        with open(self.folder / f"{name}.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def _wait_for(self, n: int, limit: float = 90) -> None:
        deadline = time.monotonic() + limit
        while True:
            try:
                with distributed.Client(self.address, timeout="5s") as client:
                    if len(client.nthreads()) >= n:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                logs = "\n".join(p.read_text() for p in self.folder.glob("*.log"))
                pytest.fail(f"the Dask cluster did not come up within {limit} s:\n{logs}")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(10)
                    break
                except subprocess.TimeoutExpired:
                    continue

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("dask"), workers=2) as c:
        yield c


def _study(tune_dir: Path):
    state = json.loads((tune_dir / "tune.json").read_text())
    return optuna.load_study(study_name=state["study"],
                             storage=f"sqlite:///{tune_dir / 'study.db'}")


def _tune(args, cwd) -> tuple[int, str, str]:
    return run_cli(["tune", *map(str, args)], cwd, timeout=LIMIT)


def test_trials_run_on_the_workers_and_land_in_the_tune_folder(tmp_path, cluster):
    path = write_config(tmp_path, "spread", train={"epochs": 3})
    rc, out, err = _tune([path, "--space", "optimizer.lr=loguniform:1e-2:1", "--trials", "4",
                          "--seed", "0", "--pruner", "none", "--executor", "dask",
                          "--address", cluster.address, "--json"], tmp_path)
    assert rc == 0, err
    result = json.loads(out)
    tune_dir = tmp_path / result["tune"]
    assert f"on the Dask cluster at {cluster.address}" in err.splitlines()[0]
    trials = _study(tune_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert {t.user_attrs["dask_worker"] for t in trials} == set(cluster.workers)  # both
    for t in trials:  # the run folders came back, and every evaluation was reported
        run_dir = tune_dir / t.user_attrs["run_dir"]
        assert runs.read_summary(run_dir)["status"] == "completed"
        history = runs.read_metrics(run_dir)
        assert t.intermediate_values == {r["epoch"]: pytest.approx(r["val_loss"])
                                         for r in history}
        assert t.value == pytest.approx(min(r["val_loss"] for r in history))
    assert result["counts"]["completed"] == 4 and (tune_dir / "best.yaml").is_file()
    assert sorted(line.split("]")[0] for line in err.splitlines() if line.startswith("[")) \
        == ["[1/4", "[2/4", "[3/4", "[4/4"]


def test_the_pruner_judges_trials_on_the_workers(tmp_path, cluster):
    """The values are enqueued (an Optuna feature) so that the outcome does not depend on
    the sampler or on which worker is faster: once a trial that learns has completed, a
    trial that barely learns is below the median at its first evaluation on any machine."""
    from scratchnet.config import load_config
    from scratchnet.tune import create

    path = write_config(tmp_path, "pruned", train={"epochs": 4, "eval_every": 1})
    tune_dir = create(tmp_path / "tunes", load_config(path), {"optimizer.lr": "loguniform:1e-6:1"},
                      trials=1, startup_trials=1).path
    study = _study(tune_dir)
    args = ["--executor", "dask", "--address", cluster.address, "--json", "-q"]
    study.enqueue_trial({"optimizer.lr": 0.1})  # learns
    rc, out, err = _tune(["--resume", tune_dir, "--trials", "1", *args], tmp_path)
    assert rc == 0, err
    study.enqueue_trial({"optimizer.lr": 1e-6})  # barely learns: both at once, on two workers
    study.enqueue_trial({"optimizer.lr": 1e-6})
    rc, out, err = _tune(["--resume", tune_dir, "--trials", "3", *args], tmp_path)
    assert rc == 0, err
    trials = _study(tune_dir).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    for t in trials[1:]:
        summary = runs.read_summary(tune_dir / t.user_attrs["run_dir"])
        assert summary["status"] == "pruned" and summary["pruned_at"] == 1
        assert summary["epochs_run"] == 1 < 4
    assert json.loads(out)["counts"] == {"completed": 1, "pruned": 2, "diverged": 0,
                                         "invalid": 0}


def test_a_worker_killed_mid_trial_loses_only_that_trial(tmp_path):
    path = write_config(tmp_path, "killed", **SLOW)
    with Cluster(tmp_path / "dask", workers=2) as cluster:
        with open(tmp_path / "tune.err", "w") as errors:
            tune = subprocess.Popen(
                [sys.executable, "-m", "scratchnet", "tune", str(path), "--space",
                 "optimizer.lr=loguniform:1e-2:0.3", "--trials", "3", "--seed", "0",
                 "--pruner", "none", "--executor", "dask", "--address", cluster.address,
                 "--json"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            victim = _a_worker_mid_trial(tmp_path, tune)
            cluster.workers[victim].kill()
            out, _ = tune.communicate(timeout=LIMIT)
        finally:
            if tune.poll() is None:
                tune.kill()
                tune.wait()
        err = (tmp_path / "tune.err").read_text()
    assert tune.returncode == 0, err
    assert "Traceback" not in err
    tune_dir = tmp_path / json.loads(out)["tune"]
    trials = _study(tune_dir).trials
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["dask_worker"] == victim
    assert failed[0].user_attrs["error"] == f"the Dask worker {victim} left during the trial"
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(completed) == 3  # the study went on: the lost trial does not count
    assert all(t.user_attrs["dask_worker"] != victim for t in completed
               if t.number > failed[0].number)
    assert json.loads(out)["counts"]["completed"] == 3
    assert f"trial {failed[0].number}: " in err and "left during the trial" in err
    assert len(list((tune_dir / "runs").iterdir())) == 3  # the lost trial's folder died with it


def _a_worker_mid_trial(tmp_path: Path, tune: subprocess.Popen) -> str:
    """The address of a worker whose trial has reported an evaluation, once one has."""
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if tune.poll() is not None:
            pytest.fail(f"the tune ended first:\n{(tmp_path / 'tune.err').read_text()}")
        for db in (tmp_path / "tunes").glob("*/study.db"):
            try:
                trials = _study(db.parent).trials
            except Exception:  # not created yet
                continue
            for t in trials:
                if t.state.name == "RUNNING" and t.intermediate_values and \
                        "dask_worker" in t.user_attrs:
                    return t.user_attrs["dask_worker"]
        time.sleep(0.2)
    pytest.fail("no trial reached its first evaluation")


def test_no_workers_a_dead_scheduler_and_a_peer_that_is_not_dask(tmp_path):
    import http.server
    import threading

    path = write_config(tmp_path, "lonely")
    space = ["--space", "optimizer.lr=loguniform:1e-2:1", "--trials", "2"]
    dead = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    rc, _, err = _tune([path, *space, "--executor", "dask", "--address", dead], tmp_path)
    assert rc == 1 and err.startswith(f"error: cannot reach the Dask scheduler at {dead}"), err
    assert not (tmp_path / "tunes").exists()  # refused before any folder
    rc, _, err = _tune([path, *space, "--address", dead], tmp_path)
    assert rc == 2 and "--address is for --executor dask" in err
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web = f"tcp://127.0.0.1:{server.server_address[1]}"
    try:
        rc, _, err = _tune([path, *space, "--executor", "dask", "--address", web], tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1 and f"{web} accepts connections but did not answer as a Dask scheduler" \
        in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "tunes").exists()
    with Cluster(tmp_path / "dask", workers=0) as empty:
        rc, _, err = _tune([path, *space, "--executor", "dask", "--address", empty.address,
                            "--worker-timeout", "2"], tmp_path)
    assert rc == 1, err
    (tune_dir,) = (tmp_path / "tunes").iterdir()
    last = err.strip().splitlines()[-1]
    assert "the Dask cluster has no workers (waited 2 s); start some, then resume" in last
    assert f"0 of 2 trials finished in {tune_dir.relative_to(tmp_path)}" in last
    assert f"resume with: scratchnet tune --resume {tune_dir.relative_to(tmp_path)} " \
           f"--executor dask --address {empty.address}" in last
    assert "Traceback" not in err and time.monotonic() - t0 < LIMIT
