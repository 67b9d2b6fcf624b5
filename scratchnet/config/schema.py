"""The experiment file's schema: pydantic models with unknown keys forbidden.

The engine's sections are made from its declarations (:mod:`scratchnet.config.declared`):
a layer of each ``type`` takes the options its class in :data:`~scratchnet.nn.LAYERS`
declares, an optimizer of each ``name`` those of its class in
:data:`~scratchnet.nn.OPTIMIZERS`, ``optimizer.decay`` of each ``type`` the fields of its
schedule, ``train`` the arguments of :meth:`~scratchnet.nn.Trainer.fit` it sets, and
``model`` those of :class:`~scratchnet.nn.NeuralNetwork`. A new option, or a new registry
entry, is in experiment files, ``--set``, the JSON Schema and ``show`` the day it is
declared. The data, sweep, tune and tracking sections are the command line's own.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, PrivateAttr, model_serializer, model_validator
from pydantic.fields import FieldInfo

from ..constants import TUNE_DIRECTIONS, TUNE_METRICS, TUNE_PRUNERS, TUNE_SAMPLERS
from ..data import DATASETS, SCALERS, AddingOptions, TextOptions
from ..nn import (ACTIVATIONS, BIAS_INITIALIZERS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS,
                  SCHEDULES, EarlyStopping, NeuralNetwork, Trainer, Warmup)
from ..errors import ConfigError
from ..nn.metrics import HIGHER_IS_BETTER, METRIC_MODES
from ..options import (Doc, Epochs, Gt, Lt, Named, Option, Seed, Size, base_type, check_value,
                       lengths, members, metadata_of, options)
from .declared import (JsonSchemaGenerator, Strict, declared, dispatched, field_of,
                       kind_field, section)

#: the first line of every shipped config: editors with the YAML language server check and
#: complete the file against the schema
SCHEMA_URL_COMMENT = "# yaml-language-server: $schema=../scratchnet.schema.json"


def _option(cls, name: str):
    return next(o for o in options(cls) if o.name == name)


def _summary(cls) -> str:
    """The first paragraph of a class's docstring, on one line."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())


#: a share strictly between 0 and 1
_Share = Annotated[float, Gt(0), Lt(1)]


#: keys of ``data`` that belong to one kind of data set (text, the adding problem), as their
#: options declare them: null (left out) stands for that option's default, and a config
#: that leaves them out writes them nowhere (configs of the other kinds keep their keys)
DATASET_KEYS = {TextOptions: ("source", "seq_len", "stride", "streams"),
                AddingOptions: ("length", "samples")}


def _dataset_options() -> list[Option]:
    """The keys of :data:`DATASET_KEYS`, each null by default, its help naming its data
    set and its default there."""
    found = []
    for cls, names in DATASET_KEYS.items():
        dataset = "text" if cls is TextOptions else "adding"
        for o in options(cls):
            if o.name in names:
                default = "" if o.default is None else f", default {o.default}"
                doc = f"{dataset}{default}: {o.doc}"
                union = members(base_type(o.annotation))  # (its bounds: on its members)
                kind = base_type(o.annotation) if type(None) in union else o.annotation | None
                found.append(Option(o.name, Annotated[(kind, Doc(doc))], None))
    return found


class DataSection(Strict):
    """``data``, written without the keys of another kind of data set (null)."""

    @model_serializer(mode="wrap")
    def _without_unset(self, handler):
        own = {name for names in DATASET_KEYS.values() for name in names}
        # a text's ids are never scaled: its scale keys would say something untrue
        unused = ("scale", "target_scale") if self.dataset == "text" else ()
        return {k: v for k, v in handler(self).items()
                if not (k in own and v is None) and k not in unused}


