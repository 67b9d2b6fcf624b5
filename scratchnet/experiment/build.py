"""From a validated config to the parts training needs: the data, the network, the
optimizer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..config import ExperimentConfig
from ..config.declared import config_key, engine_kwargs
from ..data import Dataset, Prepared, TextData, load_dataset, prepare
from ..data.download import Progress
from ..errors import ConfigError, DropoutRateWarning
from ..nn import (LAYERS, OPTIMIZERS, EarlyStopping, Layer, Loss, NeuralNetwork, Optimizer,
                  get_loss)
from ..options import AUTO, options


def keyed(key: tuple, make, *args, **kwargs):
    """``make(*args, **kwargs)``; a ConfigError it raises, whose ``key`` names the option
    at fault relative to what ``make`` was given, comes out with ``key`` (a section of the
    experiment file) in front, so it points at the line of the file it came from."""
    try:
        return make(*args, **kwargs)
    except ConfigError as e:
        raise ConfigError(str(e), key=tuple(key) + e.key) from None


def build_layer(layer, sizes: dict[str, int] | None = None) -> Layer:
    """One entry of ``model.layers`` as the engine's layer of its ``type``
    (:data:`~scratchnet.nn.LAYERS`); not built: no weights until it sees its input. An
    option given as ``auto`` (:class:`~scratchnet.options.FromData`) takes the data's
    size it names from ``sizes`` (``outputs``, ``vocabulary``; 1 where the data is not
    known, so that the rest of the layer can still be checked)."""
    cls = LAYERS[layer.type]
    given = layer.model_dump(exclude={"type"})
    for o in options(cls):
        if o.from_data is not None and given.get(o.name) == AUTO:
            given[o.name] = (sizes or {}).get(o.from_data.size, 1)
    with warnings.catch_warnings():  # an experiment file says `dropout: 0.5` on purpose
        warnings.simplefilter("ignore", DropoutRateWarning)
        return cls(**given)


def build_loss(cfg: ExperimentConfig) -> Loss:
    return get_loss(cfg.model.loss)


def build_network(cfg: ExperimentConfig, input_shape=None, *,
                  layers: list[Layer] | None = None, loss: Loss | None = None,
                  sizes: dict[str, int] | None = None) -> NeuralNetwork:
    """The configured network (built at once when ``input_shape`` is given: the features
    of a row, (channels, height, width) images, (time, features) sequences or (time,)
    ids), from the ``layers`` and ``loss`` already made, when the caller made them; its
    ``auto`` options from the data's ``sizes`` (:func:`data_sizes`)."""
    if layers is None:
        layers = [keyed(("model", "layers", i), build_layer, layer, sizes)
                  for i, layer in enumerate(cfg.model.layers)]
    if loss is None:
        loss = keyed(("model", "loss"), build_loss, cfg)
    net = keyed(("model",), NeuralNetwork, layers, loss, seed=cfg.seed, dtype=cfg.train.dtype,
                input_dropout=cfg.model.input_dropout)
    if input_shape is not None:
        net.build(input_shape)
    return net


def data_sizes(outputs: int, vocabulary: int | None = None) -> dict[str, int]:
    """What an ``auto`` option (:class:`~scratchnet.options.FromData`) can take from the
    data: ``outputs``, the width its targets need, and for a text ``vocabulary``."""
    return {"outputs": int(outputs), **({"vocabulary": int(vocabulary)} if vocabulary else {})}


def as_samples(X: np.ndarray, input_shape) -> np.ndarray:
    """Flat rows (n, features) as the network's samples: themselves for a dense network,
    a view of shape (n, channels, height, width) for one that takes images (rows that
    are scaled as they are read, :class:`~scratchnet.data.scaled.ScaledRows`, are read
    as such images)."""
    return X.reshape((len(X), *tuple(input_shape)))


def target_encoding(loss, task: str) -> str:
    """How the labels are given to this loss: ``one_hot``, ``binary`` or ``value``."""
    if task != "classification":
        return "value"
    return loss.targets or "one_hot"


