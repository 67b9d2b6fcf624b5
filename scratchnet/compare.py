"""Reading run folders and comparing them: what ``compare``, ``plot`` and sweeps share."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import runs
from .config.diff import differing_keys, flatten, short_keys, show_value
from .errors import ConfigError
from .nn.metrics import larger_is_better

#: metric name -> where it comes from in a run's summary
_SUMMARY_PATHS = {
    "accuracy": ("test", "accuracy"),
    "mae": ("test", "mae"),
    "rmse": ("test", "rmse"),
    "r2": ("test", "r2"),
    "test_loss": ("test", "loss"),
    "bits_per_char": ("test", "bits_per_char"),  # a text run's
    "perplexity": ("test", "perplexity"),
    "val_loss": ("best_val_loss",),
    "epochs": ("epochs_run",),
    "seconds": ("seconds",),
}
#: metric name -> (where it comes from in a run's summary, larger is better)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    name: (path, larger_is_better(name)) for name, path in _SUMMARY_PATHS.items()}


#: each metric's name as a table's column shows it
METRIC_HEADERS = {"accuracy": "test accuracy", "mae": "test MAE", "rmse": "test RMSE",
                  "r2": "test R²", "test_loss": "test loss", "val_loss": "val loss",
                  "bits_per_char": "test bits/char", "perplexity": "test perplexity",
                  "epochs": "epochs run", "seconds": "seconds", "best_epoch": "best epoch"}


def format_metric(metric: str, v) -> str:
    """A metric's value as tables show it: accuracy in percent (no sign), epochs whole
    where they are, seconds to a tenth, the rest to four decimals; None is ``-``."""
    if v is None:
        return "-"
    if metric == "accuracy":
        return f"{100 * v:.2f}"
    if metric in ("epochs", "best_epoch"):
        return f"{v:.1f}" if v != int(v) else str(int(v))
    if metric == "seconds":
        return f"{v:.1f}"
    return f"{v:.4f}"


def run_metrics(records: list[dict]) -> list[str]:
    """The metrics any of the runs (:func:`read_run` records) has, in a table's order."""
    order = ["accuracy", "mae", "rmse", "r2", "test_loss", "bits_per_char", "perplexity",
             "val_loss", "best_epoch", "epochs", "seconds"]
    return [m for m in order if any(m in r["metrics"] for r in records)]


def summary_metric(summary: dict | None, path: tuple[str, ...]) -> float | None:
    """The finite number at ``path`` in a run's summary (``("test", "accuracy")``), or
    None when it is missing, not a number or not finite."""
    node: Any = summary
    for p in path:
        if not isinstance(node, dict):
            return None
        node = node.get(p)
    if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
        return None
    return float(node)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders from run folders and sweep folders (a sweep gives all its runs)."""
    from .sweep.folder import STATE, SweepFolder

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if os.path.lexists(p / STATE):  # (opening it refuses one that is not a regular file)
            out += SweepFolder.open(p).run_folders()
        elif os.path.lexists(p / runs.CONFIG):
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
    summary = runs.read_summary(run_dir) or None
    history = runs.read_metrics(run_dir)
    metrics = {m: summary_metric(summary, path) for m, (path, _) in METRICS.items()}
    metrics["best_epoch"] = summary_metric(summary, ("best_epoch",))
    return {"run_dir": str(run_dir), "name": config.get("name") or run_dir.name, "config": config,
            "summary": summary, "status": (summary or {}).get("status", "incomplete"),
            "metrics": {k: v for k, v in metrics.items() if v is not None}, "history": history}


def compared(record: dict) -> dict:
    """What ``compare`` compares of a run (a :func:`read_run` record): its config and, as
    ``environment.*``, where it ran (``summary.json``'s ``environment``)."""
    env = (record["summary"] or {}).get("environment")
    return {**record["config"], "environment": env} if isinstance(env, dict) else record["config"]


def run_labels(records: list[dict], ignore: Iterable[str] = ("name", "tracking")) -> list[str]:
    """A label per run from the config keys that differ between them (the folder name when
    nothing does); keys under ``ignore`` do not count."""
    keys = differing_keys([r["config"] for r in records], ignore=ignore)
    if not keys:
        return [Path(r["run_dir"]).name for r in records]
    names = short_keys(keys)
    labels = []
    for r in records:
        flat = flatten(r["config"])
        labels.append(", ".join(f"{names[k]}={show_value(flat.get(k, '-'))}" for k in keys))
    return labels



def in_config_order(keys: list[str]) -> list[str]:
    """Dotted keys in the order a config file reads: by section (in the order they first
    come), a list's items by index (``model.layers.2.*`` before ``model.layers.10.*``),
    otherwise as given. Keys of two different configs (an MLP's and a CNN's layers)
    interleave this way rather than following one config's keys with the other's."""
    sections: dict[str, int] = {}
    for key in keys:
        sections.setdefault(key.split(".")[0], len(sections))

    def place(item: tuple[int, str]) -> tuple:
        first, key = item
        indices = tuple(int(p) for p in key.split(".") if p.isdigit())
        return sections[key.split(".")[0]], indices, first

    return [key for _, key in sorted(enumerate(keys), key=place)]