DataConfig = section("DataConfig", [Option(name, Annotated[(kind, Doc(doc))], default) for
                                     name, kind, default, doc in [
    ("dataset", Annotated[str, Named(DATASETS, "dataset")], "digits", ", ".join(DATASETS)),
    ("path", str | None, None, "a CSV, .npz or UTF-8 text file, or a folder holding the "
     "MNIST files"),
    ("target", str | None, None, "CSV: the target column"),
    ("task", Literal["classification", "regression"] | None, None,
     "CSV: override the task inferred from the target column"),
    ("scale", Annotated[str, Named(SCALERS, "scale")], "standard",
     "global (one mean/std, the notebook's), standard (per feature), minmax, none; fitted on "
     "the training part only (a text's ids are never scaled)"),
    ("validation", _Share | Literal["test"], 0.1, "fraction of the training data held out, or "
     "test for the notebook's protocol (evaluate on the test split); text: the share of its "
     "characters before the test part"),
    ("test_fraction", _Share, 0.2, "test split for data sets without one (text: the share of "
     "its characters at the end)"),
    ("shape", tuple[Size, Size, Size] | tuple[Size, Size] | None, None, "[channels, height, "
     "width]: each row of the data is an image of this shape (for a network that starts with "
     "a convolution); [time, features] for one that starts with a recurrent layer"),
    ("target_scale", Literal["none", "standard"], "none", "regression: standard trains on "
     "targets of mean 0 and spread 1 (fitted on the training part); metrics and predictions "
     "stay in the data's units"),
    ("split_seed", Seed | None, None, "seeds the train/test split (CSV and bundled sets), the "
     "validation split and the adding problem's samples; default: seed. The weights, dropout "
     "and shuffling keep seed")]] + _dataset_options(), base=DataSection)


class NullIsDefault(Strict):
    """A section where null stands for an option's default: run folders written by earlier
    releases hold every optimizer and decay option, null where it was not set."""

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data):
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) \
            else data


# -- model and optimizer: from the registries -------------------------------------------------
_layers = _option(NeuralNetwork, "layers")


def _layer_count(value):
    """The number of layers, checked before any layer is (a list of 20,000 is refused at
    once)."""
    if isinstance(value, list):
        try:
            check_value(value, Annotated[(list[Any], *metadata_of(_layers.annotation))],
                        "layers")
        except ConfigError as e:
            raise ConfigError(str(e)) from None  # the key is the field's
    return value


def _model_config():
    """``model``: a layer of each type takes the options of its class in LAYERS."""
    doc = "dense (the default), " + ", ".join(t for t in LAYERS if t != "dense")
    kinds = {kind: section(f"{cls.__name__}Config", options(cls), doc=_summary(cls),
                           before={"type": kind_field(kind, doc)})
             for kind, cls in LAYERS.items()}
    layer = dispatched("type", "dense", kinds, LAYERS, "layer type")
    counts = dict(zip(("minItems", "maxItems"), lengths(_layers.annotation)))
    return section(
        "ModelConfig", [_option(NeuralNetwork, "loss"), _option(NeuralNetwork, "input_dropout")],
        defaults={"loss": "softmax_cross_entropy"},
        before={"layers": (Annotated[list[layer], BeforeValidator(_layer_count)],
                           Field(..., json_schema_extra=counts))})


def _any_optimizer():
    """``optimizer``: an optimizer of each name takes the options of its class in
    OPTIMIZERS, and ``decay`` of each type the fields of its schedule in SCHEDULES."""
    doc = "learning-rate schedule: " + ", ".join(SCHEDULES)
    warmup = _option(Warmup, "warmup_epochs")
    # plateau's mode is not a key: it follows train.early_stopping's monitor (the trainer
    # hands it over), so the two cannot disagree
    decays = {kind: section(f"{cls.__name__}Config",
                            [o for o in options(cls) if o.name not in ("lr", "epochs", "mode")]
                            + [warmup], doc=_summary(cls), base=NullIsDefault,
                            before={"type": kind_field(kind, doc)})
              for kind, cls in SCHEDULES.items()}
    decay = dispatched("type", "none", decays, SCHEDULES, "decay type")
    doc = "optimizer: " + ", ".join(OPTIMIZERS)
    # what an option's Via gives at another key (the schedule's, under decay) is not here;
    # an experiment file's lr has defaulted to 0.1 whatever the optimizer, and still does
    kinds = {name: section(f"{cls.__name__}Config", [o for o in options(cls) if o.via is None],
                           defaults={"lr": 0.1}, doc=_summary(cls), base=NullIsDefault,
                           before={"name": kind_field(name, doc)},
                           after={"decay": (decay, Field({"type": "none"}))})
             for name, cls in OPTIMIZERS.items()}
    return dispatched("name", "sgd_momentum", kinds, OPTIMIZERS, "optimizer")