def build_optimizer(cfg: ExperimentConfig, schedule_epochs: int | None = None) -> Optimizer:
    """The configured optimizer, its schedule checked over the run's epochs (or
    ``schedule_epochs``, a run extending another); a ConfigError names the key it is
    about (``optimizer.decay.final_lr``), where the engine names its option."""
    cls = OPTIMIZERS[cfg.optimizer.name]
    given = cfg.optimizer.model_dump(exclude={"name"})
    try:
        optimizer = cls(**engine_kwargs(cls, given))
        optimizer.schedule(schedule_epochs or cfg.train.epochs)
    except ConfigError as e:
        raise ConfigError(str(e), key=("optimizer", *config_key(cls, e.key))) from None
    return optimizer


def early_stopping_of(cfg: ExperimentConfig) -> EarlyStopping:
    es = cfg.train.early_stopping
    if isinstance(es, (bool, str)):  # true, false or "notebook"
        return EarlyStopping.of(es)
    return EarlyStopping(**es.model_dump())


def data_options(cfg: ExperimentConfig, data_dir: str | None = None,
                 found_at: str | None = None) -> dict:
    """The configured dataset as :func:`~scratchnet.data.load_dataset`'s arguments.
    ``found_at`` is where a run found it (data.json's ``source``), searched first."""
    d = cfg.data
    path = d.path or found_at
    if d.source is not None and found_at is not None:  # a known corpus: look there first
        path, data_dir = d.path, data_dir or str(Path(found_at).parent)
    return {"path": path, "data_dir": data_dir, "target": d.target, "task": d.task,
            "test_fraction": d.test_fraction, "seed": cfg.split_seed,
            "validation": d.validation, "source": d.source, "seq_len": d.seq_len,
            "stride": d.stride, "streams": d.streams, "length": d.length, "samples": d.samples}


def load_data(cfg: ExperimentConfig, data_dir: str | None = None, download: bool = True,
              progress: Progress | None = None,
              found_at: str | None = None) -> Dataset | TextData:
    """The configured dataset (``progress`` hears about a download, when one is needed)."""
    return load_dataset(cfg.data.dataset, **data_options(cfg, data_dir, found_at),
                        download=download, progress=progress)


def prepare_data(cfg: ExperimentConfig, data_dir: str | None = None,
                 progress: Progress | None = None, targets: str | None = None,
                 lazy: bool = False, found_at: str | None = None) -> Prepared | TextData:
    """Load and prepare the configured data (split, scaling fitted on train, targets
    encoded as ``targets`` says: :func:`target_encoding`); ``lazy`` keeps 8-bit images
    8-bit, scaled a batch at a time (:class:`~scratchnet.data.scaled.ScaledRows`);
    ``found_at``: where a run found it before (:func:`load_data`). A text comes prepared:
    windows of ids, never scaled (:class:`~scratchnet.data.TextData`)."""
    ds = load_data(cfg, data_dir, progress=progress, found_at=found_at)
    if isinstance(ds, TextData):
        return ds
    return prepare(ds, scale=cfg.data.scale,
                   validation=cfg.data.validation, seed=cfg.split_seed, dtype=cfg.train.dtype,
                   targets=targets, target_scale=cfg.data.target_scale, lazy=lazy)


def data_info(data: Prepared | TextData, targets: str, input_shape) -> dict:
    """What evaluation and prediction need to transform inputs as training did (the
    scaling, the sample shape the network takes), and where the data was found (so
    ``eval`` needs no ``--data-dir`` again); for a data set read from one file, that
    file's size and SHA-256 (so ``eval`` can tell it changed); each feature's training
    range (so ``predict`` can tell an input far outside it)."""
    from ..ranges import training_range

    if isinstance(data, TextData):  # its vocabulary, and how the text was cut
        return data.info()
    return {"task": data.task, "classes": list(data.classes), "feature_names": list(data.feature_names),
            "image_shape": list(data.image_shape) if data.image_shape else None,
            "n_features": int(data.n_features), "n_outputs": int(data.n_outputs),
            "input_shape": [int(n) for n in input_shape],
            "targets": targets, "source": data.source, "source_file": data.fingerprint,
            "scaler": data.scaler.to_dict(),
            "target_scaler": data.target_scaler.to_dict() if data.target_scaler else None,
            "feature_range": training_range(data.X_train, data.scaler)}


