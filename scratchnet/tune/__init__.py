"""Hyperparameter search with Optuna (the optional extra ``scratchnet-dlfs[tune]``).

A tune folder ``tunes/<name>-<timestamp>/`` holds:

- ``tune.json``: the plan (the base config, the search space, the number of trials, the
  metric and its direction, the pruner and sampler, the storage);
- ``study.db``: the optuna study (SQLite; ``storage`` may name another database), so a
  stopped search resumes where it stopped and several processes share one study;
- ``runs/``: one ordinary run folder per trial, ``<name>-t<trial>-<timestamp>``; a pruned
  trial's ``summary.json`` says ``"status": "pruned"``;
- ``results.json`` (the trials, best first, and the parameter importances) and
  ``best.yaml``, the best trial's config, which ``scratchnet train best.yaml`` runs.

From Python::

    from scratchnet.config import load_config
    from scratchnet.tune import tune

    if __name__ == "__main__":  # worker processes (jobs > 1) import this script again
        table = tune(load_config("configs/digits_quickstart.yaml"),
                     {"optimizer.lr": "loguniform:1e-3:1", "model.layers.0.neurons": "int:16:128"},
                     trials=20, seed=0)
        print(table.best["params"], table.best_config)

Every evaluation reports the metric (``val_loss`` by default) to its trial, and the pruner
(median by default) may stop the trial there; the objective is the best value of the
metric over the trial's evaluations. The modules: ``space`` (distributions and their
checks), ``folder`` (``tune.json``), ``study`` (optuna, trials, worker processes) and
``results`` (the table, importances, ``best.yaml``). ``optuna`` is imported only when a
study is opened.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ..config import ExperimentConfig
from ..sweep.grid import MAX_RUNS
from .folder import BEST, RESULTS, RUNS, STATE, STUDY_DB, TuneFolder
from .results import TuneTable, summarize, trial_row
from .space import FORMS, Dimension, candidate, check_space, parse_space, parse_space_option
from .study import OUTCOMES, create_study, finished, import_optuna, load_study, run_study


def create(out: str | Path, cfg: ExperimentConfig, space: dict | None = None, *,
           origins: dict[str, str] | None = None, data_dir: str | None = None,
           source: str | None = None, max_runs: int = MAX_RUNS, **settings) -> TuneFolder:
    """A new tune folder and its study. A bad space, more than ``max_runs`` trials, or a
    storage that cannot hold the study, leaves no folder behind."""
    import_optuna()
    folder = TuneFolder.create(out, cfg, space, origins, data_dir, source, max_runs, **settings)
    try:
        create_study(folder)
    except BaseException:
        shutil.rmtree(folder.path, ignore_errors=True)
        raise
    return folder


def tune(cfg: ExperimentConfig, space: dict | None = None, *, out: str | Path = "tunes",
         jobs: int = 1, data_dir: str | None = None, on_trial: Callable | None = None,
         **settings) -> TuneTable:
    """Create a tune folder, run its study, write its results; returns the table.
    ``settings``: trials, metric, direction, pruner, startup_trials, sampler, seed,
    storage (each defaults to the config's ``tune:`` section)."""
    folder = create(out, cfg, space, data_dir=data_dir, **settings)
    study = run_study(folder, jobs=jobs, data_dir=data_dir, on_trial=on_trial)
    return summarize(folder, study)


__all__ = ["BEST", "FORMS", "OUTCOMES", "RESULTS", "RUNS", "STATE", "STUDY_DB", "Dimension",
           "TuneFolder", "TuneTable", "candidate", "check_space", "create", "create_study",
           "finished", "import_optuna",
           "load_study", "parse_space", "parse_space_option", "run_study", "summarize", "trial_row",
           "tune"]
