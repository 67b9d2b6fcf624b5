"""What :class:`~scratchnet.sklearn.ScratchNetClassifier` and
:class:`~scratchnet.sklearn.ScratchNetRegressor` share: their parameters, declared with the
engine's declarations of the options they set (and checked against them at fit time), the
network and optimizer they build, and the training loop. Imported by
:mod:`scratchnet.sklearn` only (it imports scikit-learn)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Annotated

import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

try:  # validate_data and estimator tags as objects arrived in scikit-learn 1.6
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - depends on the installed version
    raise ImportError(f"scratchnet.sklearn needs scikit-learn >= 1.6, found "
                      f"{sklearn.__version__}") from None

from .errors import ConfigError
from .nn import (LAYERS, OPTIMIZERS, Dense, EarlyStopping, NeuralNetwork, Optimizer,
                 SGDMomentum, Trainer)
from .nn.optimizers import LearningRate
from .options import Gt, Lt, Named, check_value, options
from .registry import lookup

__all__ = ["ScratchNetBase"]

_FLOATS = (np.float64, np.float32)


def _declared(cls, name: str):
    """How the engine declares ``cls``'s option ``name``."""
    return next(o.annotation for o in options(cls) if o.name == name)


_Activation = _declared(Dense, "activation")
_WeightInit = _declared(Dense, "weight_init")
_Dropout = _declared(Dense, "dropout")
_Optimizer = Annotated[str, Named(OPTIMIZERS, "optimizer")]
_Decay = _declared(Optimizer, "decay_type")
_FinalLR = _declared(Optimizer, "final_lr")
_Momentum = _declared(SGDMomentum, "momentum")
_Epochs = _declared(Trainer.fit, "epochs")
_BatchSize = _declared(Trainer.fit, "batch_size")
_Patience = _declared(EarlyStopping, "patience")
_MinDelta = _declared(EarlyStopping, "min_delta")
_Dtype = _declared(NeuralNetwork, "dtype")


