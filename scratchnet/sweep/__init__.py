"""Sweeps: one experiment over a grid of config values, each grid point with several seeds.

A sweep folder ``sweeps/<name>-<timestamp>/`` holds:

- ``sweep.json``: the plan (the base config, the grid, the number of seeds) and, as runs
  finish, each run's status and summary. It is rewritten atomically after every run, so a
  sweep stopped at any moment can be resumed: finished runs are not run again;
- ``runs/``: one ordinary run folder per (grid point, seed), named
  ``<name>-<point id>-s<k>-<timestamp>``;
- ``results.csv`` and ``results.json``: one row per grid point, each metric as mean and
  standard deviation over the seeds.

From Python::

    from scratchnet.config import load_config
    from scratchnet.sweep import sweep

    if __name__ == "__main__":  # worker processes import this script again
        table = sweep(load_config("configs/digits_quickstart.yaml"),
                      grid={"optimizer.lr": [0.05, 0.1, 0.2]}, seeds=3, jobs=2)
        print(table.best, table.rows[0]["metrics"]["accuracy"])

Seed ``k`` of a point (k = 0, 1, ...) runs with ``seed = cfg.seed + k``. A point's id is a
hash of its overrides, so it does not depend on the order of the grid's keys.

Runs go to worker processes (``executor="local"``, a ``ProcessPoolExecutor``), or to an
existing Dask distributed cluster (``executor="dask"``, ``address="tcp://host:port"``;
the optional extra ``scratchnet-dlfs[dask]``). Dask workers train into a temporary folder of
their own and send the run folder's files back, so they need no shared file system.

The modules: ``grid`` (the plan), ``worker`` (one run), ``folder`` (``sweep.json`` and
the run folders), ``executors`` (processes, Dask) and ``results`` (the table).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import ExperimentConfig
from .executors import WORKER_TIMEOUT, SweepProgress, dask_client, run_sweep
from .folder import FINAL, RESULTS_CSV, RESULTS_JSON, RUNS, STATE, SweepFolder
from .grid import (MAX_RUNS, Point, Task, check_grid, merge_grids,
                   parse_grid_option, plan, point_id)
from .results import SELECTABLE, SweepTable, results_csv, summarize, write_results
from .worker import run_task, run_task_shipped

__all__ = ["FINAL", "MAX_RUNS", "RESULTS_CSV", "RESULTS_JSON", "RUNS", "SELECTABLE", "STATE",
           "WORKER_TIMEOUT", "Point", "SweepFolder", "SweepProgress", "SweepTable", "Task",
           "check_grid", "dask_client", "merge_grids", "parse_grid_option", "plan", "point_id",
           "results_csv", "run_sweep", "run_task", "run_task_shipped", "summarize", "sweep",
           "write_results"]


def sweep(cfg: ExperimentConfig, grid: dict[str, list] | None = None, seeds: int | None = None, *,
          out: str | Path = "sweeps", jobs: int | None = None, executor: str = "local",
          address: str | None = None, data_dir: str | None = None, best_by: str | None = None,
          on_result: Callable[[Task, dict], None] | None = None,
          max_runs: int = MAX_RUNS) -> SweepTable:
    """Create a sweep folder, run it, write its results; returns the table. A plan of more
    than ``max_runs`` runs (grid points x seeds) is refused before anything is made."""
    folder = SweepFolder.create(out, cfg, grid, seeds, data_dir, max_runs)
    run_sweep(folder, jobs=jobs, executor=executor, address=address, on_result=on_result)
    table = summarize(folder, best_by)
    write_results(folder, table)
    return table

