"""The experiment file's schema: pydantic models with unknown keys forbidden.

Names that refer to registries (activations, initialisers, losses, optimizers, decays,
datasets, scalers, dtypes) are checked with the one registry lookup, so a new registry
entry is accepted in experiment files the day it is added.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, PrivateAttr,
                      Tag, field_validator, model_validator)

from ..constants import TUNE_DIRECTIONS, TUNE_METRICS, TUNE_PRUNERS, TUNE_SAMPLERS
from ..data import DATASETS, SCALERS
from ..nn import (ACTIVATIONS, BIAS_INITIALIZERS, DTYPES, INITIALIZERS, LOSSES, OPTIMIZERS,
                  SCHEDULES)
from ..registry import check_options, lookup


#: the first line of every shipped config: editors with the YAML language server check and
#: complete the file against the schema
SCHEMA_URL_COMMENT = "# yaml-language-server: $schema=../scratchnet.schema.json"


def registered(registry, what: str):
    """The type of a field holding one of ``registry``'s names (an ``enum`` in the JSON
    Schema, so editors flag a misspelt name as it is typed)."""
    def check(value: str) -> str:
        lookup(registry, value, what)
        return value
    return Annotated[str, AfterValidator(check), Field(json_schema_extra={"enum": list(registry)})]


def named_spec(registry, what: str):
    """The type of a field holding a registry name, or a mapping ``{name: ..., <options of
    that entry's constructor>}`` (``{name: leaky_relu, negative_slope: 0.1}``)."""
    def check(value):
        if isinstance(value, dict):
            if not isinstance(value.get("name"), str):
                raise ValueError(f"a {what} given as a mapping needs a 'name' key, "
                                 f"got {value!r}")
            cls = lookup(registry, value["name"], what)
            check_options(cls, value["name"], what, [k for k in value if k != "name"])
        return value
    return Annotated[Union[registered(registry, what), dict[str, Any]], AfterValidator(check)]


DatasetName = registered(DATASETS, "dataset")
ScalerName = registered(SCALERS, "scale")
InitializerName = registered(INITIALIZERS, "weight_init")
BiasInitName = registered(BIAS_INITIALIZERS, "bias_init")
ScheduleName = registered(SCHEDULES, "decay type")
OptimizerName = registered(OPTIMIZERS, "optimizer")
DtypeName = registered(DTYPES, "dtype")
ActivationSpec = named_spec(ACTIVATIONS, "activation")
LossSpec = named_spec(LOSSES, "loss")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


PositiveInt = Annotated[int, Field(gt=0)]
#: an int, or a pair [height, width]
IntOrPair = Union[PositiveInt, tuple[PositiveInt, PositiveInt]]


class DataConfig(Strict):
    dataset: DatasetName = Field("digits", description="mnist, fashion_mnist, digits, iris, wine, "
                         "breast_cancer, diabetes, csv or npz")
    path: str | None = Field(None, description="a CSV or .npz file, or a folder holding the "
                             "MNIST files")
    target: str | None = Field(None, description="CSV: the target column")
    task: Literal["classification", "regression"] | None = Field(
        None, description="CSV: override the task inferred from the target column")
    scale: ScalerName = Field("standard", description="global (one mean/std, the notebook's), "
                       "standard (per feature), minmax, none; fitted on the training part only")
    validation: Union[float, Literal["test"]] = Field(
        0.1, description='fraction of the training data held out, or "test" for the '
                         "notebook's protocol (evaluate on the test split)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test split for data sets "
                                 "without one")
    shape: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        None, description="[channels, height, width]: each row of the data is an image of "
        "this shape (for a network that starts with a convolution)")
    target_scale: Literal["none", "standard"] = Field(
        "none", description="regression: standard trains on targets of mean 0 and spread 1 "
        "(fitted on the training part); metrics and predictions stay in the data's units")
    split_seed: int | None = Field(None, ge=0, description="seeds the train/test split (CSV "
                                   "and bundled sets) and the validation split; default: "
                                   "seed. The weights, dropout and shuffling keep seed")

    @field_validator("validation")
    @classmethod
    def _validation(cls, v):
        if v != "test" and not 0 < v < 1:
            raise ValueError(f'validation must be a fraction in (0, 1) or "test", got {v!r}')
        return v


