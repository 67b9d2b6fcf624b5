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
the optional extra ``scratchnet[dask]``). Dask workers train into a temporary folder of
their own and send the run folder's files back, so they need no shared file system.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import itertools
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import runs
from .config import (ExperimentConfig, apply_override, differing_keys, flatten, safe_load,
                     validate)
from .errors import ConfigError, DataError, DivergenceError, ScratchnetError

STATE = "sweep.json"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUNS = "runs"
STATE_VERSION = 1

#: statuses a resumed sweep does not run again (they would end the same way)
FINAL = ("completed", "diverged", "invalid")

#: metric name -> (where it comes from in a run's summary, larger is better)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "accuracy": (("test", "accuracy"), True),
    "mae": (("test", "mae"), False),
    "rmse": (("test", "rmse"), False),
    "r2": (("test", "r2"), True),
    "test_loss": (("test", "loss"), False),
    "val_loss": (("best_val_loss",), False),
    "epochs": (("epochs_run",), False),
    "seconds": (("seconds",), False),
}
#: metrics that may pick the best grid point (epochs and seconds may not)
SELECTABLE = ("val_loss", "test_loss", "accuracy", "mae", "rmse", "r2")


# -- the grid -----------------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets, braces or quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _yaml_value(text: str) -> Any:
    text = text.strip()
    if not text:
        return ""
    try:
        return safe_load(text)
    except yaml.YAMLError:
        return text


def parse_grid_option(text: str) -> tuple[str, list]:
    """``"optimizer.lr=0.05,0.1,0.2"`` -> ``("optimizer.lr", [0.05, 0.1, 0.2])``.

    Each value is read as YAML (numbers, booleans, ``{name: leaky_relu, negative_slope:
    0.1}``); commas inside brackets or braces do not split. ``KEY=[a, b]`` (a YAML list)
    works too.
    """
    if "=" not in text:
        raise ConfigError(f"--grid expects KEY=VALUE1,VALUE2,..., got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        values = _yaml_value(raw)
        if not isinstance(values, list):
            raise ConfigError(f"--grid {key}: {raw!r} is not a YAML list")
    else:
        values = [_yaml_value(v) for v in _split_top_level(raw)]
    return key, values


def check_grid(grid: dict[str, list]) -> dict[str, list]:
    """Reject keys no run could use and empty or repeated value lists."""
    if not isinstance(grid, dict):
        raise ConfigError(f"sweep grid must be a mapping of dotted keys to value lists, got {grid!r}")
    for key, values in grid.items():
        parts = str(key).split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"sweep grid: bad key {key!r} (use dotted paths like optimizer.lr)")
        if parts[0] in ("name", "sweep"):
            raise ConfigError(f"sweep grid: {key!r} cannot be swept (the sweep sets run names "
                              "and reads the sweep section itself)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid: {key}: expected a non-empty list of values, got {values!r}")
        seen = []
        for v in values:
            if v in seen:
                raise ConfigError(f"sweep grid: {key}: value {v!r} is listed twice")
            seen.append(v)
    return grid


def merge_grids(*grids: dict[str, list] | None) -> dict[str, list]:
    """Later grids replace the values of keys that earlier ones have (the command line's
    ``--grid`` over the file's ``sweep.grid``)."""
    out: dict[str, list] = {}
    for g in grids:
        for k, v in (g or {}).items():
            out[k] = list(v)
    return out


def point_id(overrides: dict[str, Any]) -> str:
    """A short stable id for a grid point: a hash of its (key, value) pairs, whatever the
    order of the grid's keys."""
    text = json.dumps(sorted(overrides.items()), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def show_value(v: Any) -> str:
    """A grid value as a table cell: strings bare, mappings and lists as compact JSON."""
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str, separators=(",", ":")) if isinstance(v, (dict, list)) else str(v)


