"""A run's ``data.json`` read back and checked, so that a damaged or edited one is one
line naming the file and the key, never an error deep inside evaluation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr,
                      ValidationError, field_validator, model_validator)

from .. import runs
from ..config.messages import Origin, format_validation_errors
from ..data import Scaler, Vocabulary
from ..errors import ConfigError, DataError


class SourceFile(BaseModel):
    """The size and SHA-256 of the one file a data set was read from (a CSV file)."""

    model_config = ConfigDict(strict=True)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class FeatureRange(BaseModel):
    """Each feature's lowest and highest training value, in the data's own units
    (:func:`~scratchnet.ranges.training_range`), which ``predict`` warns against."""

    model_config = ConfigDict(strict=True)
    min: list[Annotated[float, Field(allow_inf_nan=False)]]
    max: list[Annotated[float, Field(allow_inf_nan=False)]]

    @model_validator(mode="after")
    def _paired(self) -> "FeatureRange":
        if len(self.min) != len(self.max):
            raise ValueError(f"{len(self.min)} min values for {len(self.max)} max values")
        return self


class SavedData(BaseModel):
    """``data.json``: what :func:`~scratchnet.experiment.build.data_info` writes."""

    model_config = ConfigDict(strict=True, extra="ignore")
    task: Literal["classification", "regression"]
    classes: list[Union[StrictInt, StrictFloat, StrictStr]]
    feature_names: list[StrictStr]
    image_shape: list[Annotated[int, Field(gt=0)]] | None = None
    n_features: int = Field(gt=0)
    n_outputs: int = Field(gt=0)
    targets: Literal["one_hot", "binary", "value", "ids"] | None = None
    source: str | None = None
    source_file: SourceFile | None = None
    scaler: dict
    target_scaler: dict | None = None
    feature_range: FeatureRange | None = None  # (runs trained before it was recorded: none)
    #: a text run's (:meth:`~scratchnet.data.TextData.info`): its kind and vocabulary
    kind: Literal["text"] | None = None
    vocabulary: dict | None = None

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary(cls, saved: dict | None) -> dict | None:
        if saved is not None:
            try:
                Vocabulary.from_dict(saved)
            except DataError as e:
                raise ValueError(str(e)) from None
        return saved

    @field_validator("scaler", "target_scaler")
    @classmethod
    def _scaler(cls, saved: dict | None) -> dict | None:
        """A scaling that rebuilds: its kind known, its numbers finite (a NaN would make
        every input NaN, and every prediction the same)."""
        try:
            saved is None or Scaler.from_dict(saved)
        except (ConfigError, AttributeError) as e:
            raise ValueError(str(e)) from None
        return saved

    @model_validator(mode="after")
    def _consistent(self) -> "SavedData":
        if len(self.feature_names) != self.n_features:
            raise ValueError(f"{len(self.feature_names)} feature_names for n_features "
                             f"{self.n_features}")
        if self.image_shape is not None and math.prod(self.image_shape) != self.n_features:
            raise ValueError(f"image_shape {self.image_shape} does not hold n_features "
                             f"{self.n_features} values")
        if self.kind == "text":
            size = None if self.vocabulary is None else len(self.vocabulary["chars"]) + 1
            if self.targets != "ids" or size != self.n_outputs:
                raise ValueError(f"a text run's targets are ids (got {self.targets}) of a "
                                 f"vocabulary of n_outputs {self.n_outputs} (got {size})")
        if self.task == "classification":
            outputs = 1 if self.targets == "binary" else len(self.classes)
            if len(self.classes) < 2 or self.n_outputs != outputs:
                raise ValueError(f"{len(self.classes)} classes for n_outputs {self.n_outputs}")
        scaler = Scaler.from_dict(self.scaler)  # (checked below)
        if scaler.n_features not in (None, self.n_features):
            raise ValueError(f"the scaler is fitted on {scaler.n_features} features, not "
                             f"n_features {self.n_features}")
        return self


def read_data_info(run_dir: str | Path) -> dict:
    """A run's ``data.json`` (a ConfigError when the folder has none: it is not a complete
    run), checked: a DataError names the file, the key and what is wrong with it."""
    path = Path(run_dir) / runs.DATA
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{run_dir}: not a complete run folder (no {runs.DATA})")
    info = runs.read_json(path)
    try:
        SavedData.model_validate(info)
    except ValidationError as err:
        raise DataError(format_validation_errors(err, Origin(str(path)), SavedData)[0]) from None
    return info