ModelConfig, AnyOptimizer = _model_config(), _any_optimizer()


def _registries() -> tuple:
    return tuple(tuple(r.items()) for r in (LAYERS, OPTIMIZERS, SCHEDULES, ACTIVATIONS, LOSSES,
                                            INITIALIZERS, BIAS_INITIALIZERS))


_SEEN = [_registries()]


def refresh() -> None:
    """Make the schema follow its registries again, after an entry was added at run time
    (a plug-in's layer type, a test's optimizer): validation and :func:`json_schema` call
    it, so such an entry needs no other edit."""
    now = _registries()
    if now == _SEEN[0]:
        return
    _SEEN[0] = now
    fields = ExperimentConfig.model_fields
    fields["model"] = FieldInfo.from_annotation(_model_config())
    fields["optimizer"] = FieldInfo.from_annotated_attribute(_any_optimizer(),
                                                             dict(_DEFAULT_OPTIMIZER))
    ExperimentConfig.model_rebuild(force=True)


# -- train ----------------------------------------------------------------------------------
class _Stopping(Strict):
    """An early-stopping mapping whose ``mode``, left out, is the monitored metric's own
    (what the run will use, so ``show`` and the run folder's config say it)."""

    @model_validator(mode="after")
    def _resolved_mode(self):
        if self.mode is None:
            self.mode = METRIC_MODES[self.monitor]  # as EarlyStopping resolves it
        return self


EarlyStoppingConfig = section("EarlyStoppingConfig", options(EarlyStopping), base=_Stopping)
_stopping = _option(Trainer.fit, "early_stopping")
#: keys earlier releases wrote into a run folder's config.yaml (null, or for a run that
#: extends another, that run and the epochs of its schedule): what they said is read from
#: the folder now (:func:`scratchnet.experiment.run.lineage`), never from a config
LEGACY_TRAIN_KEYS = ("schedule_epochs", "extends")


def without_legacy(raw: dict) -> dict:
    """A run folder's saved config without the keys only earlier releases wrote there."""
    train = raw.get("train") if isinstance(raw, dict) else None
    if not isinstance(train, dict) or not set(LEGACY_TRAIN_KEYS) & set(train):
        return raw
    return {**raw, "train": {k: v for k, v in train.items() if k not in LEGACY_TRAIN_KEYS}}


def _early_stopping(value):
    if isinstance(value, str) and value != "notebook":  # else each member's complaint
        *first, last = EarlyStoppingConfig.model_fields
        raise ValueError(f"expected true, false, notebook or a mapping of {', '.join(first)} "
                         f"and {last}")
    return value


TrainConfig = section(
    "TrainConfig", [_option(Trainer.fit, k) for k in ("epochs", "batch_size", "eval_every")],
    # an experiment file's own defaults: a short run, evaluated every epoch (the book's
    # fit defaults to 100 epochs, evaluated every 10)
    defaults={"epochs": 10, "eval_every": 1},
    after={
        "early_stopping": (Annotated[Union[EarlyStoppingConfig, bool, Literal["notebook"]],
                                     BeforeValidator(_early_stopping)],
                           Field(False, description=_stopping.doc)),
        "dtype": field_of(_option(NeuralNetwork, "dtype")),
        "health": (declared(bool, "health", "record every layer's health at each evaluation "
                            "(activation mean and spread, dead and saturated units, gradient "
                            "norms, update-to-weight ratios): printed, and in metrics.jsonl"),
                   Field(False)),
        "checkpoint_every": (declared(Epochs | None, "checkpoint_every", "epochs between "
                                      "checkpoints (default: at every evaluation)"),
                             Field(None))})


class SweepConfig(Strict):
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values")
    seeds: int = Field(1, gt=0, description="runs per grid point, seeds seed, seed+1, ...")


class TrackingConfig(Strict):
    mlflow: bool = Field(False, description="log the run to MLflow (optional extra: mlflow)")
    uri: str | None = Field(None, description="MLflow tracking URI (default: "
                            "sqlite:///<runs folder>/mlflow.db, beside the run folders)")
    experiment: str | None = Field(None, min_length=1, description="MLflow experiment "
                                   "(default: the experiment's name; a sweep's folder name)")