def short_keys(keys: Iterable[str]) -> dict[str, str]:
    """Dotted keys shortened by dropping leading parts while they stay unique:
    ``optimizer.lr`` -> ``lr``, ``model.layers.0.activation`` -> ``layers.0.activation``
    (never past a list index: ``activation`` alone would hide which layer)."""
    keys = list(keys)
    out = {}
    for k in keys:
        parts = k.split(".")
        short = k
        for n in range(1, len(parts)):
            if parts[n].isdigit() or parts[n - 1].isdigit():
                continue
            cand = ".".join(parts[n:])
            if all(other == k or not (other == cand or other.endswith("." + cand)) for other in keys):
                short = cand
        out[k] = short
    return out


@dataclass(frozen=True)
class Point:
    """One grid point: the overrides it applies to the base config."""

    id: str
    overrides: dict

    def label(self, names: dict[str, str] | None = None) -> str:
        if not self.overrides:
            return "(base config)"
        names = names or {}
        return ", ".join(f"{names.get(k, k)}={show_value(v)}" for k, v in self.overrides.items())


@dataclass(frozen=True)
class Task:
    """One run of a sweep: a grid point with one seed."""

    key: str
    point: str
    seed_index: int
    seed: int
    run_name: str
    config: dict | None
    error: str | None = None


def plan(base: dict, grid: dict[str, list], seeds: int) -> tuple[list[Point], list[Task]]:
    """The cross product of the grid (first key slowest), each point with ``seeds`` runs.

    ``base`` is a resolved config (``cfg.to_dict()``). A point whose overrides make an
    invalid config gets tasks with ``error`` set and ``config`` None: it is reported, never
    run.
    """
    check_grid(grid)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be a positive integer, got {seeds!r}")
    base = copy.deepcopy(base)
    base.pop("sweep", None)
    name = (base.get("name") or "run")[:60]
    keys = list(grid)
    points, tasks = [], []
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, values))
        pid = point_id(overrides)
        point = Point(pid, overrides)
        points.append(point)
        for k in range(seeds):
            raw = copy.deepcopy(base)
            run_name = f"{name}-{pid}-s{k}"
            error = None
            try:
                for key, value in overrides.items():
                    apply_override(raw, key.split("."), copy.deepcopy(value), source="--grid")
                raw["seed"] = int(base.get("seed", 0)) + k
                raw["name"] = run_name
                config = validate(raw, "sweep point").to_dict()
                config.pop("sweep", None)
            except ConfigError as e:
                config, error = None, str(e)
            tasks.append(Task(f"{pid}-s{k}", pid, k, int(base.get("seed", 0)) + k, run_name,
                              config, error))
    return points, tasks


# -- one run, in a worker ---------------------------------------------------------------
def _strip_summary(summary: dict | None) -> dict | None:
    if summary is None:
        return None
    return {k: v for k, v in summary.items() if k not in ("config",) and not k.startswith("_")}


def run_task(payload: dict, out: str, data_dir: str | None = None,
             resume_dir: str | None = None) -> dict:
    """Train one sweep run (in whatever process calls it) and describe how it ended.

    Never raises for a failed run: the result's ``status`` is "completed", "diverged",
    "invalid" (a config error), "failed" (anything else) or "interrupted". Warnings
    (NumPy overflow while diverging, say) are collected into ``warnings`` instead of being
    printed. Called with ``resume_dir``, it continues that run folder from its checkpoint
    (and starts afresh if the checkpoint cannot be used).
    """
    from .experiment import train_experiment

    key = payload["key"]
    result: dict = {"key": key, "status": "failed", "run_dir": None, "summary": None,
                    "error": None, "warnings": []}
    seen: dict = {}

    def on_start(trainer, run_dir):
        seen["run_dir"] = run_dir

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cfg = validate(payload["config"], f"sweep run {key}")
            try:
                res = train_experiment(cfg, out=out, data_dir=data_dir, resume=resume_dir,
                                       on_start=on_start)
            except (ConfigError, DataError):
                if resume_dir is None or "run_dir" in seen:
                    raise
                res = train_experiment(cfg, out=out, data_dir=data_dir, on_start=on_start)
            result.update(status=res.status, run_dir=str(res.run_dir),
                          summary=_strip_summary(res.summary))
        except DivergenceError as e:
            result.update(status="diverged", error=str(e))
            run_dir = seen.get("run_dir")
            if run_dir is not None:
                result["run_dir"] = str(run_dir)
                path = Path(run_dir) / runs.SUMMARY
                if path.exists():
                    result["summary"] = _strip_summary(runs.read_json(path))
        except ConfigError as e:
            result.update(status="invalid", error=str(e))
        except ScratchnetError as e:
            result.update(status="failed", error=str(e))
        except Exception as e:  # a bug or an environment problem: report it in the row
            result.update(status="failed", error=f"{type(e).__name__}: {e}")
        if result["run_dir"] is None and "run_dir" in seen:
            result["run_dir"] = str(seen["run_dir"])
    msgs = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in msgs:
            msgs.append(text)
    result["warnings"] = msgs[:5]
    return result


