"""The plan of a sweep: ``--grid KEY=V1,V2`` values, their cross product, and one task
per grid point and seed (each a validated config, or the error that makes it invalid)."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import yaml

from ..constants import MAX_RUNS
from ..config import apply_override, safe_load, validate
from ..config.diff import show_value
from ..errors import ConfigError


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




def check_size(grid: dict[str, list], seeds: int, max_runs: int = MAX_RUNS) -> int:
    """The number of runs of ``grid`` x ``seeds``, counted before anything is expanded:
    a ConfigError when it is more than ``max_runs``."""
    if not isinstance(grid, dict) or any(not isinstance(v, list) for v in grid.values()) \
            or isinstance(seeds, bool) or not isinstance(seeds, int):
        return 0  # check_grid and plan say what is wrong with them
    points = math.prod(len(v) for v in grid.values())
    total = points * seeds
    if total > max_runs:
        raise ConfigError(f"the sweep has {points:,} grid point{'s' if points != 1 else ''} x "
                          f"{seeds:,} seed{'s' if seeds != 1 else ''} = {total:,} runs, more "
                          f"than the {max_runs:,} allowed; pass --max-runs {total} to run "
                          "them all")
    return total


def check_grid(grid: dict[str, list]) -> dict[str, list]:
    """Reject keys no run could use and empty or repeated value lists."""
    if not isinstance(grid, dict):
        raise ConfigError("sweep grid must be a mapping of dotted keys to value lists, "
                          f"got {grid!r}")
    for key, values in grid.items():
        parts = str(key).split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"sweep grid: bad key {key!r} (use dotted paths like optimizer.lr)")
        if parts[0] in ("name", "sweep"):
            raise ConfigError(f"sweep grid: {key!r} cannot be swept (the sweep sets run names "
                              "and reads the sweep section itself)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid: {key}: expected a non-empty list of values, "
                              f"got {values!r}")
        seen = []
        for v in values:
            if v in seen:
                raise ConfigError(f"sweep grid: {key}: value {v!r} is listed twice")
            seen.append(v)
    # a key inside another's value: whichever is applied last would win unseen, and the
    # results would label each point with a value it did not train with
    paths = sorted(str(key).split(".") for key in grid)
    for outer, inner in itertools.pairwise(paths):
        if inner[:len(outer)] == outer:
            outer, inner = ".".join(outer), ".".join(inner)
            raise ConfigError(f"sweep grid: {outer} and {inner} overlap ({outer} sets "
                              f"{inner} too); sweep one of them, or give {outer} whole values "
                              "that differ in it")
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


def plan(base: dict, grid: dict[str, list], seeds: int, max_runs: int = MAX_RUNS
         ) -> tuple[list[Point], list[Task]]:
    """The cross product of the grid (first key slowest), each point with ``seeds`` runs
    (at most ``max_runs`` runs in all: :func:`check_size`).

    ``base`` is a resolved config (``cfg.to_dict()``). Every run's config is planned as
    ``train`` would plan it (:func:`~scratchnet.experiment.plan.plan_experiment`); a point
    whose overrides make an experiment that cannot train gets tasks with ``error`` set and
    ``config`` None: it is reported, never run.
    """
    from ..experiment.plan import plan_experiment

    descriptions: dict[str, object] = {}  # the data, described once per data section
    check_size(grid, seeds, max_runs)
    check_grid(grid)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be a positive integer, got {seeds!r}")
    base = copy.deepcopy(base)
    base.pop("sweep", None)
    name = (base.get("name") or "run")[:60]
    keys = list(grid)
    points, tasks = [], []
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, values, strict=True))
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
                cfg = validate(raw, f"sweep point {pid}", overridden={
                    tuple(key.split(".")): f"--grid {key}={show_value(value)}"
                    for key, value in overrides.items()})
                data_key = json.dumps([cfg.data.model_dump(mode="json"), cfg.split_seed])
                descriptions[data_key] = plan_experiment(
                    cfg, description=descriptions.get(data_key)).data
                config = cfg.to_dict()
                config.pop("sweep", None)
            except ConfigError as e:
                config, error = None, str(e)
            tasks.append(Task(f"{pid}-s{k}", pid, k, int(base.get("seed", 0)) + k, run_name,
                              config, error))
    return points, tasks

