"""Running a tune folder's study with optuna: each trial one training run, every
evaluation reported so the pruner can stop it, in this process or in worker processes
that share the study's storage."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import numpy as np

from .. import files, runs
from ..errors import ConfigError, DivergenceError, ScratchnetError
from ..extras import require
from ..nn import Callback
from ..constants import WORKER_TIMEOUT
from ..sweep.grid import MAX_RUNS
from ..tracking import PlanTracking
from .folder import TuneFolder, check_trials

#: how the objective ends each trial it finishes (a trial without one was interrupted)
OUTCOMES = ("completed", "pruned", "diverged", "invalid")


def import_optuna():
    """optuna, or a one-line error naming the install command."""
    optuna = require("tune")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial gets a line of ours
    return optuna


class Pruning(Callback):
    """Reports every evaluation's metric to the optuna ``trial`` and asks the pruner;
    when it says stop, training stops at the end of that epoch (the run folder is kept,
    then marked "pruned")."""

    def __init__(self, trial, metric: str, larger: bool):
        self.trial, self.metric, self.larger = trial, metric, larger
        self.best: float | None = None
        self.pruned_at: int | None = None
        self.error: ConfigError | None = None

    def on_evaluate(self, trainer, record):
        value = record.get(self.metric)
        if value is None:
            measured = [k for k in record if k not in ("epoch", "lr", "seconds", "train_loss")]
            self.error = ConfigError(f"metric {self.metric!r} is not measured by this run; "
                                     f"expected one of: {', '.join(measured)}")
            trainer.stop_requested = True
            return
        if self.best is None or (value > self.best if self.larger else value < self.best):
            self.best = value
        self.trial.report(value, record["epoch"])
        if self.trial.should_prune():
            self.pruned_at = record["epoch"]
            trainer.stop_requested = True


def objective(folder: TuneFolder, data_dir: str | None = None) -> Callable:
    """The function optuna calls per trial: train the trial's config into ``runs/``."""
    from ..experiment import train_experiment

    data_dir = data_dir if data_dir is not None else folder.state.get("data_dir")

    def run(trial) -> float:
        values = {dim.key: dim.suggest(trial) for dim in folder.space}
        trial.set_user_attr("pid", os.getpid())
        try:
            cfg = folder.trial_config(trial.number, values)
        except ConfigError as e:  # a combination of values the schema refuses
            raise _end(trial, "invalid", error=str(e)) from None
        pruning = Pruning(trial, folder.state["metric"], folder.larger_is_better)
        seen = {}
        try:
            # divergence is reported as the trial's outcome, not as NumPy's warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                result = train_experiment(cfg, out=folder.runs_dir, data_dir=data_dir,
                                          callbacks=[pruning],
                                          on_start=lambda t, d: seen.update(d=d))
        except DivergenceError as e:
            raise _end(trial, "diverged", seen.get("d"), folder, error=str(e)) from None
        except ConfigError as e:  # refused when the experiment is built (final_lr > lr, ...)
            if "d" in seen:
                raise
            raise _end(trial, "invalid", error=str(e)) from None
        if pruning.error is not None:
            raise pruning.error
        epochs = result.summary.get("epochs_run")
        if result.status == "interrupted" and pruning.pruned_at is not None:
            summary = {**result.summary, "status": "pruned", "pruned_at": pruning.pruned_at}
            runs.write_json(result.run_dir / runs.SUMMARY, summary)
            raise _end(trial, "pruned", result.run_dir, folder, epochs=epochs)
        if result.status != "completed":
            raise KeyboardInterrupt  # stopped from outside: the trial is not finished
        _end(trial, "completed", result.run_dir, folder, epochs=epochs)
        return pruning.best
    return run


def _end(trial, status: str, run_dir: Path | None = None, folder: TuneFolder | None = None,
          **attrs):
    """Record how a trial ended in its user attributes. Returns what to raise for an
    unfinished one: a pruned, diverged or invalid trial is optuna's PRUNED, so the
    sampler learns that region is poor (a failed trial it would simply forget)."""
    trial.set_user_attr("status", status)
    if run_dir is not None:
        trial.set_user_attr("run_dir",
                            os.path.relpath(Path(run_dir).resolve(), folder.path.resolve()))
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    return import_optuna().TrialPruned(status)