def run_task_shipped(payload: dict, data_dir: str | None = None) -> dict:
    """:func:`run_task` into a temporary folder; the run folder's files come back in the
    result (``files``: name -> bytes), so the worker needs no file system in common with
    the machine that started the sweep."""
    with tempfile.TemporaryDirectory(prefix="scratchnet-sweep-") as tmp:
        result = run_task(payload, tmp, data_dir)
        run_dir = result.get("run_dir")
        if run_dir and Path(run_dir).is_dir():
            result["files"] = {p.name: p.read_bytes() for p in sorted(Path(run_dir).iterdir())
                               if p.is_file() and not p.name.startswith(".")}
            result["run_dir"] = Path(run_dir).name
    return result


# -- the sweep folder -------------------------------------------------------------------
class SweepFolder:
    """A sweep folder and its ``sweep.json``: the plan and each finished run."""

    def __init__(self, path: Path, state: dict):
        self.path = Path(path)
        self.state = state
        base = validate(copy.deepcopy(state["base_config"]), f"{self.path / STATE}: base_config")
        self.base = base
        self.points, self.tasks = plan(base.to_dict(), state["grid"], state["seeds"])

    # -- creating and opening --
    @classmethod
    def create(cls, out: str | Path, cfg: ExperimentConfig, grid: dict[str, list] | None = None,
               seeds: int | None = None, data_dir: str | None = None) -> "SweepFolder":
        """A new sweep folder under ``out``. ``grid`` and ``seeds`` default to the config's
        ``sweep:`` section (the grid given here replaces values of the same keys)."""
        section = cfg.sweep
        grid = check_grid(merge_grids(section.grid if section else None, grid))
        seeds = seeds if seeds is not None else (section.seeds if section else 1)
        base = cfg.to_dict()
        base.pop("sweep", None)
        state = {"version": STATE_VERSION, "name": cfg.name, "base_config": base,
                 "grid": grid, "seeds": seeds, "data_dir": data_dir, "runs": {}}
        # Plan before creating anything: a bad grid or a grid with no valid point leaves
        # no folder behind.
        points, tasks = plan(base, grid, seeds)
        if tasks and all(t.error for t in tasks):
            raise ConfigError(f"no grid point makes a valid config; the first: {tasks[0].error}")
        path = runs.new_run_dir(out, cfg.name or "sweep")
        (path / RUNS).mkdir()
        folder = cls(path, state)
        folder.save()
        return folder

    @classmethod
    def open(cls, path: str | Path) -> "SweepFolder":
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"{path}: not a sweep folder (no such folder)")
        if not (path / STATE).is_file():
            raise ConfigError(f"{path}: not a sweep folder (no {STATE})")
        state = runs.read_json(path / STATE)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise DataError(f"{path / STATE}: not a scratchnet sweep state file "
                            f"(version {state.get('version') if isinstance(state, dict) else None!r}, "
                            f"expected {STATE_VERSION})")
        for key in ("base_config", "grid", "seeds", "runs"):
            if key not in state:
                raise DataError(f"{path / STATE}: missing {key!r}")
        (path / RUNS).mkdir(exist_ok=True)
        return cls(path, state)

    # -- state --
    def save(self) -> None:
        runs.write_json(self.path / STATE, self.state)

    @property
    def runs_dir(self) -> Path:
        return self.path / RUNS

    @property
    def data_dir(self) -> str | None:
        return self.state.get("data_dir")

    def result(self, key: str) -> dict | None:
        return self.state["runs"].get(key)

    def is_final(self, key: str) -> bool:
        r = self.result(key)
        return r is not None and r.get("status") in FINAL

    def record(self, task: Task, result: dict) -> dict:
        """Store one run's outcome (and rewrite ``sweep.json``)."""
        run_dir = result.get("run_dir")
        if run_dir:
            run_dir = os.path.relpath(Path(run_dir).resolve(), self.path.resolve())
        entry = {"point": task.point, "seed_index": task.seed_index, "seed": task.seed,
                 "status": result.get("status", "failed"), "run_dir": run_dir,
                 "error": result.get("error"), "warnings": result.get("warnings") or [],
                 "summary": result.get("summary")}
        self.state["runs"][task.key] = entry
        self.save()
        return entry

    def run_path(self, entry: dict | None) -> Path | None:
        if not entry or not entry.get("run_dir"):
            return None
        return self.path / entry["run_dir"]

    def run_folders(self) -> list[Path]:
        """The run folders of recorded runs, in plan order (a run stopped part-way is not
        one until a resumed sweep finishes it)."""
        out = []
        for task in self.tasks:
            p = self.run_path(self.result(task.key))
            if p is not None and (p / runs.CONFIG).is_file():
                out.append(p)
        return out

    def _leftovers(self, task: Task) -> list[Path]:
        """Run folders an earlier, stopped attempt at ``task`` left behind (newest first)."""
        if not self.runs_dir.is_dir():
            return []
        found = []
        for p in self.runs_dir.glob(f"{task.run_name}-*"):
            if not (p / runs.CONFIG).is_file():
                continue
            try:
                if runs.read_run_config(p).get("name") != task.run_name:
                    continue
            except ScratchnetError:
                continue
            found.append(p)
        return sorted(found, key=lambda p: p.name, reverse=True)

    def salvage(self, task: Task) -> tuple[dict | None, Path | None]:
        """What a stopped attempt left: ``(result, None)`` when it actually finished (its
        summary.json says completed or diverged), ``(None, folder)`` when it left a
        checkpoint to continue from, else ``(None, None)``."""
        resumable = None
        for p in self._leftovers(task):
            s = p / runs.SUMMARY
            if s.is_file():
                try:
                    summary = runs.read_json(s)
                except DataError:
                    summary = None
                if isinstance(summary, dict) and summary.get("status") in ("completed", "diverged"):
                    return ({"key": task.key, "status": summary["status"], "run_dir": str(p),
                             "summary": _strip_summary(summary), "error": summary.get("error"),
                             "warnings": []}, None)
            if resumable is None and (p / runs.CHECKPOINT).is_file():
                resumable = p
        return None, resumable

    def materialize(self, result: dict) -> dict:
        """Write the files a remote worker sent back into ``runs/`` (see
        :func:`run_task_shipped`)."""
        files = result.pop("files", None)
        if not files or not result.get("run_dir"):
            return result
        name = Path(result["run_dir"]).name
        dest = self.runs_dir / name
        i = 1
        while dest.exists():
            dest = self.runs_dir / f"{name}-{i}"
            i += 1
        dest.mkdir(parents=True)
        for fname, data in files.items():
            if "/" in fname or fname.startswith("."):
                continue
            runs.atomic_write_bytes(dest / fname, data)
        summary_path = dest / runs.SUMMARY
        if summary_path.is_file():
            summary = runs.read_json(summary_path)
            summary["run_dir"] = str(dest)
            runs.write_json(summary_path, summary)
        if result.get("summary"):
            result["summary"]["run_dir"] = str(dest)
        result["run_dir"] = str(dest)
        return result


