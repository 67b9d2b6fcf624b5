"""Nothing hangs, nothing explodes (issue 15), part 3: dead, wrong and slow peers (a web
server where a Dask scheduler should be, a tls:// address without certificates, a cluster
that loses its last worker, a mirror that trickles one byte a second, Ctrl-C during a
download) and stopping a sweep (SIGTERM, and SIGKILL of the parent, whose workers must
not train on for nobody).

Every peer is real and on loopback: an ``http.server``, a ``distributed.LocalCluster``, a
socket server that trickles; every sweep is the real command line in a subprocess, its
worker processes found through /proc and looked up by PID."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli, write_config
from hostile_helpers import LIMIT, loopback_server, one_line
from scratchnet import runs
from scratchnet.data.download import fetch
from scratchnet.errors import DataError


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SCRATCHNET_DEBUG", "SCRATCHNET_DATA_DIR", "COLUMNS")}
    return {**env, **extra}


class Command:
    """``python -m scratchnet ARGS`` in the background (``$SCRATCHNET_DATA_DIR`` unset), its
    output in files: a pipe would be held open by any process it leaves behind, and
    reading it to the end would wait for them."""

    def __init__(self, args, cwd: Path, **env):
        self.files = cwd / "command.out", cwd / "command.err"
        with open(self.files[0], "w") as out, open(self.files[1], "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "scratchnet", *map(str, args)],
                                         cwd=cwd, env=_env(**env), stdout=out, stderr=err)

    @property
    def err(self) -> str:
        return self.files[1].read_text()

    def finish(self, timeout: float = LIMIT) -> tuple[int, str]:
        """Wait for the end (killing it past ``timeout``): ``(exit code, stderr)``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running after {timeout} s:\n{self.err}")
        return code, self.err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _run(args, cwd, timeout=LIMIT, **env) -> tuple[int, str, str]:
    """:func:`conftest.run_cli`, but with ``$SCRATCHNET_DATA_DIR`` unset: data is looked
    for only where ``env`` says."""
    proc = subprocess.run([sys.executable, "-m", "scratchnet", *map(str, args)], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _wait_for(condition, what: str, command: Command | None = None, timeout=LIMIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if command is not None and command.proc.poll() is not None:
            pytest.fail(f"the command ended (exit {command.proc.returncode}) before {what}:\n"
                        f"{command.err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- a web server where a Dask scheduler should be ----------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_web_server_is_no_dask_scheduler_and_tls_needs_certificates(web_server, tmp_path):
    pytest.importorskip("distributed")
    cfg = write_config(tmp_path, "tiny")
    t0 = time.monotonic()
    code, _, err = run_cli(["sweep", cfg, "--executor", "dask", "--address", web_server],
                           tmp_path, timeout=LIMIT)
    assert time.monotonic() - t0 < 40
    assert code == 1 and f"{web_server} accepts connections but did not answer as a Dask " \
                         "scheduler within 10 s; is it one?" in one_line(err)
    tls = web_server.replace("tcp://", "tls://")
    code, _, err = run_cli(["sweep", cfg, "--executor", "dask", "--address", tls], tmp_path,
                           timeout=LIMIT)
    assert code == 2 and "tls:// needs certificates" in one_line(err)
    code, _, err = run_cli(["sweep", cfg, "--executor", "dask", "--address", "ws://x:1"],
                           tmp_path, timeout=LIMIT)
    assert code == 2 and "expected tcp://HOST:PORT or tls://HOST:PORT" in one_line(err)
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_a_cluster_that_loses_its_last_worker_is_given_up_on(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = write_config(tmp_path, "slow", train={"epochs": 200, "batch_size": 1})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster.scheduler_address) as client:
        with Command(["sweep", cfg, "--grid", "optimizer.lr=0.1,0.2", "--executor", "dask",
                      "--address", cluster.scheduler_address, "--worker-timeout", "2"],
                     tmp_path) as sweep:
            _wait_for(lambda: any(client.processing().values()), "a run on the worker", sweep)
            cluster.scale(0)  # the last worker goes, its run with it
            t0 = time.monotonic()
            code, err = sweep.finish()
    assert time.monotonic() - t0 < 30
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err
    line = err.splitlines()[-1]  # after the sweep's first line, which says what it runs
    (folder,) = (tmp_path / "sweeps").iterdir()
    assert "the Dask cluster has had no workers for 2 s; its last worker left" in line
    assert f"resume with: scratchnet sweep --resume {folder.relative_to(tmp_path)} --executor " \
           f"dask --address {cluster.scheduler_address}" in line
    assert (folder / "results.csv").exists() and json.loads((folder / "sweep.json").read_text())


# -- a mirror that trickles ---------------------------------------------------------------
@pytest.fixture
def trickle():
    """A loopback HTTP server that sends a 1000-byte reply one byte a second (with
    ``headers_too``, its status line and headers as well). Yields (base URL, setter)."""
    stop, mode = threading.Event(), {"headers_too": False}

    def serve(conn):
        with conn:
            try:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                for chunk in ([head[i:i + 1] for i in range(len(head))] if mode["headers_too"]
                              else [head]) + [b"x"] * 1000:
                    if stop.wait(1.0 if len(chunk) == 1 else 0):
                        return
                    conn.sendall(chunk)
            except OSError:
                pass

    with loopback_server(serve) as port:
        yield f"http://127.0.0.1:{port}/", mode
        stop.set()


def test_the_deadline_covers_headers_sent_a_byte_at_a_time(trickle, tmp_path):
    url, mode = trickle
    mode["headers_too"] = True
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"gave up after 1.5 s with 0 bytes received"):
        fetch(url + "x.gz", tmp_path / "x.gz", timeout=5, deadline=1.5)
    assert time.monotonic() - t0 < 4
    assert list(tmp_path.iterdir()) == []  # no partial file


MNIST = {"data": {"dataset": "mnist"}, "model": {"layers": [{"neurons": 10, "activation": "linear"}]}}


@pytest.mark.slow
def test_a_trickling_mirror_meets_the_download_deadline(trickle, tmp_path):
    url, _ = trickle
    cfg = write_config(tmp_path, "mnist", **MNIST)
    t0 = time.monotonic()
    code, _, err = _run(["train", cfg, "--quiet"], tmp_path, SCRATCHNET_MIRRORS=url,
                        SCRATCHNET_DOWNLOAD_DEADLINE="2", XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert time.monotonic() - t0 < 30
    assert code == 1
    assert f"Download failed: {url}train-images-idx3-ubyte.gz: gave up after 2 s with" \
           in one_line(err)
    assert not list((tmp_path / "cache").rglob("*.part")) and not (tmp_path / "runs").exists()


def test_ctrl_c_stops_a_download_at_once(trickle, tmp_path):
    url, _ = trickle
    cfg = write_config(tmp_path, "mnist", **MNIST)
    cache = tmp_path / "cache"
    with Command(["train", cfg], tmp_path, SCRATCHNET_MIRRORS=url,
                 XDG_CACHE_HOME=str(cache)) as train:
        _wait_for(lambda: list(cache.rglob("*.part")), "the download to start", train)
        time.sleep(0.5)  # into its first reads
        train.proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        code, err = train.finish()
    assert time.monotonic() - t0 < 10
    assert code == 130, err
    assert "stopping the download" in err and "stopping at the end of this batch" not in err
    assert "interrupted while downloading train-images-idx3-ubyte.gz: nothing was saved" in err
    assert "Traceback" not in err
    assert not list(cache.rglob("*.part")) and not (tmp_path / "runs").exists()


# -- stopping a sweep stops the sweep -------------------------------------------------------
def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(stat.parent.name))
    return out


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (the fork server, the workers, the resource tracker)."""
    children, found, todo = _children(), set(), [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found.update(kids)
        todo += kids
    return found


def alive(pid: int) -> bool:
    """Running (a zombie no init reaps has ended, for this purpose)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


SWEEP = ["--grid", "optimizer.lr=0.05,0.1", "--seeds", "2", "--jobs", "2"]


def _start_sweep(tmp_path: Path) -> tuple[Command, set[int]]:
    """A sweep of four runs of a few seconds each in two worker processes, once both
    are training; with the PIDs of everything it started."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding worker processes needs /proc")
    cfg = write_config(tmp_path, "s", train={"epochs": 25, "batch_size": 2, "eval_every": 5})
    sweep = Command(["sweep", cfg, *SWEEP, "--out", tmp_path / "sweeps"], tmp_path)
    _wait_for(lambda: len(list((tmp_path / "sweeps").glob(f"*/runs/*/{runs.DATA}"))) >= 2,
              "two runs training", sweep)
    workers = descendants(sweep.proc.pid)
    assert len(workers) >= 3, workers  # the fork server and two workers at least
    return sweep, workers


def _gone(pids: set[int], within: float) -> None:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            left = [p for p in pids if alive(p)]
            for p in left:
                os.kill(p, signal.SIGKILL)
            pytest.fail(f"processes {left} still running {within} s after the sweep ended")
        time.sleep(0.1)


def test_sigterm_stops_the_workers_and_records_what_finished(tmp_path):
    sweep, workers = _start_sweep(tmp_path)
    with sweep:
        sweep.proc.send_signal(signal.SIGTERM)
        code, err = sweep.finish()
    _gone(workers, within=10)
    assert code == 143, err
    (folder,) = (tmp_path / "sweeps").iterdir()
    assert "stopping the workers and recording what finished" in err
    assert f"resume with: scratchnet sweep --resume {folder}" in err and "Traceback" not in err
    assert (folder / "results.csv").exists()
    assert json.loads((folder / "sweep.json").read_text())["seeds"] == 2


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143),
                                       pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_tunes_workers_quietly(tmp_path, sig, code):
    """A tune in two worker processes, stopped once both train: every process it started
    ends, and nothing on stderr is a traceback or the resource tracker's "leaked"."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding worker processes needs /proc")
    cfg = write_config(tmp_path, "t", train={"epochs": 25, "batch_size": 2, "eval_every": 5})
    tune = Command(["tune", cfg, "--space", "optimizer.lr=loguniform:0.01:0.1", "--trials", "4",
                    "--jobs", "2", "--out", tmp_path / "tunes"], tmp_path)
    with tune:
        _wait_for(lambda: len(list((tmp_path / "tunes").glob(f"*/**/{runs.DATA}"))) >= 2,
                  "two trials training", tune)
        workers = descendants(tune.proc.pid)
        assert len(workers) >= 2, workers
        tune.proc.send_signal(sig)
        rc, err = tune.finish()
    _gone(workers, within=10)
    assert rc == code, err
    assert "Traceback" not in err and "leaked" not in err, err


@pytest.mark.slow
def test_after_sigkill_of_the_sweep_its_workers_exit_and_resume_salvages(tmp_path):
    sweep, workers = _start_sweep(tmp_path)
    with sweep:
        sweep.proc.kill()
        sweep.finish()
    _gone(workers, within=10)  # multiprocessing's resource tracker among them:
    assert "leaked" not in sweep.err and "Traceback" not in sweep.err  # it cleaned up quietly
    (folder,) = (tmp_path / "sweeps").iterdir()
    done_before = {p for p in (folder / "runs").iterdir()
                   if (p / runs.SUMMARY).exists()
                   and json.loads((p / runs.SUMMARY).read_text())["status"] == "completed"}
    code, out, err = run_cli(["sweep", "--resume", folder, "--jobs", "2", "--json"], tmp_path,
                             timeout=300)
    assert code == 0, err
    assert [p["status"] for p in json.loads(out)["points"]] == ["ok", "ok"]
    state = json.loads((folder / "sweep.json").read_text())
    recorded = {folder / e["run_dir"] for e in state["runs"].values()}
    assert len(recorded) == 4 and done_before <= recorded  # nothing finished is run again