class TuneConfig(Strict):
    space: dict[str, Union[str, list[Any]]] = Field(
        default_factory=dict, description="dotted key -> uniform:LOW:HIGH, loguniform:LOW:HIGH, "
        "int:LOW:HIGH[:STEP|:log] or choice:A,B,... (a list is a choice too)")
    trials: int = Field(20, gt=0, description="trials in the study (a resumed study runs the rest)")
    metric: Literal[TUNE_METRICS] = Field("val_loss", description="the objective: the best "
                                          "value of this validation metric over the evaluations")
    direction: Literal[TUNE_DIRECTIONS] | None = Field(
        None, description=f"default: maximize {HIGHER_IS_BETTER}, minimize the others")
    pruner: Literal[TUNE_PRUNERS] = Field(
        "median", description="stops poor trials early, at an evaluation")
    startup_trials: int = Field(5, ge=0, description="median pruner: trials that run to the "
                                "end before it stops any")
    sampler: Literal[TUNE_SAMPLERS] = Field("tpe", description="how trials are chosen")
    seed: int | None = Field(None, description="seeds the sampler: same seed, same trials")
    storage: str | None = Field(None, description="optuna storage URL (default: "
                                "sqlite:///<tune folder>/study.db)")


#: the longest chain of bases (a file, its base, that one's base, ...) and the most files
#: one experiment reads through them (each list of bases multiplies what a chain reads):
#: :mod:`scratchnet.config.bases`
MAX_BASE_DEPTH, MAX_BASE_FILES = 8, 32
_File = Annotated[str, Field(min_length=1)]
#: what ``base`` takes (checked by :func:`scratchnet.config.bases.base_names` as its files
#: are read)
BaseFiles = _File | Annotated[list[_File], Field(min_length=1, max_length=MAX_BASE_FILES)]


_DEFAULT_OPTIMIZER = {"name": "sgd_momentum"}
_SEED = declared(Seed, "seed", "seeds weights, dropout, shuffling and (unless data.split_seed) "
                 "the data splits")


class ExperimentConfig(Strict):
    # resolved when the file is read (load_config): never in a resolved config
    base: BaseFiles | None = Field(
        None, exclude=True, description="experiment files this one builds on, relative to "
        "it: mappings merge key by key, anything else is replaced, this file's own keys win "
        "(a later base over an earlier); name is not inherited")
    name: str | None = Field(None, description="defaults to the file's stem")
    seed: _SEED = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    optimizer: AnyOptimizer = Field(dict(_DEFAULT_OPTIMIZER))
    train: TrainConfig = Field(default_factory=TrainConfig)
    sweep: SweepConfig | None = Field(None, description="grid and seeds for `scratchnet sweep`")
    tracking: TrackingConfig | None = Field(None, description="experiment tracking (MLflow)")
    tune: TuneConfig | None = Field(None, description="search space and study for `scratchnet tune`")
    _origin: Any = PrivateAttr(None)

    @property
    def origin(self):
        """Where this config came from (:class:`~scratchnet.config.messages.Origin`), so a
        check of the whole experiment can point at the file, line and key."""
        from .messages import Origin

        return self._origin if self._origin is not None else Origin()

    @origin.setter
    def origin(self, value) -> None:
        self._origin = value

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @property
    def split_seed(self) -> int:
        """The seed of the data splits: ``data.split_seed``, else ``seed``."""
        return self.seed if self.data.split_seed is None else self.data.split_seed

    def digest(self) -> str:
        """SHA-256 of the resolved config (stored with each run to detect later edits)."""
        return config_digest(self.to_dict())


def config_digest(config: dict) -> str:
    """SHA-256 of a resolved config (stored with each run to detect later edits)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def json_schema() -> dict:
    """The JSON Schema of the experiment file, for editors."""
    refresh()
    schema = ExperimentConfig.model_json_schema(schema_generator=JsonSchemaGenerator)
    # a file that builds on others may leave the model to its base
    schema["required"].remove("model")
    if not schema["required"]:
        del schema["required"]
    schema["if"] = {"not": {"required": ["base"]}}
    schema["then"] = {"required": ["model"]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "scratchnet experiment"
    return schema


