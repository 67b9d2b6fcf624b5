"""A sweep folder on disk: ``sweep.json`` (the plan and each finished run), ``runs/``
(one run folder per task) and the results files."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import runs
from ..constants import SWEEP_STATE
from ..config import ExperimentConfig, validate
from ..config.messages import Origin, format_validation_errors
from ..errors import ConfigError, DataError, ScratchnetError
from ..tracking import tracked_settings
from .grid import MAX_RUNS, Task, check_grid, check_size, merge_grids, plan
from .worker import strip_summary

STATE = SWEEP_STATE
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUNS = "runs"
STATE_VERSION = 1

#: statuses a resumed sweep does not run again (they would end the same way)
FINAL = ("completed", "diverged", "invalid")


class RunEntry(BaseModel):
    """How one run of a plan ended, as ``sweep.json`` records it."""

    model_config = ConfigDict(strict=True, extra="allow")
    status: str
    run_dir: str | None = None
    error: str | None = None
    summary: dict | None = None


class SweepState(BaseModel):
    """``sweep.json``: the plan and each finished run (checked when a folder is opened)."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: str | None = None
    base_config: dict
    grid: dict[str, list]
    seeds: int = Field(gt=0)
    data_dir: str | None = None
    runs: dict[str, RunEntry]


class PlanFolder:
    """A folder of many runs planned together (a sweep's, a tune's): its state file, a
    JSON mapping rewritten atomically, and ``runs/`` with one run folder per run.
    ``SCHEMA`` is the pydantic model the state file must satisfy."""

    KIND = "plan"
    STATE = "plan.json"
    SCHEMA: type[BaseModel] = BaseModel

    def __init__(self, path: Path, state: dict):
        self.path = Path(path)
        self.state = state

    @classmethod
    def open(cls, path: str | Path):
        return cls(path, cls.read_state(path))

    @classmethod
    def read_state(cls, path: str | Path) -> dict:
        """The checked state of the folder ``path`` (``runs/`` made again if missing)."""
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"{path}: not a {cls.KIND} folder (no such folder)")
        if not os.path.lexists(path / cls.STATE):
            raise ConfigError(f"{path}: not a {cls.KIND} folder (no {cls.STATE})")
        state = runs.read_json(path / cls.STATE)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise DataError(f"{path / cls.STATE}: not a scratchnet {cls.KIND} state file "
                            f"(version "
                            f"{state.get('version') if isinstance(state, dict) else None!r}, "
                            f"expected {STATE_VERSION})")
        try:
            cls.SCHEMA.model_validate(state)
        except ValidationError as err:
            where = Origin(str(path / cls.STATE))
            raise DataError(format_validation_errors(err, where, cls.SCHEMA)[0]) from None
        (path / RUNS).mkdir(exist_ok=True)
        return state

    def save(self) -> None:
        runs.write_json(self.path / self.STATE, self.state)

    @property
    def runs_dir(self) -> Path:
        return self.path / RUNS

    def materialize(self, result: dict) -> dict:
        """Write the files a remote worker sent back into ``runs/`` (see
        :func:`~scratchnet.sweep.worker.folder_files`)."""
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


class SweepFolder(PlanFolder):
    """A sweep folder and its ``sweep.json``: the plan and each finished run."""

    KIND = "sweep"
    STATE = STATE
    SCHEMA = SweepState

    def __init__(self, path: Path, state: dict, max_runs: int = MAX_RUNS):
        super().__init__(path, state)
        base = validate(copy.deepcopy(state["base_config"]), f"{self.path / STATE}: base_config")
        self.base = base
        try:
            self.points, self.tasks = plan(base.to_dict(), state["grid"], state["seeds"], max_runs)
        except ConfigError as e:
            raise ConfigError(f"{self.path / STATE}: {e}") from None

    # -- creating and opening --
    @classmethod
    def open(cls, path: str | Path, max_runs: int = MAX_RUNS) -> "SweepFolder":
        """The sweep folder ``path``; a plan of more than ``max_runs`` runs is refused."""
        return cls(path, cls.read_state(path), max_runs)

    @classmethod
    def create(cls, out: str | Path, cfg: ExperimentConfig, grid: dict[str, list] | None = None,
               seeds: int | None = None, data_dir: str | None = None,
               max_runs: int = MAX_RUNS) -> "SweepFolder":
        """A new sweep folder under ``out``. ``grid`` and ``seeds`` default to the config's
        ``sweep:`` section (the grid given here replaces values of the same keys); a plan
        of more than ``max_runs`` runs is refused before anything is expanded."""
        section = cfg.sweep
        grid = merge_grids(section.grid if section else None, grid)
        seeds = seeds if seeds is not None else (section.seeds if section else 1)
        check_size(grid, seeds, max_runs)
        check_grid(grid)
        base = cfg.to_dict()
        base.pop("sweep", None)
        state = {"version": STATE_VERSION, "name": cfg.name, "base_config": base,
                 "grid": grid, "seeds": seeds, "data_dir": data_dir, "runs": {},
                 "tracking": tracked_settings(base)}
        # Plan before creating anything: a bad grid or a grid with no valid point leaves
        # no folder behind.
        points, tasks = plan(base, grid, seeds, max_runs)
        if tasks and all(t.error for t in tasks):
            raise ConfigError(f"no grid point makes a valid config; the first: {tasks[0].error}")
        path = runs.new_run_dir(out, cfg.name or "sweep")
        (path / RUNS).mkdir()
        folder = cls(path, state, max_runs)
        folder.save()
        return folder

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
                             "summary": strip_summary(summary), "error": summary.get("error"),
                             "warnings": []}, None)
            if resumable is None and (p / runs.CHECKPOINT).is_file():
                resumable = p
        return None, resumable