class ScratchNetBase(BaseEstimator):
    """What the classifier and the regressor share: parameters, network, training loop.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden :class:`~scratchnet.nn.Dense` layer; ``()`` for none
        (a linear model).
    activation : str, default="relu"
        Activation of the hidden layers, a name from
        :data:`~scratchnet.nn.ACTIVATIONS`.
    optimizer : str, default="adam"
        A name from :data:`~scratchnet.nn.OPTIMIZERS`.
    learning_rate : float, default=0.001
        The (initial) learning rate.
    decay : str or None, default=None
        Learning-rate decay over the epochs of a ``fit``: "linear", "exponential",
        "cosine", ... (:data:`~scratchnet.nn.SCHEDULES`); None keeps it constant.
    final_learning_rate : float or None, default=None
        Where the decay ends (required by linear and exponential decay).
    momentum : float, default=0.9
        Momentum of the optimizers that have one (sgd_momentum, nesterov); ignored by
        the others.
    weight_init : str, default="glorot"
        Weight initialiser (:data:`~scratchnet.nn.INITIALIZERS`).
    dropout : float, default=0.0
        Drop rate after every hidden layer while training.
    epochs : int, default=200
        Passes over the training data in ``fit`` (``partial_fit`` makes one).
    batch_size : int, default=32
        Mini-batch size.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop once its loss has
        not improved by ``min_delta`` for ``patience`` epochs; the best weights are kept.
    validation_fraction : float, default=0.1
        The held-out share for early stopping (stratified for the classifier).
    patience : int, default=10
        Epochs without improvement before early stopping ends training.
    min_delta : float, default=0.0
        Smallest decrease of the validation loss that counts as an improvement.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, dropout, shuffling and the validation split.
    dtype : {"float64", "float32"}, default="float64"
        Precision of parameters and activations.
    loss : str or None, default=None
        The classifier's "softmax_cross_entropy" (the default) or "binary_cross_entropy"
        (two classes, one logit output); the regressor's "mse" (the default), "mae" or
        "huber".
    layers : list of dict or None, default=None
        The hidden layers as an experiment file writes them, instead of
        ``hidden_layer_sizes``: ``[{"type": "conv2d", "out_channels": 8, "kernel_size": 3,
        "activation": "relu"}, {"type": "max_pool2d", "size": 2}, {"type": "flatten"},
        {"neurons": 32, "activation": "relu"}]`` (``type`` defaults to dense; the output
        layer is added).
    input_shape : tuple of int or None, default=None
        (channels, height, width): each row of X is an image of this shape, for ``layers``
        that start with a convolution.
    """

    # declared with the engine's declarations of the options they set, and checked against
    # them at fit time (scikit-learn asks __init__ to store its parameters untouched)
    def __init__(self, hidden_layer_sizes=(64,), activation: _Activation = "relu",
                 optimizer: _Optimizer = "adam", learning_rate: LearningRate = 0.001,
                 decay: _Decay = None, final_learning_rate: _FinalLR = None,
                 momentum: _Momentum = 0.9, weight_init: _WeightInit = "glorot",
                 dropout: _Dropout = 0.0, epochs: _Epochs = 200, batch_size: _BatchSize = 32,
                 early_stopping: bool = False,
                 validation_fraction: Annotated[float, Gt(0), Lt(1)] = 0.1,
                 patience: _Patience = 10, min_delta: _MinDelta = 0.0, random_state=None,
                 dtype: _Dtype = "float64", loss: str | None = None,
                 layers: list[dict] | None = None,
                 input_shape: Sequence[int] | None = None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.decay = decay
        self.final_learning_rate = final_learning_rate
        self.momentum = momentum
        self.weight_init = weight_init
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.min_delta = min_delta
        self.random_state = random_state
        self.dtype = dtype
        self.loss = loss
        self.layers = layers
        self.input_shape = input_shape

    # -- what subclasses say -----------------------------------------------------------
    #: the losses the estimator trains with, its default first
    _losses: tuple[str, ...] = ()
    _stratify = False

    def _encode_targets(self, y, incremental: bool, classes=None) -> np.ndarray:
        """y as validated by ``validate_data`` -> the 2-D float target the network learns."""
        raise NotImplementedError

    # -- parameters, checked at fit time (sklearn asks __init__ to only store them) ----
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ConfigError(f"hidden_layer_sizes must be a tuple of positive integers, "
                              f"got {self.hidden_layer_sizes!r}") from None
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ConfigError(f"hidden_layer_sizes must hold positive integers, got "
                                  f"{self.hidden_layer_sizes!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        """Every parameter against its declaration (a ConfigError, a ValueError too)."""
        for o in options(type(self)):
            check_value(getattr(self, o.name), o.annotation, o.name)
        lookup(self._losses, self._loss_name(), "loss")

    def _loss_name(self) -> str:
        return self._losses[0] if self.loss is None else self.loss

    def _hidden_layers(self) -> list:
        """``layers`` as engine layers, or Dense layers of ``hidden_layer_sizes``."""
        if self.layers is None:
            # Dense checks activation, weight_init and dropout and quotes a bad value.
            return [Dense(h, activation=self.activation, weight_init=self.weight_init,
                          dropout=self.dropout) for h in self._hidden_sizes()]
        out = []
        for spec in self.layers:
            if not isinstance(spec, dict):
                raise ConfigError(f"layers must hold mappings such as {{'neurons': 32}}, got "
                                  f"{spec!r}")
            options = {k: v for k, v in spec.items() if k != "type"}
            out.append(lookup(LAYERS, spec.get("type", "dense"), "layer type")(**options))
        return out

    def _sample_shape(self, n_features: int) -> tuple:
        """What a row of X is to the network: ``input_shape``, or its features."""
        if self.input_shape is None:
            return (n_features,)
        shape = tuple(self.input_shape)
        if math.prod(shape) != n_features:
            raise ValueError(f"input_shape {shape} holds {math.prod(shape)} values, but X has "
                             f"{n_features} features")
        return shape

    def _build_network(self, n_inputs: int, n_outputs: int, seed: int) -> NeuralNetwork:
        layers = [*self._hidden_layers(),
                  Dense(n_outputs, activation="linear", weight_init=self.weight_init)]
        return NeuralNetwork(layers, self._loss_name(), seed=seed,
                             dtype=self.dtype).build(self._sample_shape(n_inputs))

    def _build_optimizer(self) -> Optimizer:
        cls = lookup(OPTIMIZERS, self.optimizer, "optimizer")
        kwargs = {}
        if self.decay not in (None, "none"):
            kwargs.update(decay_type=self.decay, final_lr=self.final_learning_rate)
        if "momentum" in [o.name for o in options(cls)]:
            kwargs["momentum"] = self.momentum
        return cls(self.learning_rate, **kwargs)

    # -- training ----------------------------------------------------------------------
    def _validate_training_data(self, X, y, reset: bool):
        raise NotImplementedError

    def _fit(self, X, y, *, incremental: bool, classes=None):
        self._check_params()
        first = not incremental or not hasattr(self, "_trainer")
        X, y = self._validate_training_data(X, y, reset=first)
        Y = self._encode_targets(y, incremental=not first, classes=classes)
        X = np.asarray(X, dtype=self.dtype)
        X = X.reshape((len(X), *self._sample_shape(X.shape[1])))
        if first:
            rng = check_random_state(self.random_state)
            # One draw for the network (initial weights, dropout) and a generator for
            # everything drawn per fit / per partial_fit call (shuffling, the split).
            seed = int(rng.randint(np.iinfo(np.int32).max))
            self._rng = np.random.default_rng(int(rng.randint(np.iinfo(np.int32).max)))
            self.network_ = self._build_network(math.prod(X.shape[1:]), Y.shape[1], seed)
            self._trainer = Trainer(self.network_, self._build_optimizer())
            self.loss_curve_ = []
            self.validation_loss_curve_ = [] if (self.early_stopping and not incremental) else None
            self.n_iter_ = 0
            self.best_epoch_ = None
        shuffle_seed = int(self._rng.integers(np.iinfo(np.int32).max))
        X_val = Y_val = None
        stopper: bool | EarlyStopping = False
        if self.early_stopping and not incremental:
            X, X_val, Y, Y_val = self._split(X, Y, shuffle_seed)
            stopper = EarlyStopping(patience=self.patience, min_delta=self.min_delta,
                                    restore_best=True)
        # eval_every=1: the trainer records the training loss at each evaluation, and
        # loss_curve_ is per epoch. Without validation data an evaluation is only a record.
        history = self._trainer.fit(
            X, Y, X_val, Y_val, epochs=1 if incremental else self.epochs, eval_every=1,
            batch_size=self.batch_size, seed=shuffle_seed, restart=first,
            early_stopping=stopper)
        self.loss_curve_ += [r["train_loss"] for r in history.records]
        if self.validation_loss_curve_ is not None:
            self.validation_loss_curve_ += [r["val_loss"] for r in history.records]
        self.n_iter_ += history.epochs_run
        if not incremental:
            self.best_epoch_ = history.best_epoch if self.early_stopping else None
        return self

    def _split(self, X, Y, seed: int):
        """Hold out ``validation_fraction`` of the rows (at least one), stratified when
        every class can give a row, plainly otherwise (tiny data sets)."""
        n = len(X)
        if n < 2:
            raise ValueError(f"early_stopping holds out validation data, which needs at "
                             f"least 2 samples; got n_samples = {n}")
        n_val = min(max(1, round(self.validation_fraction * n)), n - 1)
        if self._stratify:
            try:
                labels = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0]
                return train_test_split(X, Y, test_size=n_val, random_state=seed,
                                        stratify=labels)
            except ValueError:  # a class with one row, or fewer held-out rows than classes
                pass
        return train_test_split(X, Y, test_size=n_val, random_state=seed)

    def _forward(self, X, proba: bool = False) -> np.ndarray:
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, reset=False, dtype=_FLOATS), dtype=self.dtype)
        X = X.reshape((len(X), *self.network_.input_shape))
        out = self.network_.predict_proba(X) if proba else self.network_.predict(X)
        # float64 out whatever the network's dtype, as scikit-learn's metrics expect
        return out.astype(np.float64, copy=False)

    def fit(self, X, y):
        """Train from freshly initialised weights for ``epochs`` epochs; returns self."""
        return self._fit(X, y, incremental=False)
