"""A search space: ``--space KEY=DISTRIBUTION`` (or ``tune.space`` in the file), checked
against the schema before any trial runs.

Distributions: ``uniform:LOW:HIGH``, ``loguniform:LOW:HIGH``, ``int:LOW:HIGH`` (with
``:STEP`` or ``:log``) and ``choice:A,B,...`` (values read as YAML, as ``--grid`` reads
them; in the file a YAML list is a choice too).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from ..constants import TUNE_FORMS as FORMS  # distribution -> the form it is written in
from ..config import ExperimentConfig, apply_override, safe_load, validate
from ..config.diff import show_value
from ..errors import ConfigError, ConfigErrors
from ..registry import did_you_mean
from ..sweep import parse_grid_option

#: sections a trial cannot vary (the tune sets names, and reads these itself)
FIXED = ("name", "tune", "tracking", "sweep")


def candidate(base: dict, values: dict[str, Any], source: str) -> ExperimentConfig:
    """``base`` (a resolved config) with ``values`` (dotted key -> value) set, validated
    and planned as ``train`` plans it (:func:`~scratchnet.experiment.plan_experiment`).

    The one place where a point of the space becomes a config: the space's checks and
    every trial go through it."""
    from ..experiment import plan_experiment

    raw = copy.deepcopy(base)
    for key, value in values.items():
        apply_override(raw, key.split("."), copy.deepcopy(value), source=source)
    cfg = validate(raw, source)
    plan_experiment(cfg)
    return cfg


def _primitive(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


@dataclass(frozen=True)
class Dimension:
    """One key of the space and its distribution. ``origin`` names where it was given
    (``--space KEY=SPEC``), for error lines."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    log: bool = False
    choices: tuple = ()
    origin: str = ""

    def probes(self) -> list:
        """The values checked before the first trial: every choice, or both ends."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def labels(self) -> list:
        """Choices as optuna stores them (plain values; mappings and lists as JSON)."""
        return [c if _primitive(c) else show_value(c) for c in self.choices]

    def suggest(self, trial) -> Any:
        """This dimension's value for an optuna ``trial``."""
        if self.kind == "choice":
            return self.decode(trial.suggest_categorical(self.key, self.labels()))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1,
                                     log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def decode(self, stored) -> Any:
        """A value optuna stored for this key, as the config takes it."""
        if self.kind != "choice":
            return stored
        return self.choices[self.labels().index(stored)] if stored in self.labels() else stored


def _number(text: str, origin: str, kind: str):
    try:
        value = safe_load(text)
    except yaml.YAMLError:
        value = text
    integer = kind == "int"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError(f"{origin}: {text.strip()!r} is not "
                          f"{'an integer' if integer else 'a number'}; "
                          f"expected {FORMS[kind]}")
    return value


def parse_dimension(key: str, spec: str | list, origin: str) -> Dimension:
    """One key's distribution, checked on its own (the schema comes later)."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"{origin}: bad key {key!r}; expected a dotted path like optimizer.lr")
    if parts[0] in FIXED:
        raise ConfigError(f"{origin}: {parts[0]!r} cannot be tuned; expected a key of data, "
                          "model, optimizer, train or seed")
    if isinstance(spec, list):
        return _choice(key, spec, origin)
    if not isinstance(spec, str):
        raise ConfigError(f"{origin}: expected one of {', '.join(FORMS.values())}, got {spec!r}")
    kind, _, rest = spec.partition(":")
    kind = kind.strip()
    if kind not in FORMS:
        raise ConfigError(f"{origin}: unknown distribution {kind!r}{did_you_mean(kind, FORMS)}; "
                          f"expected one of: {', '.join(FORMS.values())}")
    if kind == "choice":
        if not rest.strip():
            raise ConfigError(f"{origin}: no values; expected {FORMS['choice']}")
        return _choice(key, parse_grid_option(f"{key}={rest}")[1], origin)
    fields = rest.split(":")
    log, step = kind == "loguniform", None
    if kind == "int" and len(fields) == 3:
        *fields, extra = fields
        log = extra.strip() == "log"
        step = None if log else _number(extra, origin, kind)
        if step is not None and step < 1:
            raise ConfigError(f"{origin}: step {step} must be at least 1; expected {FORMS['int']}")
    if len(fields) != 2:
        raise ConfigError(f"{origin}: expected {FORMS[kind]}")
    low, high = (_number(f, origin, kind) for f in fields)
    if low > high:
        raise ConfigError(f"{origin}: low {low} is greater than high {high}; expected "
                          f"{FORMS[kind]} with LOW <= HIGH")
    if log and low <= 0:
        raise ConfigError(f"{origin}: a log range must be above 0, got low {low}; expected "
                          f"{FORMS[kind]} with 0 < LOW <= HIGH")
    return Dimension(key, kind, low, high, step, log, origin=origin)


def _choice(key: str, values: list, origin: str) -> Dimension:
    if not values:
        raise ConfigError(f"{origin}: no values; expected {FORMS['choice']}")
    dim = Dimension(key, "choice", choices=tuple(values), origin=origin)
    labels = dim.labels()
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise ConfigError(f"{origin}: the value {values[i]!r} is listed twice")
    return dim


def parse_space_option(text: str) -> tuple[str, str]:
    """``"optimizer.lr=loguniform:1e-4:1"`` -> ``("optimizer.lr", "loguniform:1e-4:1")``."""
    key, eq, spec = text.partition("=")
    if not eq:
        raise ConfigError(f"--space expects KEY=DISTRIBUTION (one of {', '.join(FORMS.values())}), "
                          f"got {text!r}")
    return key.strip(), spec.strip()


def parse_space(space: dict[str, str | list], origins: dict[str, str]) -> list[Dimension]:
    """Every key's distribution (``origins``: key -> where it was given)."""
    if not space:
        raise ConfigError("tune needs a search space: --space KEY=DISTRIBUTION (repeatable) "
                          "or tune.space in the experiment file")
    return [parse_dimension(k, v, origins.get(k, f"tune.space.{k}")) for k, v in space.items()]


def check_space(base: dict, dims: list[Dimension]) -> None:
    """Refuse, before any trial, a key the schema does not know and a value it refuses:
    each choice, and both ends of each range, is set in the base config and checked. A
    mistake about another key (the low end of ``optimizer.lr`` under the config's
    ``final_lr``) is the combination's, not the space's: such a trial is recorded as
    refused when it comes."""
    for dim in dims:
        for value in dim.probes():
            try:
                candidate(base, {dim.key: value}, dim.origin)
            except ConfigErrors as e:
                about = [m for m in e.messages if f": {dim.key}:" in m or f": {dim.key}." in m]
                if about:
                    raise ConfigError(about[0]) from None
