"""A tune folder on disk: ``tune.json`` (the plan), ``study.db`` (the optuna study, unless
``storage`` names another), ``runs/`` (one ordinary run folder per trial),
``results.json`` and ``best.yaml`` (the best trial's config)."""

from __future__ import annotations

import copy
from pathlib import Path

from pydantic import ConfigDict

from .. import runs
from ..constants import TUNE_STATE
from ..config import ExperimentConfig, validate
from ..config.schema import TuneConfig
from ..errors import ConfigError
from ..nn.metrics import larger_is_better
from ..sweep.folder import RUNS, STATE_VERSION, PlanFolder
from ..sweep.grid import MAX_RUNS
from ..tracking import tracked_settings
from .space import Dimension, candidate, check_space, parse_space

STATE = TUNE_STATE
STUDY_DB = "study.db"
RESULTS = "results.json"
BEST = "best.yaml"
#: the plan's settings, as the ``tune:`` section names them
SETTINGS = [k for k in TuneConfig.model_fields if k != "space"]


def check_trials(trials: int, max_runs: int = MAX_RUNS) -> None:
    """Refuse a study of more than ``max_runs`` trials unless told (``--max-runs``)."""
    if trials > max_runs:
        raise ConfigError(f"the study has {trials:,} trials, more than the {max_runs:,} "
                          f"allowed; pass --max-runs {trials} to run them all")


class TuneState(TuneConfig):
    """``tune.json``: the ``tune:`` settings as the plan fixed them, and the study."""

    model_config = ConfigDict(strict=True, extra="ignore")
    name: str
    study: str
    base_config: dict
    data_dir: str | None = None


class TuneFolder(PlanFolder):
    """A tune folder and its ``tune.json``: the base config, the space and the settings."""

    KIND = "tune"
    STATE = STATE
    SCHEMA = TuneState

    def __init__(self, path: Path, state: dict, space: list[Dimension] | None = None):
        super().__init__(path, state)
        where = f"{self.path / STATE}"
        self.base = validate(copy.deepcopy(state["base_config"]), f"{where}: base_config").to_dict()
        self.space = space or parse_space(state["space"], {k: f"{where}: space.{k}"
                                                           for k in state["space"]})

    # -- creating and opening --
    @classmethod
    def create(cls, out: str | Path, cfg: ExperimentConfig, space: dict | None = None,
               origins: dict[str, str] | None = None, data_dir: str | None = None,
               source: str | None = None, max_runs: int = MAX_RUNS,
               **settings) -> "TuneFolder":
        """A new tune folder under ``out`` once the space is checked (a bad space, or more
        than ``max_runs`` trials, leaves no folder). ``space`` (key -> distribution text)
        replaces the keys of the file's ``tune.space``; ``settings`` (trials, metric,
        pruner, ...) replace the file's values when not None. ``origins`` name where each
        key of ``space`` was given."""
        section = (cfg.tune or TuneConfig()).model_dump()
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise ConfigError(f"unknown tune settings: {', '.join(sorted(unknown))}; expected "
                              f"some of: {', '.join(SETTINGS)}")
        plan = {**section, **{k: v for k, v in settings.items() if v is not None}}
        plan["space"] = {**section["space"], **(space or {})}
        check_trials(plan["trials"], max_runs)
        where = source or cfg.name or "config"
        origins = {**{k: f"{cfg.origin.locate(loc) if cfg.origin.lines else where}: "
                         f"{'.'.join(loc)}"
                      for k in section["space"] for loc in [("tune", "space", k)]},
                   **(origins or {})}
        base = cfg.to_dict()
        base.pop("tune", None)
        tracking = tracked_settings(base)
        dims = parse_space(plan["space"], origins)
        check_space(base, dims)
        if plan["direction"] is None:
            plan["direction"] = "maximize" if larger_is_better(plan["metric"]) else "minimize"
        path = runs.new_run_dir(out, cfg.name or "tune")
        (path / RUNS).mkdir()
        state = {"version": STATE_VERSION, "name": cfg.name or "tune", "study": path.name,
                 "base_config": base, "data_dir": data_dir, "tracking": tracking, **plan}
        folder = cls(path, state, dims)
        folder.save()
        return folder

    @property
    def storage_url(self) -> str:
        """``tune.storage``, else the SQLite file in the folder (found wherever it moves)."""
        return self.state["storage"] or f"sqlite:///{(self.path / STUDY_DB).resolve()}"

    @property
    def larger_is_better(self) -> bool:
        return self.state["direction"] == "maximize"

    def trial_config(self, number: int | None, values: dict) -> ExperimentConfig:
        """The config of trial ``number`` (None: the base name, for ``best.yaml``)."""
        cfg = candidate(self.base, values,
                        f"trial {number}" if number is not None else "best trial")
        cfg.name = self.state["name"] if number is None else f"{self.state['name']}-t{number}"
        return cfg