# -- running ------------------------------------------------------------------------------
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
    """Counts :func:`run_sweep` returns: runs trained now, runs found finished, total."""

    total: int
    skipped: int = 0
    ran: int = 0
    failed: int = 0


def run_sweep(folder: SweepFolder, *, jobs: int | None = None, executor: str = "local",
              address: str | None = None, data_dir: str | None = None,
              on_result: Callable[[Task, dict], None] | None = None,
              start_method: str = "forkserver", client=None) -> SweepProgress:
    """Run every run of ``folder`` that has not finished yet.

    ``jobs`` worker processes (default: the number of cores; 1 runs in this process) or,
    with ``executor="dask"``, the workers of the Dask scheduler at ``address`` (or of
    ``client``, a connected ``distributed.Client``, which is left open). Each
    finished run is recorded in ``sweep.json`` at once and passed to ``on_result(task,
    entry)``. A run that fails is recorded with its error; it never stops the others.
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

    def done(task: Task, result: dict) -> None:
        entry = folder.record(task, result)
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
        return progress

    def counted(task, result):
        progress.ran += 1
        done(task, result)

    if executor == "dask":
        if client is not None:
            _run_dask(folder, todo, client, data_dir, counted)
        else:
            with dask_client(address) as own:
                _run_dask(folder, todo, own, data_dir, counted)
    else:
        jobs = min(jobs or os.cpu_count() or 1, len(todo))
        if jobs == 1:
            for task, resume_dir in todo:
                counted(task, run_task(_payload(task), str(folder.runs_dir), data_dir, resume_dir))
        else:
            _run_local(folder, todo, jobs, data_dir, counted, start_method)
    return progress


def _failed(task: Task, error: str) -> dict:
    return {"key": task.key, "status": "failed", "error": error}


def _run_local(folder, todo, jobs, data_dir, done, start_method) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # The fork server imports the library (and scikit-learn's loaders, 0.8 s) once;
        # each worker forks from it ready to go. A module that fails to import is skipped.
        ctx.set_forkserver_preload(["scratchnet.experiment", "scratchnet.sweep",
                                    "sklearn.datasets", "sklearn.model_selection"])
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with _blas_threads(threads):
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
        try:
            futures = {pool.submit(run_task, _payload(t), str(folder.runs_dir), data_dir, r): t
                       for t, r in todo}
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    result = fut.result()
                except Exception as e:  # the worker process died (killed, out of memory)
                    result = _failed(task, f"worker process failed: {type(e).__name__}: {e}")
                done(task, result)
        except BaseException:
            # Ctrl-C or an error here: stop the workers now rather than finishing the queue.
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


@contextmanager
def dask_client(address: str, timeout: str = "10s"):
    """A ``distributed.Client`` connected to the scheduler at ``address``, closed on exit."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("the dask executor needs dask.distributed: "
                          "pip install 'scratchnet[dask]'") from None
    if address.startswith("tcp://"):
        # A refused connection fails at once here; Dask's client would retry until timeout.
        import socket
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(address)
            host, port = parts.hostname, parts.port
        except ValueError as e:
            raise ConfigError(f"--address {address!r}: {e}") from None
        if not host or not port:
            raise ConfigError(f"--address {address!r}: expected tcp://HOST:PORT")
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as e:
            raise ScratchnetError(f"cannot reach the Dask scheduler at {address}: "
                                  f"{e.strerror or e}") from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:
        raise ScratchnetError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        yield client
    finally:
        client.close()


