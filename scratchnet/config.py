"""The experiment file: a pydantic schema, safe YAML loading, ``--set`` overrides, and
one-line errors that name the file, the line, the key path, the bad value and what was
expected.

Names that refer to the engine (activations, initialisers, losses, optimizers, decays)
are checked against the engine's registries, so a new registry entry is accepted in
experiment files the day it is added.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .activations import ACTIVATIONS
from .data import DATASETS, SCALERS
from .errors import ConfigError
from .initializers import BIAS_INITS, INITIALIZERS
from .losses import LOSSES
from .network import DTYPES
from .optimizers import OPTIMIZERS
from .registry import check_options, did_you_mean
from .schedules import SCHEDULES

SCHEMA_URL_COMMENT = "# yaml-language-server: $schema=../scratchnet.schema.json"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python object tags), reading ``1e-3`` as a number as
    YAML 1.2 does (YAML 1.1 wants ``1.0e-3`` and would give the string "1e-3")."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def safe_load(text: str):
    """Parse YAML text safely: plain data only, never Python objects."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _suggest(value: str, choices) -> str:
    return did_you_mean(value, choices)


def _check_name(value: str, registry, what: str) -> str:
    if value not in registry:
        raise ValueError(f"unknown {what} {value!r}{_suggest(value, registry)}; "
                         f"expected one of: {', '.join(registry)}")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


class DataConfig(Strict):
    dataset: str = Field("digits", description="mnist, fashion_mnist, digits, iris, wine, "
                         "breast_cancer, diabetes or csv")
    path: str | None = Field(None, description="a CSV file, or a folder holding the MNIST files")
    target: str | None = Field(None, description="CSV: the target column")
    task: Literal["classification", "regression"] | None = Field(
        None, description="CSV: override the task inferred from the target column")
    scale: str = Field("standard", description="global (one mean/std, the notebook's), "
                       "standard (per feature), minmax, none; fitted on the training part only")
    validation: Union[float, Literal["test"]] = Field(
        0.1, description='fraction of the training data held out, or "test" for the '
                         "notebook's protocol (evaluate on the test split)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test split for data sets "
                                 "without one")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v):
        return _check_name(v, DATASETS, "dataset")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v):
        return _check_name(v, SCALERS, "scale")

    @field_validator("validation")
    @classmethod
    def _validation(cls, v):
        if v != "test" and not 0 < v < 1:
            raise ValueError(f'validation must be a fraction in (0, 1) or "test", got {v!r}')
        return v


def _named_spec(v, registry, what: str):
    """A name, or a mapping ``{name: ..., <constructor kwargs>}``."""
    if isinstance(v, str):
        return _check_name(v, registry, what)
    if isinstance(v, dict):
        if "name" not in v or not isinstance(v["name"], str):
            raise ValueError(f"a {what} given as a mapping needs a 'name' key, got {v!r}")
        _check_name(v["name"], registry, what)
        check_options(registry[v["name"]], v["name"], what, [k for k in v if k != "name"])
        return v
    raise ValueError(f"expected a {what} name or a mapping with 'name', got {v!r}")


class LayerConfig(Strict):
    neurons: int = Field(..., gt=0, description="output width of the layer")
    activation: Union[str, dict[str, Any]] = Field(
        "linear", description="activation name, or {name: ..., <options>}")
    weight_init: str = Field("glorot", description="weight initialiser")
    bias_init: Literal[BIAS_INITS] = Field("zeros", description="zeros, or normal (the notebook's)")  # type: ignore[valid-type]
    dropout: float = Field(0.0, ge=0, lt=1, description="drop rate after the activation")
    batch_norm: bool = Field(False, description="batch normalisation before the activation")

    @field_validator("activation")
    @classmethod
    def _activation(cls, v):
        return _named_spec(v, ACTIVATIONS, "activation")

    @field_validator("weight_init")
    @classmethod
    def _init(cls, v):
        return _check_name(v, INITIALIZERS, "weight_init")


class ModelConfig(Strict):
    layers: list[LayerConfig] = Field(..., min_length=1)
    loss: Union[str, dict[str, Any]] = Field("softmax_cross_entropy", description="loss name, "
                                             "or {name: ..., <options>}")
    input_dropout: float = Field(0.0, ge=0, lt=1, description="drop rate on the input "
                                 "features while training (e.g. 0.2 on MNIST pixels)")

    @field_validator("loss")
    @classmethod
    def _loss(cls, v):
        return _named_spec(v, LOSSES, "loss")