def finished(study) -> list:
    """The trials the objective finished (completed, pruned, diverged or invalid): the
    ones that count towards ``trials``. A trial that was interrupted does not."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and t.user_attrs.get("status") in OUTCOMES]


def _storage(url: str):
    optuna = import_optuna()
    database = url.removeprefix("sqlite:///")
    if database != url and os.path.lexists(database):  # a FIFO there would hang SQLite
        files.open_regular(database, files.MAX_STUDY_BYTES, "an optuna study database").close()
    try:
        if url.startswith("sqlite:"):  # several processes: wait for the lock, not fail
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # a bad URL, a server that is down, a driver not installed
        raise ScratchnetError(f"cannot open the study storage {url}: {type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]}") from None


def create_study(folder: TuneFolder) -> None:
    """The study of a new tune folder, in its storage."""
    optuna = import_optuna()
    storage = _storage(folder.storage_url)
    try:
        optuna.create_study(study_name=folder.state["study"], storage=storage,
                            direction=folder.state["direction"])
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(f"--storage {folder.storage_url}: already holds a study named "
                          f"{folder.state['study']!r}") from None


def load_study(folder: TuneFolder, worker: int = 0, storage=None):
    """The folder's study, with its sampler (seeded per worker and per resumed session,
    so no two processes draw the same trials) and pruner. ``storage``: an optuna storage
    already open (default: the folder's)."""
    optuna = import_optuna()
    s = folder.state
    storage = storage if storage is not None else _storage(folder.storage_url)
    try:
        done = len(optuna.load_study(study_name=s["study"], storage=storage).trials)
    except KeyError:
        raise ScratchnetError(f"{folder.path}: the storage {folder.storage_url} holds no study "
                              f"named {s['study']!r}") from None
    seed = None if s["seed"] is None else int(np.random.SeedSequence([s["seed"], done, worker])
                                              .generate_state(1)[0])
    sampler = (optuna.samplers.RandomSampler(seed=seed) if s["sampler"] == "random"
               else optuna.samplers.TPESampler(seed=seed))
    epochs = folder.base["train"]["epochs"]
    pruner = {"none": optuna.pruners.NopPruner(),
              # judged only at an epoch that several trials reached (with early stopping,
              # few may: the median of one or two excellent trials would prune nearly all)
              "median": optuna.pruners.MedianPruner(n_startup_trials=s["startup_trials"],
                                                    n_min_trials=max(1, s["startup_trials"])),
              "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs),
              }[s["pruner"]]
    return optuna.load_study(study_name=s["study"], storage=storage, sampler=sampler, pruner=pruner)


def _work(path: str, n_trials: int, worker: int, data_dir: str | None) -> None:
    """A worker process: ``n_trials`` trials of the study in the tune folder ``path``."""
    folder = TuneFolder.open(path)
    load_study(folder, worker).optimize(objective(folder, data_dir), n_trials=n_trials)


def run_study(folder: TuneFolder, *, trials: int | None = None, jobs: int = 1,
              data_dir: str | None = None, on_trial: Callable | None = None,
              max_runs: int = MAX_RUNS, client=None, worker_timeout: float = WORKER_TIMEOUT):
    """Run trials until the study has ``trials`` finished ones (default: the plan's; at
    most ``max_runs``), in this process (``jobs=1``), in ``jobs`` worker processes
    sharing the storage, or on the workers of ``client``'s Dask cluster (a connected
    ``distributed.Client``; :mod:`~scratchnet.tune.cluster`). ``on_trial(frozen_trial)``
    hears of each trial as it finishes; a tracked tune logs each trial's run folder to
    MLflow under one parent run. Returns the study."""
    if trials is not None:
        check_trials(trials, max_runs)
        folder.state["trials"] = trials
        folder.save()
    storage = _storage(folder.storage_url)
    study = load_study(folder, storage=storage)
    optuna = import_optuna()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by a killed tune
    todo = folder.state["trials"] - len(finished(study))
    if todo <= 0:
        return study
    s = folder.state
    tracking = PlanTracking.open(folder, {**{f"space.{k}": v for k, v in s["space"].items()},
                                          "trials": s["trials"], "metric": s["metric"],
                                          "direction": s["direction"]})

    def report(trial) -> None:
        if trial.user_attrs.get("run_dir"):
            tracking.record(folder.path / trial.user_attrs["run_dir"])
        if on_trial is not None:
            on_trial(trial)

    try:
        if client is not None:
            from .cluster import run_on_cluster
            run_on_cluster(folder, study, storage, todo, client, data_dir, report,
                           worker_timeout)
        else:
            _run_trials(folder, study, todo, min(jobs, todo), data_dir, report)
    except BaseException as e:
        tracking.close("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    tracking.close()
    return study


def _run_trials(folder, study, todo, jobs, data_dir, report) -> None:
    if jobs == 1:
        study.optimize(objective(folder, data_dir), n_trials=todo,
                       callbacks=[lambda s, t: report(t)])
        return
    from ..sweep.executors import worker_pool

    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    shares = [todo // jobs + (i < todo % jobs) for i in range(jobs)]
    with worker_pool(jobs, preload=("optuna", "scratchnet.tune.study")) as pool:
        pending = {pool.submit(_work, str(folder.path), n, i, data_dir)
                   for i, n in enumerate(shares)}
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for t in study.get_trials(deepcopy=False):
                if t.state.is_finished() and t.number not in seen:
                    seen.add(t.number)
                    report(t)
            for fut in done:
                fut.result()  # a worker's error (bad data, ...) ends the tune