def _run_dask(folder, todo, client, data_dir, done) -> None:
    from distributed import as_completed as dask_completed

    futures = {}
    try:
        for task, _ in todo:  # remote workers cannot continue a local checkpoint
            fut = client.submit(run_task_shipped, _payload(task), data_dir, pure=False,
                                key=f"scratchnet-{folder.path.name}-{task.key}-{os.urandom(4).hex()}")
            futures[fut] = task
        for fut in dask_completed(list(futures)):
            task = futures[fut]
            try:
                result = folder.materialize(fut.result())
            except Exception as e:  # a worker died, or the cluster went away
                result = _failed(task, f"dask worker failed: {type(e).__name__}: {e}")
            done(task, result)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise


# -- results ------------------------------------------------------------------------------
def _dig(summary: dict | None, path: tuple[str, ...]):
    node: Any = summary
    for p in path:
        if not isinstance(node, dict):
            return None
        node = node.get(p)
    if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
        return None
    return float(node)


def _mean_std(values: list[float]) -> dict:
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "values": []}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n, "values": values}


@dataclass
class SweepTable:
    """One row per grid point. Each metric is ``{"mean", "std", "n", "values"}`` over the
    point's completed runs (``std`` is the sample standard deviation, None for one run).
    ``best`` is the id of the best point by ``best_by``."""

    path: Path
    keys: list[str]
    metrics: list[str]
    rows: list[dict]
    seeds: int
    best_by: str
    best: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"sweep": str(self.path), "grid_keys": self.keys, "seeds": self.seeds,
                "best_by": self.best_by, "best": self.best, "metrics": self.metrics,
                "points": self.rows}