class _Unit(Strict):
    """What every layer with weights takes besides its own settings."""

    activation: ActivationSpec = Field(
        "linear", description="activation name, or {name: ..., <options>}")
    weight_init: InitializerName = Field(
        "glorot", description="weight initialiser")
    bias_init: BiasInitName = Field(
        "zeros", description="zeros, or normal (the notebook's)")
    dropout: float = Field(0.0, ge=0, lt=1, description="drop rate after the activation")
    batch_norm: bool = Field(False, description="batch normalisation before the activation")


class LayerConfig(_Unit):
    """A dense (fully connected) layer, the default ``type``."""

    type: Literal["dense"] = Field("dense", description="dense (the default), conv2d, "
                                   "max_pool2d, avg_pool2d or flatten")
    neurons: int = Field(..., gt=0, description="output width of the layer")


class Conv2DConfig(_Unit):
    """A 2-D convolution over (channels, height, width) images."""

    type: Literal["conv2d"]
    out_channels: int = Field(..., gt=0, description="number of filters")
    kernel_size: IntOrPair = Field(..., description="an int, or [height, width]")
    stride: IntOrPair = Field(1, description="an int, or [height, width]")
    padding: Union[Literal["same", "valid"], Annotated[int, Field(ge=0)],
                   tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]] = Field(
        "same", description="same (output ceil(size / stride)), valid (none), or zeros on "
        "each side: an int or [rows, columns]")
    flatten: bool = Field(False, description="flatten the output (the book's flatten=True)")


class _PoolConfig(Strict):
    size: IntOrPair = Field(..., description="window: an int, or [height, width]")
    stride: IntOrPair | None = Field(None, description="default: the window size")


class MaxPool2DConfig(_PoolConfig):
    type: Literal["max_pool2d"]


class AvgPool2DConfig(_PoolConfig):
    type: Literal["avg_pool2d"]


class FlattenConfig(Strict):
    type: Literal["flatten"]


#: layer type -> its schema; the engine's LAYERS maps the same names to the classes
LAYER_CONFIGS: dict[str, type[Strict]] = {
    "dense": LayerConfig, "conv2d": Conv2DConfig, "max_pool2d": MaxPool2DConfig,
    "avg_pool2d": AvgPool2DConfig, "flatten": FlattenConfig}


def _layer_type(value):
    """Which schema a layer entry follows: its ``type``, dense when it has none (an
    unknown type is pydantic's "union_tag_invalid", which the error line names)."""
    if isinstance(value, dict):
        kind = value.get("type", "dense")
        return kind if isinstance(kind, str) else repr(kind)
    return getattr(value, "type", "dense")


AnyLayer = Annotated[Union[tuple(Annotated[cls, Tag(name)] for name, cls in LAYER_CONFIGS.items())],
                     Discriminator(_layer_type)]


class ModelConfig(Strict):
    layers: list[AnyLayer] = Field(..., min_length=1)
    loss: LossSpec = Field("softmax_cross_entropy", description="loss name, "
                           "or {name: ..., <options>}")
    input_dropout: float = Field(0.0, ge=0, lt=1, description="drop rate on the input "
                                 "features while training (e.g. 0.2 on MNIST pixels)")


class DecayConfig(Strict):
    type: ScheduleName = Field("none", description="learning-rate schedule: " + ", ".join(SCHEDULES))
    final_lr: float | None = Field(None, ge=0)
    step_size: int | None = Field(None, gt=0, description="step: epochs between drops")
    gamma: float | None = Field(None, gt=0, le=1, description="step: factor at each drop")
    factor: float | None = Field(None, gt=0, lt=1, description="plateau: factor on a plateau")
    patience: int | None = Field(None, gt=0, description="plateau: evaluations to wait")
    min_lr: float | None = Field(None, ge=0, description="plateau: lower bound")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up epochs before the schedule")

    def kwargs(self) -> dict:
        """Schedule options beyond type and final_lr, as the schedule takes them."""
        return {k: v for k, v in self.model_dump().items()
                if k not in ("type", "final_lr") and v is not None and not (k == "warmup_epochs" and v == 0)}


