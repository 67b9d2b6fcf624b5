"""A tune's trials on a Dask cluster (``scratchnet tune ... --executor dask --address``).

The study stays where it is (the tune folder's ``study.db``, or ``--storage``), and this
process serves it to the cluster's workers through Optuna's gRPC storage proxy
(``GrpcStorageProxy``; the server listens on this machine's address on the way to the
scheduler, on a free port). A worker needs no shared file system and no database driver:
each Dask task asks the study for one trial, trains it in a temporary folder (every
evaluation reported, so the pruner works as it does locally) and sends the run folder's
files back, which land in the tune folder's ``runs/`` as in a local tune.

A trial is told how it ended by this process, once its run folder's files are home; a
worker that dies first loses that trial only: its trial, found by the worker address it
records, is told FAIL (``status: failed`` with the reason) and does not count; Dask runs
the task again elsewhere, as a new trial. No workers, a scheduler that is down or a peer
that is not Dask get the sweep's bounded waits and messages
(:func:`~scratchnet.sweep.executors.dask_client`, :func:`~scratchnet.sweep.executors.run_on_dask`).
"""

from __future__ import annotations

import os
import socket
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ..errors import ScratchnetError
from ..extras import require
from ..sweep.executors import CONNECT_TIMEOUT, local_address, run_on_dask
from ..sweep.worker import folder_files
from .folder import TuneFolder
from .study import import_optuna, load_study, objective

#: the user attribute that names the Dask worker running a trial
WORKER = "dask_worker"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def require_grpc() -> None:
    """grpcio, which the storage proxy needs, or the one line naming the install command."""
    require("tune_cluster")


@contextmanager
def serve_study(storage, host: str):
    """Optuna's gRPC storage proxy for ``storage`` on ``host`` (a free port), while the
    block runs; yields the port."""
    require_grpc()
    from optuna.storages._grpc.server import make_server  # run_grpc_proxy_server never returns

    port = _free_port(host)
    # One thread: the workers' calls one at a time. On SQLite (no row locks) two workers
    # asking at once could both take the same enqueued trial.
    server = make_server(storage, host, port, ThreadPoolExecutor(max_workers=1))
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def trial_on_worker(state: dict, host: str, port: int, data_dir: str | None, seed_offset: int
                    ) -> dict:
    """A Dask task: one trial of the study served at ``host:port``, trained in a temporary
    tune folder made from ``state`` (``tune.json``), its evaluations reported as it goes.
    The trial is left running: the tune process tells how it ended once the run folder's
    files are safely home (a worker that dies before that loses the trial, not its
    folder). Returns ``{"trial", "state", "value"}`` and, when the trial made a run
    folder, ``run_dir`` (its name) and ``files``."""
    from distributed import get_worker

    optuna = import_optuna()
    with tempfile.TemporaryDirectory(prefix="scratchnet-tune-") as tmp:
        folder = TuneFolder(Path(tmp), state)
        folder.runs_dir.mkdir()
        with warnings.catch_warnings():  # "experimental": the worker's log needs no such line
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.GrpcStorageProxy(host=host, port=port)
        try:
            storage.wait_server_ready(timeout=CONNECT_TIMEOUT)
            study = load_study(folder, seed_offset, storage)
            trial = study.ask()
            trial.set_user_attr(WORKER, get_worker().address)
            result = {"trial": trial.number, "state": "COMPLETE", "value": None}
            try:
                result["value"] = objective(folder, data_dir)(trial)
            except optuna.TrialPruned:  # pruned, diverged or invalid (see study._end)
                result["state"] = "PRUNED"
            except BaseException:  # bad data, a metric not measured: the tune ends
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            run_dir = study.trials[trial.number].user_attrs.get("run_dir")
        finally:
            storage.close()
        if run_dir and (folder.path / run_dir).is_dir():
            result.update(run_dir=Path(run_dir).name, files=folder_files(folder.path / run_dir))
    return result


def _fail_lost_trials(study, workers: set[str], report: Callable) -> None:
    """Tell FAIL every running trial whose worker has left the cluster."""
    optuna = import_optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in running:
        worker = t.user_attrs.get(WORKER)
        if worker is None or worker in workers:
            continue
        trial = optuna.trial.Trial(study, t._trial_id)  # (the attributes of a running trial)
        try:
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("error", f"the Dask worker {worker} left during the trial")
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError):  # it finished meanwhile after all
            continue
        report(study.trials[t.number])


def run_on_cluster(folder: TuneFolder, study, storage, todo: int, client, data_dir,
                   report: Callable, worker_timeout: float) -> None:
    """``todo`` trials of ``study`` (whose storage is ``storage``) on ``client``'s cluster;
    ``report(frozen_trial)`` hears of each as its run folder is in ``runs/`` (and of each
    trial lost with its worker)."""
    from distributed import KilledWorker

    optuna = import_optuna()
    host = local_address(client.scheduler.address)
    first = len(study.trials) + 1  # samplers seeded apart from every earlier session's

    def submit() -> dict:
        return {client.submit(trial_on_worker, folder.state, host, port, data_dir, first + i,
                              pure=False, key=f"scratchnet-{folder.path.name}-trial-"
                                              f"{os.urandom(4).hex()}"): i for i in range(todo)}

    def done(fut, _) -> None:
        try:
            result = fut.result()
        except KilledWorker:  # it killed every worker it ran on: the trials are failed
            return
        except ScratchnetError:  # bad data, a metric the runs do not measure: ends the tune
            raise
        except Exception as e:  # what a remote worker sent back (its traceback stays there)
            raise ScratchnetError(f"a trial failed on the Dask cluster: {type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:200]}") from None
        folder.materialize(result)
        number, running = result["trial"], optuna.trial.TrialState.RUNNING
        if study.get_trials(deepcopy=False)[number].state != running:
            return  # failed already: its worker was thought lost
        try:
            study.tell(number, result["value"],
                       state=getattr(optuna.trial.TrialState, result["state"]))
        except ValueError:  # a value optuna refuses (None, NaN): failed, as optimize does
            study.tell(number, state=optuna.trial.TrialState.FAIL)
        report(study.trials[number])

    def lost() -> None:
        _fail_lost_trials(study, set(client.nthreads()), report)

    with serve_study(storage, host) as port:
        run_on_dask(client, submit, done, worker_timeout, on_poll=lost)