def summarize(folder: SweepFolder, best_by: str | None = None) -> SweepTable:
    """Aggregate the recorded runs per grid point and pick the best point.

    ``best_by`` is one of :data:`SELECTABLE` (default: the validation loss, so that the
    choice does not peek at the test split). Points all of whose seeds completed are
    preferred to points where some failed.
    """
    if best_by is not None and best_by not in SELECTABLE:
        raise ConfigError(f"best_by must be one of {', '.join(SELECTABLE)}, got {best_by!r}")
    by_point: dict[str, list[Task]] = {}
    for t in folder.tasks:
        by_point.setdefault(t.point, []).append(t)
    rows, present = [], set()
    for point in folder.points:
        tasks = by_point[point.id]
        entries = [folder.result(t.key) for t in tasks]
        ok = [e for e in entries if e and e.get("status") == "completed"]
        values: dict[str, list[float]] = {m: [] for m in METRICS}
        for e in ok:
            for m, (path, _) in METRICS.items():
                v = _dig(e.get("summary"), path)
                if v is not None:
                    values[m].append(v)
        metrics = {m: _mean_std(v) for m, v in values.items() if v}
        present.update(metrics)
        statuses = [e.get("status") if e else "pending" for e in entries]
        if len(ok) == len(tasks):
            status = "ok"
        elif "pending" in statuses or "interrupted" in statuses:
            status = "pending" if not ok else "partial"
        elif ok:
            status = "partial"
        else:
            status = next(s for s in statuses if s != "completed")
        failures = [(t.seed, e["error"]) for t, e in zip(tasks, entries) if e and e.get("error")]
        if len({msg for _, msg in failures}) <= 1 and len(failures) == len(tasks):
            errors = [msg for _, msg in failures[:1]]  # every seed failed the same way
        else:
            errors = [f"seed {seed}: {msg}" for seed, msg in failures]
        rows.append({"point": point.id, "overrides": point.overrides, "status": status,
                     "runs_ok": len(ok), "runs": len(tasks), "metrics": metrics,
                     "error": errors[0] if errors else None, "errors": errors,
                     "run_dirs": [e.get("run_dir") for e in entries if e and e.get("run_dir")],
                     "best": False})
    metric_names = [m for m in METRICS if m in present]
    if best_by is None:
        best_by = next((m for m in ("val_loss", "test_loss") if m in present), "val_loss")
    larger = METRICS[best_by][1]
    best = None
    for pool in ([r for r in rows if r["status"] == "ok"], [r for r in rows if r["runs_ok"]]):
        candidates = [r for r in pool if best_by in r["metrics"]]
        if candidates:
            pick = (max if larger else min)(candidates, key=lambda r: r["metrics"][best_by]["mean"])
            pick["best"] = True
            best = pick["point"]
            break
    keys = list(folder.state["grid"])
    return SweepTable(folder.path, keys, metric_names, rows, folder.state["seeds"], best_by, best,
                      short_keys(keys))


