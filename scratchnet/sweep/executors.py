"""Running a sweep's tasks: in this process, in a pool of worker processes, or on a Dask
cluster."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass

from ..constants import WORKER_TIMEOUT
from ..errors import ConfigError, ScratchnetError
from ..extras import require
from ..tracking import PlanTracking
from .folder import SweepFolder
from .grid import Task
from .worker import run_task, run_task_shipped, watch_parent

#: seconds a Dask scheduler has to accept a connection and answer its greeting
CONNECT_TIMEOUT = 10.0
#: seconds between looks at a Dask cluster's finished tasks and workers
POLL = 0.5


@contextmanager
def _blas_threads(n: int):
    """Worker processes inherit these: each worker's BLAS uses ``n`` threads, so that
    ``jobs`` workers do not each start a thread per core. A value the user set wins."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    added = [k for k in names if k not in os.environ]
    for k in added:
        os.environ[k] = str(n)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _payload(task: Task) -> dict:
    return {"key": task.key, "run_name": task.run_name, "config": task.config}


@dataclass
class SweepProgress:
    """Counts :func:`run_sweep` returns: all runs, runs found already finished, and runs
    that did not complete."""

    total: int
    skipped: int = 0
    failed: int = 0


def run_sweep(folder: SweepFolder, *, jobs: int | None = None, executor: str = "local",
              address: str | None = None, data_dir: str | None = None,
              on_result: Callable[[Task, dict], None] | None = None,
              start_method: str = "forkserver", client=None,
              worker_timeout: float = WORKER_TIMEOUT) -> SweepProgress:
    """Run every run of ``folder`` that has not finished yet.

    ``jobs`` worker processes (default: the number of cores; 1 runs in this process) or,
    with ``executor="dask"``, the workers of the Dask scheduler at ``address`` (or of
    ``client``, a connected ``distributed.Client``, which is left open). Each
    finished run is recorded in ``sweep.json`` at once and passed to ``on_result(task,
    entry)``. A run that fails is recorded with its error; it never stops the others. A
    sweep created from a config with ``tracking: {mlflow: true}`` logs each finished run to
    MLflow, nested under one parent run for the sweep. A Dask cluster without a single
    worker for ``worker_timeout`` seconds ends the sweep (a ScratchnetError); what
    finished is recorded.
    """
    if executor not in ("local", "dask"):
        raise ConfigError(f"executor must be 'local' or 'dask', got {executor!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    if executor == "dask" and not address and client is None:
        raise ConfigError("the dask executor needs the scheduler's address "
                          "(--address tcp://HOST:PORT)")
    data_dir = data_dir if data_dir is not None else folder.data_dir
    progress = SweepProgress(total=len(folder.tasks))
    grid_keys = {f"grid.{k}": v for k, v in folder.state["grid"].items()}
    tracking = PlanTracking.open(folder, {**grid_keys, "seeds": folder.state["seeds"]})
    try:
        _run_todo(folder, jobs, executor, address, data_dir, on_result, start_method, client,
                  progress, tracking, worker_timeout)
    except BaseException as e:
        tracking.close("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    tracking.close()
    return progress


def _run_todo(folder, jobs, executor, address, data_dir, on_result, start_method, client,
              progress, tracking, worker_timeout) -> None:
    def done(task: Task, result: dict) -> None:
        entry = folder.record(task, result)
        tracking.record(folder.run_path(entry))
        if entry["status"] != "completed":
            progress.failed += 1
        if on_result is not None:
            on_result(task, entry)

    todo: list[tuple[Task, str | None]] = []
    for task in folder.tasks:
        if folder.is_final(task.key):
            progress.skipped += 1
            continue
        if task.error is not None:
            done(task, {"key": task.key, "status": "invalid", "error": task.error})
            continue
        finished, resumable = folder.salvage(task)
        if finished is not None:
            progress.skipped += 1
            done(task, finished)
            continue
        todo.append((task, str(resumable) if resumable else None))
    if not todo:
        return

    if executor == "dask":
        if client is not None:
            _run_dask(folder, todo, client, data_dir, done, worker_timeout)
        else:
            with dask_client(address) as own:
                _run_dask(folder, todo, own, data_dir, done, worker_timeout)
    else:
        jobs = min(jobs or os.cpu_count() or 1, len(todo))
        if jobs == 1:
            for task, resume_dir in todo:
                done(task, run_task(_payload(task), str(folder.runs_dir), data_dir, resume_dir))
        else:
            _run_local(folder, todo, jobs, data_dir, done, start_method)


def _failed(task: Task, error: str) -> dict:
    return {"key": task.key, "status": "failed", "error": error}


def _run_local(folder, todo, jobs, data_dir, done, start_method) -> None:
    with worker_pool(jobs, start_method) as pool:
        futures = {pool.submit(run_task, _payload(t), str(folder.runs_dir), data_dir, r): t
                   for t, r in todo}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                result = fut.result()
            except Exception as e:  # the worker process died (killed, out of memory)
                result = _failed(task, f"worker process failed: {type(e).__name__}: {e}")
            done(task, result)


@contextmanager
def worker_pool(jobs: int, start_method: str = "forkserver", preload: tuple[str, ...] = ()):
    """A ``ProcessPoolExecutor`` of ``jobs`` training processes (sweeps, ``tune --jobs``),
    each with its share of the BLAS threads. An error or Ctrl-C in the ``with`` block
    stops the workers at once rather than letting them finish the queue, and the workers
    exit by themselves if this process dies (:func:`~scratchnet.sweep.worker.watch_parent`).
    ``start_method`` is "forkserver" or "spawn"."""
    import multiprocessing

    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # The fork server imports the library (and scikit-learn's loaders, 0.8 s) once;
        # each worker forks from it ready to go. A module that fails to import is skipped.
        ctx.set_forkserver_preload(["scratchnet.experiment", "scratchnet.sweep",
                                    "sklearn.datasets", "sklearn.model_selection", *preload])
    _start_helpers(start_method)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # Only this process holds the writing end: the workers exit when it dies (watch_parent).
    # (A "fork" start method would copy it into them, so it is not used here.)
    lifeline, writer = ctx.Pipe(duplex=False)
    with _blas_threads(threads), lifeline, writer:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=watch_parent,
                                   initargs=(lifeline,))
        # (submit may start a worker: one half started when a signal tears the pool down
        # would find its queues gone and print a traceback)
        pool.submit = _holding_signals(pool.submit)
        try:
            yield pool
        except BaseException:
            # (shutdown forgets the worker processes, so take them first)
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in procs:
                proc.join(timeout=5)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _holding_signals(call: Callable) -> Callable:
    """``call`` with SIGINT and SIGTERM held while it runs (in the main thread): one that
    comes is raised again once it returns, for this process's own handler to see."""
    def held(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return call(*args, **kwargs)
        came: list[int] = []
        old = {sig: signal.signal(sig, lambda signum, _: came.append(signum))
               for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return call(*args, **kwargs)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            for signum in came:
                signal.raise_signal(signum)
    return held


def _start_helpers(start_method: str) -> None:
    """Start multiprocessing's helper processes quiet about a stop by a signal.

    The resource tracker unlinks the pool's semaphores when this process is gone without
    doing so (a second Ctrl-C quits at once; ``kill -9``), and warns of "leaked semaphore
    objects" as it does: started with that warning ignored (it takes ``-W`` options
    from ``sys.warnoptions``), it cleans up in silence. The fork server imports the
    library before it ignores Ctrl-C itself: started with Ctrl-C ignored (a disposition
    that survives ``exec``), a Ctrl-C during those imports is the sweep's to handle, not
    a traceback of the fork server's. (Both stay up for the process's life: this is done
    once, before the first pool.)"""
    from multiprocessing import forkserver, resource_tracker

    quiet = "ignore:resource_tracker:UserWarning"
    sys.warnoptions.append(quiet)
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)
    if start_method == "forkserver" and threading.current_thread() is threading.main_thread():
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, handler)


@contextmanager
def dask_client(address: str, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` connected to the scheduler at ``address`` (``tcp://`` or
    ``tls://``, with the certificates of Dask's configuration), closed on exit. Nothing
    waits longer than about ``timeout`` seconds: a port that refuses, or that accepts but
    does not speak Dask's protocol (a web server, say), is a ScratchnetError."""
    require("dask")
    from distributed import Client, Security

    host, port, scheme = _split_address(address)
    security = Security()  # from Dask's configuration (distributed.comm.tls.*)
    if scheme == "tls" and security.get_connection_args("client")["ssl_context"] is None:
        raise ConfigError(f"--address {address}: tls:// needs certificates, and Dask's "
                          "configuration names none (distributed.comm.tls.ca-file, "
                          ".client.cert and .client.key); set them, or use tcp://")
    import socket

    try:  # a refused connection fails at once here; Dask's client would retry until timeout
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise ScratchnetError(f"cannot reach the Dask scheduler at {address}: "
                              f"{e.strerror or e}") from None
    _handshake(address, security, timeout)
    try:
        client = Client(address, timeout=f"{timeout}s", security=security)
    except (OSError, TimeoutError, ValueError) as e:
        raise ScratchnetError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        yield client
    finally:
        client.close()


def _split_address(address: str) -> tuple[str, int, str]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ConfigError(f"--address {address!r}: {e}") from None
    if parts.scheme not in ("tcp", "tls") or not host or not port:
        raise ConfigError(f"--address {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    return host, port, parts.scheme


def _handshake(address: str, security, timeout: float) -> None:
    """Greet ``address`` as Dask's client does, within ``timeout`` seconds. (Its own
    Client waits for a reply without limit: a web server on the port hangs it.)"""
    import asyncio

    from distributed.comm import connect

    async def greet():
        comm = await asyncio.wait_for(
            connect(address, timeout=timeout, **security.get_connection_args("client")),
            timeout + 1)
        await comm.close()

    try:
        asyncio.run(greet())
    except (OSError, TimeoutError, asyncio.TimeoutError) as e:
        detail = f" ({' '.join(str(e).split())[:120]})" if str(e) else ""
        raise ScratchnetError(f"{address} accepts connections but did not answer as a Dask "
                              f"scheduler within {timeout:g} s{detail}; is it one?") from None
    except Exception as e:  # noqa: BLE001 - whatever a peer's bytes make of Dask's reader
        # (a frame length of exabytes is a MemoryError, a short one a struct.error, ...)
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:160]
        raise ScratchnetError(f"{address} answered, but not as a Dask scheduler does (its "
                              f"greeting could not be read: {detail}); is it one?") from None


def _workers(client) -> int:
    return len(client.nthreads())


def local_address(address: str) -> str:
    """This machine's address on the way to the Dask scheduler at ``address``: where the
    cluster's workers can reach a service of this process (``tune``'s study)."""
    import socket

    host, port, _ = _split_address(address)
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as s:
        return s.getsockname()[0]


def run_on_dask(client, submit: Callable[[], dict], done: Callable, worker_timeout: float,
                on_poll: Callable[[], None] | None = None) -> None:
    """Tasks on ``client``'s cluster, watched: once it has a worker, ``submit()`` sends the
    tasks and returns ``{future: item}``; ``done(future, item)`` is called as each ends
    (its ``result()`` may raise: a worker died, the cluster went away) and ``on_poll()``
    every :data:`POLL` seconds. A cluster without workers for ``worker_timeout`` seconds,
    at the start or later, is a ScratchnetError; any exception cancels the tasks."""
    from distributed import as_completed as dask_completed

    futures: dict = {}
    try:
        since = time.monotonic()
        while not _workers(client):
            if time.monotonic() - since > worker_timeout:
                raise ScratchnetError(f"the Dask cluster has no workers (waited "
                                      f"{worker_timeout:g} s); start some, then resume")
            time.sleep(POLL)
        futures = submit()
        pending, idle = dask_completed(list(futures)), None
        while not pending.is_empty():
            batch = pending.next_batch(block=False)
            for fut in batch:
                try:
                    done(fut, futures.pop(fut))
                finally:
                    # forgotten at once: a result held by a worker that dies later would
                    # otherwise be computed again (a run trained, a trial drawn, twice)
                    fut.release()
            if on_poll is not None:
                on_poll()
            if batch:
                continue
            idle = None if _workers(client) else (idle or time.monotonic())
            if idle is not None and time.monotonic() - idle > worker_timeout:
                raise ScratchnetError(f"the Dask cluster has had no workers for "
                                      f"{worker_timeout:g} s; its last worker left")
            time.sleep(POLL)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise


def _run_dask(folder, todo, client, data_dir, done, worker_timeout) -> None:
    """The runs as tasks of ``client``'s cluster (remote workers cannot continue a local
    checkpoint: each run starts afresh)."""
    def submit() -> dict:
        return {client.submit(run_task_shipped, _payload(task), data_dir, pure=False,
                              key=f"scratchnet-{folder.path.name}-{task.key}-"
                                  f"{os.urandom(4).hex()}"): task for task, _ in todo}

    def finished(fut, task) -> None:
        try:
            result = folder.materialize(fut.result())
        except Exception as e:  # a worker died, or the cluster went away
            result = _failed(task, f"dask worker failed: {type(e).__name__}: {e}")
        done(task, result)

    run_on_dask(client, submit, finished, worker_timeout)
