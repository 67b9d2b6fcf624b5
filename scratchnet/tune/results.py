"""A study's results: its trials best first, the parameter importances, and the best
trial's config as a YAML file that ``scratchnet train`` runs unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import runs
from .folder import BEST, RESULTS, TuneFolder
from .study import OUTCOMES, import_optuna, finished


@dataclass
class TuneTable:
    """The finished trials, best first: completed ones by their value, then the pruned
    (by the best value they reported), then those that diverged or were invalid.
    ``importances`` is None when too few trials completed to say."""

    path: Path
    metric: str
    direction: str
    keys: list[str]
    rows: list[dict]
    counts: dict[str, int]
    importances: dict[str, float] | None = None
    best_config: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        return self.rows[0] if self.rows and self.rows[0]["status"] == "completed" else None

    def to_dict(self) -> dict:
        return {"tune": str(self.path), "metric": self.metric, "direction": self.direction,
                "keys": self.keys, "counts": self.counts, "best": self.best,
                "trials": self.rows, "importances": self.importances,
                "best_config": str(self.best_config) if self.best_config else None}


def trial_row(folder: TuneFolder, trial) -> dict:
    """One trial as plain data: its values (as the config takes them), how it ended, its
    value (for a pruned trial, the best it reported) and its run folder."""
    dims = {d.key: d for d in folder.space}
    status = trial.user_attrs.get("status", "interrupted")
    reported = list(trial.intermediate_values.values())
    value = trial.value if status == "completed" else None
    if status == "pruned" and reported:
        value = (max if folder.larger_is_better else min)(reported)
    run_dir = trial.user_attrs.get("run_dir")
    return {"trial": trial.number, "status": status, "value": value,
            "params": {k: dims[k].decode(v) if k in dims else v for k, v in trial.params.items()},
            "epochs": trial.user_attrs.get("epochs"),
            "run_dir": str(folder.path / run_dir) if run_dir else None,
            "error": trial.user_attrs.get("error")}


def _importances(study, completed: int) -> tuple[dict | None, str | None]:
    if completed < 2:
        return None, (f"parameter importances need at least 2 completed trials "
                      f"({completed} completed)")
    optuna = import_optuna()
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
        return {k: float(v) for k, v in found.items()}, None
    except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. no variation at all
        return None, f"parameter importances: not available ({' '.join(str(e).split())[:120]})"


def summarize(folder: TuneFolder, study) -> TuneTable:
    """The table of ``study``'s finished trials; also writes ``best.yaml`` (when a trial
    completed) and ``results.json`` into the tune folder."""
    rows = [trial_row(folder, t) for t in finished(study)]
    sign = -1 if folder.larger_is_better else 1
    rank = {s: i for i, s in enumerate(OUTCOMES)}
    rows.sort(key=lambda r: (rank[r["status"]], r["value"] is None,
                             sign * r["value"] if r["value"] is not None else 0, r["trial"]))
    counts = {s: sum(r["status"] == s for r in rows) for s in OUTCOMES}
    importances, note = _importances(study, counts["completed"])
    table = TuneTable(folder.path, folder.state["metric"], folder.state["direction"],
                      [d.key for d in folder.space], rows, counts, importances,
                      notes=[note] if note else [])
    if table.best is not None:
        table.best_config = write_best(folder, table.best, sum(counts.values()))
    runs.write_json(folder.path / RESULTS, table.to_dict())
    return table


def write_best(folder: TuneFolder, best: dict, n_trials: int) -> Path:
    """``best.yaml``: the base config with the best trial's values, fully resolved."""
    cfg = folder.trial_config(None, best["params"])
    path = folder.path / BEST
    header = (f"# the best of {n_trials} trials of {folder.path} (trial {best['trial']}, "
              f"{folder.state['metric']} {best['value']:.6g}); train it with: "
              f"scratchnet train {path}\n")
    runs.atomic_write_text(path, header + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path