#: the optimizer settings that go to its constructor when given
OPTIMIZER_OPTIONS = ("momentum", "beta1", "beta2", "rho", "eps", "weight_decay", "clip_norm")


class OptimizerConfig(Strict):
    name: OptimizerName = Field("sgd_momentum", description="optimizer: " + ", ".join(OPTIMIZERS))
    lr: float = Field(0.1, gt=0, description="(initial) learning rate")
    momentum: float | None = Field(None, ge=0, lt=1)
    beta1: float | None = Field(None, ge=0, lt=1)
    beta2: float | None = Field(None, ge=0, lt=1)
    rho: float | None = Field(None, ge=0, lt=1)
    eps: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0, description="L2 on weights (decoupled for adamw)")
    clip_norm: float | None = Field(None, gt=0, description="clip gradients by global norm")
    decay: DecayConfig = Field(default_factory=DecayConfig)

    @model_validator(mode="after")
    def _options_fit(self):
        check_options(OPTIMIZERS[self.name], self.name, "optimizer", self.options())
        return self

    def options(self) -> dict:
        """The optimizer options given (momentum, betas, ...), as its constructor takes them."""
        return {k: getattr(self, k) for k in OPTIMIZER_OPTIONS if getattr(self, k) is not None}


class EarlyStoppingConfig(Strict):
    patience: int = Field(1, gt=0, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest decrease that counts as better")
    restore_best: bool = Field(True, description="put back the best weights at the end")


class TrainConfig(Strict):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_every: int = Field(1, gt=0, description="evaluate every N epochs (and at the last)")
    early_stopping: Union[EarlyStoppingConfig, bool, Literal["notebook"]] = Field(
        False, description="false, true (stop at the first evaluation that does not improve, "
        "restore the best), options, or notebook (the notebook's trainer: stop there and put "
        "back the copy taken at the start of that epoch, weights never evaluated)")
    dtype: DtypeName = Field("float32", description="float32 or float64")
    health: bool = Field(False, description="record every layer's health at each evaluation "
                         "(activation mean and spread, dead and saturated units, gradient "
                         "norms, update-to-weight ratios): printed, and in metrics.jsonl")
    checkpoint_every: int | None = Field(None, gt=0, description="epochs between checkpoints "
                                         "(default: at every evaluation)")
    schedule_epochs: int | None = Field(None, gt=0, description="epochs the learning-rate "
                                        "schedule is laid out over (default: epochs); an "
                                        "extended run keeps its original schedule")
    extends: str | None = Field(None, description="the run folder this run continues "
                                "(written by `train --resume RUN --set train.epochs=N` when "
                                "N is more than the run's epochs)")

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _early_stopping(cls, v):
        if isinstance(v, str) and v != "notebook":  # else pydantic lists every member's complaint
            raise ValueError("expected true, false, notebook or a mapping of patience, "
                             "min_delta and restore_best")
        return v


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
        None, description="default: maximize accuracy and r2, minimize the others")
    pruner: Literal[TUNE_PRUNERS] = Field(
        "median", description="stops poor trials early, at an evaluation")
    startup_trials: int = Field(5, ge=0, description="median pruner: trials that run to the "
                                "end before it stops any")
    sampler: Literal[TUNE_SAMPLERS] = Field("tpe", description="how trials are chosen")
    seed: int | None = Field(None, description="seeds the sampler: same seed, same trials")
    storage: str | None = Field(None, description="optuna storage URL (default: "
                                "sqlite:///<tune folder>/study.db)")


class ExperimentConfig(Strict):
    name: str | None = Field(None, description="defaults to the file's stem")
    seed: int = Field(0, ge=0, description="seeds weights, dropout, shuffling and (unless "
                      "data.split_seed) the data splits")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
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
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def json_schema() -> dict:
    """The JSON Schema of the experiment file, for editors."""
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "scratchnet experiment"
    return schema


