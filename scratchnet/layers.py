"""Layers: named sequences of operations whose parameters are created lazily.

A :class:`Dense` layer is [WeightMultiply, BiasAdd, activation, (Dropout)]. Its weights
are created at the first forward pass (or an explicit :meth:`Layer.build`), once the
input width is known, from the generator the network hands it.
"""

from __future__ import annotations

import copy

import numpy as np

from .activations import Activation, get_activation
from .core import BiasAdd, Dropout, Operation, Param, WeightMultiply
from .errors import ConfigError, ShapeError
from .initializers import BIAS_INITS, get_initializer


class Layer:
    """A sequence of operations built once the input width is known."""

    def __init__(self, neurons: int):
        if not isinstance(neurons, (int, np.integer)) or isinstance(neurons, bool) or neurons < 1:
            raise ConfigError(f"neurons must be a positive integer, got {neurons!r}")
        self.neurons = int(neurons)
        self.operations: list[Operation] = []
        self.built = False
        self.fan_in: int | None = None

    # -- building ------------------------------------------------------------------
    def build(self, fan_in: int, rng: np.random.Generator, dtype, dropout_rng=None) -> None:
        self.fan_in = int(fan_in)
        self.operations = self._make_operations(self.fan_in, rng, np.dtype(dtype), dropout_rng)
        self.built = True

    def _make_operations(self, fan_in, rng, dtype, dropout_rng) -> list[Operation]:
        raise NotImplementedError

    # -- passes --------------------------------------------------------------------
    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        if not self.built:
            raise ShapeError(f"{type(self).__name__} used before it was built")
        for op in self.operations:
            x = op.forward(x, inference)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        for op in reversed(self.operations):
            grad = op.backward(grad)
        return grad

    def set_needs_input_grad(self, needed: bool) -> None:
        """Whether the layer's input gradient is read (False for a network's first layer)."""
        if self.operations:
            self.operations[0].needs_input_grad = needed

    def params(self) -> list[Param]:
        return [p for op in self.operations for p in op.params()]

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state saved with the weights (running statistics and the like)."""
        return {}

    @property
    def n_params(self) -> int:
        return sum(p.value.size for p in self.params())

    def describe(self) -> str:
        return type(self).__name__


class Dense(Layer):
    """A fully connected layer: ``activation(x @ W + B)``, then optional dropout.

    Args:
        neurons: output width.
        activation: an :class:`Activation` instance or its config name.
        weight_init: an initialiser name from :data:`~scratchnet.initializers.INITIALIZERS`.
        dropout: the drop rate in [0, 1) applied after the activation while training.
        bias_init: "zeros" (default) or "normal" (drawn like the weights, as the notebook did).
    """

    def __init__(self, neurons: int, activation: Activation | str | None = None,
                 weight_init: str = "glorot", dropout: float = 0.0, bias_init: str = "zeros"):
        super().__init__(neurons)
        self.activation = get_activation(activation)
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be a rate in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        if bias_init not in BIAS_INITS:
            raise ConfigError(f"unknown bias_init {bias_init!r}; expected one of: {', '.join(BIAS_INITS)}")
        self.bias_init = bias_init

    def _make_operations(self, fan_in, rng, dtype, dropout_rng) -> list[Operation]:
        shape = (fan_in, self.neurons)
        W = self.initializer(shape, rng, dtype)
        if self.bias_init == "normal":
            std = self.initializer.std(fan_in, self.neurons)
            B = (rng.standard_normal((1, self.neurons)) * std).astype(dtype)
        else:
            B = np.zeros((1, self.neurons), dtype=dtype)
        # A copy, so one activation instance passed to two layers keeps two caches.
        activation = copy.copy(self.activation)
        ops: list[Operation] = [WeightMultiply(Param(W, "W")), BiasAdd(Param(B, "B")), activation]
        if self.dropout > 0:
            ops.append(Dropout(self.dropout, dropout_rng))
        return ops

    def describe(self) -> str:
        text = f"Dense({self.neurons}, {self.activation.name or type(self.activation).__name__}"
        if self.dropout:
            text += f", dropout={self.dropout:g}"
        return text + ")"

    def __repr__(self) -> str:
        return (f"Dense(neurons={self.neurons}, activation={type(self.activation).__name__}(), "
                f"weight_init={self.weight_init!r}, dropout={self.dropout})")


LAYERS: dict[str, type[Layer]] = {"dense": Dense}
