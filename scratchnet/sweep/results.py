"""A sweep's results: one row per grid point, each metric as mean and spread over seeds."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..constants import SELECTABLE  # noqa: F401  (the metrics that may pick the best point)
from .. import runs
from ..compare import METRICS, summary_metric
from ..config.diff import short_keys, show_value
from ..errors import ConfigError
from .folder import RESULTS_CSV, RESULTS_JSON, SweepFolder
from .grid import Task



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
                v = summary_metric(e.get("summary"), path)
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
        failures = [(t.seed, e["error"]) for t, e in zip(tasks, entries, strict=True)
                    if e and e.get("error")]
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
            cells += [("" if stat is None or stat[s] is None else repr(stat[s]))
                      for s in ("mean", "std")]
        w.writerow([r["point"], *[show_value(r["overrides"][k]) for k in table.keys], r["status"],
                    r["runs_ok"], r["runs"], *cells, int(r["best"]), r["error"] or ""])
    return buf.getvalue()


def write_results(folder: SweepFolder, table: SweepTable) -> tuple[Path, Path]:
    """``results.csv`` and ``results.json`` in the sweep folder (atomically)."""
    csv_path, json_path = folder.path / RESULTS_CSV, folder.path / RESULTS_JSON
    runs.atomic_write_text(csv_path, results_csv(table))
    runs.write_json(json_path, table.to_dict())
    return csv_path, json_path