class DecayConfig(Strict):
    type: str = Field("none", description="learning-rate schedule: " + ", ".join(SCHEDULES))
    final_lr: float | None = Field(None, ge=0)
    step_size: int | None = Field(None, gt=0, description="step: epochs between drops")
    gamma: float | None = Field(None, gt=0, le=1, description="step: factor at each drop")
    factor: float | None = Field(None, gt=0, lt=1, description="plateau: factor on a plateau")
    patience: int | None = Field(None, gt=0, description="plateau: evaluations to wait")
    min_lr: float | None = Field(None, ge=0, description="plateau: lower bound")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up epochs before the schedule")

    @field_validator("type")
    @classmethod
    def _type(cls, v):
        return _check_name(v, SCHEDULES, "decay type")

    def kwargs(self) -> dict:
        """Schedule options beyond type and final_lr, as the schedule takes them."""
        return {k: v for k, v in self.model_dump().items()
                if k not in ("type", "final_lr") and v is not None and not (k == "warmup_epochs" and v == 0)}


class OptimizerConfig(Strict):
    name: str = Field("sgd_momentum", description="optimizer: " + ", ".join(OPTIMIZERS))
    lr: float = Field(0.1, gt=0, description="(initial) learning rate")
    momentum: float | None = Field(None, ge=0, lt=1)
    beta1: float | None = Field(None, ge=0, lt=1)
    beta2: float | None = Field(None, ge=0, lt=1)
    rho: float | None = Field(None, ge=0, lt=1)
    eps: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0, description="L2 on weights (decoupled for adamw)")
    clip_norm: float | None = Field(None, gt=0, description="clip gradients by global norm")
    decay: DecayConfig = Field(default_factory=DecayConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        return _check_name(v, OPTIMIZERS, "optimizer")

    @model_validator(mode="after")
    def _options_fit(self):
        accepted = set(inspect.signature(OPTIMIZERS[self.name].__init__).parameters)
        for key in ("momentum", "beta1", "beta2", "rho", "eps", "weight_decay", "clip_norm"):
            if getattr(self, key) is not None and key not in accepted:
                raise ValueError(f"optimizer {self.name!r} takes no option {key!r}")
        return self


class EarlyStoppingConfig(Strict):
    patience: int = Field(1, gt=0, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest decrease that counts as better")
    restore_best: bool = Field(True, description="put back the best weights at the end")


class TrainConfig(Strict):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_every: int = Field(1, gt=0, description="evaluate every N epochs (and at the last)")
    early_stopping: Union[EarlyStoppingConfig, bool] = Field(
        False, description="false, true (stop at the first rise, restore best), or options")
    dtype: str = Field("float32", description="float32 or float64")
    checkpoint_every: int | None = Field(None, gt=0, description="epochs between checkpoints "
                                         "(default: at every evaluation)")

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v):
        return _check_name(v, DTYPES, "dtype")


class SweepConfig(Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values")
    seeds: int = Field(1, gt=0, description="runs per grid point, seeds seed, seed+1, ...")


class ExperimentConfig(Strict):
    name: str | None = Field(None, description="defaults to the file's stem")
    seed: int = Field(0, description="seeds weights, dropout, shuffling and data splits")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sweep: SweepConfig | None = Field(None, description="grid and seeds for `scratchnet sweep`")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """SHA-256 of the resolved config (stored with each run to detect later edits)."""
        return config_digest(self.to_dict())


def config_digest(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# -- comparing configs -------------------------------------------------------------
def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}, "model": {"layers": [{...}]}}`` ->
    ``{"optimizer.lr": 0.1, "model.layers.0.neurons": 64, ...}``."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(config, list) and config and all(isinstance(v, dict) for v in config):
        for i, v in enumerate(config):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        out[prefix] = config
    return out


def differing_keys(configs: list[dict], ignore: Iterable[str] = ("name",)) -> list[str]:
    """Dotted keys whose values are not the same in every config (in first-seen order)."""
    flats = [flatten(c) for c in configs]
    ignore = set(ignore)
    keys: list[str] = []
    for f in flats:
        for k in f:
            if k not in keys and k.split(".")[0] not in ignore and k not in ignore:
                keys.append(k)
    out = []
    for k in keys:
        vals = [json.dumps(f.get(k, "\0missing"), sort_keys=True, default=str) for f in flats]
        if len(set(vals)) > 1:
            out.append(k)
    return out


def json_schema() -> dict:
    """The JSON Schema of the experiment file, for editors."""
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "scratchnet experiment"
    return schema


# -- loading ------------------------------------------------------------------------
def _line_numbers(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line of that key in the YAML text (best effort)."""
    lines: dict[tuple, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else None
                lines[path + (k,)] = key.start_mark.line + 1
                walk(value, path + (k,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (str(i),)] = item.start_mark.line + 1
                walk(item, path + (str(i),))

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except (yaml.YAMLError, RecursionError):
        pass
    return lines


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(source: str, loc: tuple, lines: dict[tuple, int],
           overridden: dict[tuple, str] | None = None) -> str:
    """``file:line``; ``file (--set KEY=VALUE)`` when the value at ``loc`` came from an
    override (the file's line would point at a value the user did not give), and
    ``file:line (--set KEY=VALUE)`` when an override changed something inside it."""
    items = reversed(list((overridden or {}).items()))
    for path, item in items:
        if loc[:len(path)] == path:
            return f"{source} (--set {item})"
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    inside = [item for path, item in (overridden or {}).items() if loc and path[:len(loc)] == loc]
    return f"{where} (--set {inside[-1]})" if inside else where


def format_validation_error(err: ValidationError, source: str, lines: dict[tuple, int],
                            model=ExperimentConfig,
                            overridden: dict[tuple, str] | None = None) -> str:
    """The first error as one line: ``file:line: key.path: got VALUE; expected ...``."""
    e = err.errors()[0]
    kind = e["type"]
    loc = tuple(str(p) for p in e["loc"])
    # pydantic adds the union member it tried ("float", "literal['test']", a class name) to
    # the location; keep only the user's keys (the last part of an unknown key is one).
    keep = len(loc) - 1 if kind == "extra_forbidden" else len(loc)
    loc = tuple(p for i, p in enumerate(loc) if i >= keep or not _is_union_tag(p))
    path = ".".join(loc) or "(top level)"
    where = _where(source, loc, lines, overridden)
    if kind == "extra_forbidden":
        parent = _submodel(model, loc[:-1])
        fields = list(parent.model_fields) if parent else []
        message = f"unknown key {loc[-1]!r}{_suggest(loc[-1], fields)}"
        if fields:
            message += f"; expected one of: {', '.join(fields)}"
    elif kind == "missing":
        message = "required key is missing"
    else:
        msg = e["msg"]
        msg = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
        msg = msg[:1].lower() + msg[1:]
        value = e.get("input")
        # a mapping is the input of a whole-section check, too long to quote; but a list
        # or mapping given where a plain value belongs is the bad value itself
        if (isinstance(value, (dict, list)) and not kind.endswith("_type")) or repr(value) in msg:
            message = msg  # the message already quotes what matters
        else:
            message = f"got {_show(value)}: {msg}"
    return f"{where}: {path}: {message}"


def _is_union_tag(part: str) -> bool:
    return (any(c in part for c in "[(,") or part[:1].isupper()
            or part in ("str", "float", "int", "bool", "none"))


def _submodel(model, loc: tuple):
    """The pydantic model at a key path (None past a list or a plain mapping)."""
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann] + list(getattr(ann, "__args__", ()))
        for c in list(candidates):
            candidates += list(getattr(c, "__args__", ()))
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            return None
        model = nxt
    return model


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.layers.0.neurons=128"`` -> (["model", "layers", "0", "neurons"], 128).
    The value is read as YAML, so numbers, booleans, null and lists work."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set: bad key {key!r} (use dotted paths like train.epochs)")
    try:
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except Exception as e:  # PyYAML's constructors fail in odd ways on odd tags ("!!int")
        raise ConfigError(f"--set {key}: cannot read the value {_show(raw)}: {e}") from None
    check_plain_data(value, f"--set {key}")
    return parts, value


def apply_override(raw: dict, parts: list[str], value: Any, source: str = "--set") -> None:
    """Set ``raw[parts[0]][parts[1]]... = value`` in place; list indices are numbers."""
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{source}: {where}: no list item {part!r} "
                                  f"(the list has {len(node)} items)")
            if last:
                node[int(part)] = value
            else:
                if not isinstance(node[int(part)], (dict, list)):
                    node[int(part)] = {}
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"{source}: {where}: cannot set a key inside {_show(node)}")


def load_raw(path: str | Path) -> tuple[dict, str]:
    """Read an experiment file safely (no Python object tags) into plain data."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    raw = parse_yaml(text, str(path))
    return raw, text


def parse_yaml(text: str, source: str = "<config>") -> dict:
    try:
        raw = safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (e.problem or e.context or "invalid YAML").strip()
        raise ConfigError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except Exception as e:  # PyYAML's constructors fail in odd ways on odd tags ("!!int")
        detail = " ".join(str(e).split())[:200]
        raise ConfigError(f"{source}: invalid YAML: cannot read a value "
                          f"({type(e).__name__}{': ' + detail if detail else ''}); "
                          "check explicit tags such as !!int or !!timestamp") from None
    if raw is None:
        raise ConfigError(f"{source}: the file is empty; expected an experiment mapping")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of experiment keys at the top level, "
                          f"got {type(raw).__name__}")
    check_plain_data(raw, source)
    return raw


#: the most values a config may hold with its YAML aliases expanded
MAX_CONFIG_VALUES = 100_000


def check_plain_data(raw: Any, source: str = "<config>") -> None:
    """Refuse what safe YAML loading still lets through: an alias inside itself (a
    recursive structure) and aliases of aliases that expand to millions of values (a
    "billion laughs" file of a few lines), which would hang or crash when the config is
    written to the run folder."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: a YAML alias refers to the value that contains it "
                              "(a recursive structure); expected plain data")
        active.add(key)
        total = 1 + sum(size(v) for v in (node.values() if isinstance(node, dict) else node))
        active.discard(key)
        if total > MAX_CONFIG_VALUES:
            raise ConfigError(f"{source}: the config holds more than {MAX_CONFIG_VALUES} values "
                              "once its YAML aliases are expanded; expected a small experiment "
                              "file")
        sizes[key] = total
        return total

    try:
        size(raw)
    except RecursionError:
        raise ConfigError(f"{source}: the config is nested too deeply") from None


def validate(raw: dict, source: str = "<config>", text: str | None = None,
             default_name: str | None = None, *,
             overridden: dict[tuple, str] | None = None) -> ExperimentConfig:
    """Validate plain data into an :class:`ExperimentConfig`, or raise a one-line
    :class:`ConfigError`. ``overridden`` maps key paths set by ``--set`` to the option
    text, so an error there names the option rather than a line of the file."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        lines = _line_numbers(text) if text else {}
        raise ConfigError(format_validation_error(err, source, lines,
                                                  overridden=overridden)) from None
    except (RecursionError, TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{source}: invalid config: {e}") from None
    if cfg.name is None and default_name:
        cfg.name = default_name
    if cfg.name is not None and not _safe_name(cfg.name):
        raise ConfigError(f"{source}: name: got {cfg.name!r}: use letters, digits, '.', '_' and '-'")
    return cfg


def _safe_name(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isalnum() or c in "._-" for c in name) \
        and not name.startswith(".")


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load, override (``["train.epochs=5", ...]``) and validate an experiment file."""
    raw, text = load_raw(path)
    overridden: dict[tuple, str] = {}
    for item in overrides or []:
        parts, value = parse_override(item)
        apply_override(raw, parts, value)
        overridden[tuple(parts)] = item
    cfg = validate(raw, str(path), text, default_name=Path(path).stem, overridden=overridden)
    check_data_files(cfg, str(path), text, overridden)
    if cfg.data.path:
        # Stored absolute in the run's config.yaml, so `eval` works from any folder.
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    return cfg


def check_data_files(cfg: ExperimentConfig, source: str = "<config>", text: str | None = None,
                     overridden: dict[tuple, str] | None = None) -> None:
    """A data file the experiment names must exist. A missing one is a mistake in the
    config (a ConfigError: exit 2, found before any training starts); a file that exists
    but cannot be read or parsed is a DataError while running (exit 1). MNIST-style
    folders are not checked here: ``data.path`` is only the first place searched."""
    d = cfg.data
    if d.dataset != "csv":
        return
    where = _where(source, ("data", "path"), _line_numbers(text) if text else {}, overridden)
    if not d.path:
        raise ConfigError(f"{where}: data.path: required for dataset csv; expected the path "
                          "of a CSV file")
    try:  # "~user" of no user, a name too long for the file system, ...
        path = Path(d.path).expanduser()
        if path.is_file():
            return
        problem = "is a folder" if path.is_dir() else "no such file"
    except (OSError, RuntimeError, ValueError) as e:
        raise ConfigError(f"{where}: data.path: got {_show(d.path)}: cannot be used as a "
                          f"path ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                          "expected a CSV file") from None
    hint = "" if path.is_absolute() else f" (relative paths are read from {Path.cwd()})"
    raise ConfigError(f"{where}: data.path: got {d.path!r}: {problem}; expected a CSV "
                      f"file{hint}")