def results_csv(table: SweepTable) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", *table.keys, "status", "runs_ok", "runs",
                *[f"{m}_{s}" for m in table.metrics for s in ("mean", "std")], "best", "error"])
    for r in table.rows:
        cells = []
        for m in table.metrics:
            stat = r["metrics"].get(m)
            cells += [("" if stat is None or stat[s] is None else repr(stat[s])) for s in ("mean", "std")]
        w.writerow([r["point"], *[show_value(r["overrides"][k]) for k in table.keys], r["status"],
                    r["runs_ok"], r["runs"], *cells, int(r["best"]), r["error"] or ""])
    return buf.getvalue()


def write_results(folder: SweepFolder, table: SweepTable) -> tuple[Path, Path]:
    """``results.csv`` and ``results.json`` in the sweep folder (atomically)."""
    csv_path, json_path = folder.path / RESULTS_CSV, folder.path / RESULTS_JSON
    runs.atomic_write_text(csv_path, results_csv(table))
    runs.write_json(json_path, table.to_dict())
    return csv_path, json_path


def sweep(cfg: ExperimentConfig, grid: dict[str, list] | None = None, seeds: int | None = None, *,
          out: str | Path = "sweeps", jobs: int | None = None, executor: str = "local",
          address: str | None = None, data_dir: str | None = None, best_by: str | None = None,
          on_result: Callable[[Task, dict], None] | None = None) -> SweepTable:
    """Create a sweep folder, run it, write its results; returns the table."""
    folder = SweepFolder.create(out, cfg, grid, seeds, data_dir)
    run_sweep(folder, jobs=jobs, executor=executor, address=address, on_result=on_result)
    table = summarize(folder, best_by)
    write_results(folder, table)
    return table


# -- comparing run folders --------------------------------------------------------------
def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders from run folders and sweep folders (a sweep gives all its runs)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p / STATE).is_file():
            out += SweepFolder.open(p).run_folders()
        elif (p / runs.CONFIG).is_file():
            out.append(p)
        elif p.is_dir():
            raise ConfigError(f"{p}: neither a run folder (no {runs.CONFIG}) nor a sweep folder (no {STATE})")
        else:
            raise ConfigError(f"{p}: no such folder")
    if not out:
        raise ConfigError("no run folders to compare (a sweep with no finished runs?)")
    return out


def read_run(run_dir: str | Path) -> dict:
    """A run folder as plain data: ``{"run_dir", "name", "config", "summary", "status",
    "metrics", "history"}`` (``summary`` is None while the run has none yet)."""
    run_dir = Path(run_dir)
    config = runs.read_run_config(run_dir)
    summary = runs.read_json(run_dir / runs.SUMMARY) if (run_dir / runs.SUMMARY).is_file() else None
    history = runs.read_metrics(run_dir)
    metrics = {m: _dig(summary, path) for m, (path, _) in METRICS.items()}
    metrics["best_epoch"] = _dig(summary, ("best_epoch",))
    return {"run_dir": str(run_dir), "name": config.get("name") or run_dir.name, "config": config,
            "summary": summary, "status": (summary or {}).get("status", "incomplete"),
            "metrics": {k: v for k, v in metrics.items() if v is not None}, "history": history}


def run_labels(records: list[dict]) -> list[str]:
    """A label per run from the config keys that differ between them (the folder name when
    nothing does)."""
    keys = differing_keys([r["config"] for r in records])
    if not keys:
        return [Path(r["run_dir"]).name for r in records]
    names = short_keys(keys)
    labels = []
    for r in records:
        flat = flatten(r["config"])
        labels.append(", ".join(f"{names[k]}={show_value(flat.get(k, '-'))}" for k in keys))
    return labels
