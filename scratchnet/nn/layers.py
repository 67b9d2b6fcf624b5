"""Layers: named sequences of operations whose parameters are created lazily.

A :class:`Dense` layer is [WeightMultiply, BiasAdd, activation, (Dropout)]. Its weights
are created at the first forward pass (or an explicit :meth:`Layer.build`), once the
input width is known, from the generator the network hands it.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from .. import checks
from ..errors import ConfigError, DropoutRateWarning, ShapeError
from ..registry import lookup
from .activations import Activation, get_activation
from .core import BiasAdd, Dropout, Operation, Param, WeightMultiply
from .initializers import BIAS_INITIALIZERS, get_initializer
from .normalization import BatchNorm


class Layer:
    """A sequence of operations built once the input width is known."""

    def __init__(self, neurons: int):
        self.neurons = checks.positive_int(neurons, "neurons")
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

    # -- shapes, known before any weight exists -----------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        """The shape of one sample's output for one sample's input (batch left out);
        ShapeError when the layer cannot take that input."""
        raise NotImplementedError

    def param_count(self, input_shape: tuple) -> int:
        """How many trained numbers the layer will hold for that input."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class Dense(Layer):
    """A fully connected layer: ``activation(x @ W + B)``, then optional dropout.

    With ``batch_norm=True`` it is ``activation(BatchNorm(x @ W))``: batch normalisation
    between the product and the activation, whose ``beta`` takes the place of the bias
    (a bias before a normalisation would be subtracted away), so the layer's parameters are
    ``W``, ``gamma`` and ``beta``, and its running statistics are its buffers.

    Args:
        neurons: output width.
        activation: an :class:`Activation` instance or its config name.
        weight_init: an initialiser name from :data:`~scratchnet.initializers.INITIALIZERS`.
        dropout: the drop rate in [0, 1) applied after the activation while training.
        bias_init: "zeros" (default) or "normal" (drawn like the weights, as the notebook did).
        batch_norm: insert a :class:`~scratchnet.core.BatchNorm` before the activation.
    """

    def __init__(self, neurons: int, activation: Activation | str | None = None,
                 weight_init: str = "glorot", dropout: float = 0.0, bias_init: str = "zeros",
                 batch_norm: bool = False):
        super().__init__(neurons)
        self.activation = get_activation(activation)
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)
        self.dropout = checks.rate(dropout, "dropout")
        if self.dropout >= 0.5:
            warnings.warn(
                f"Dense(dropout={self.dropout:g}) drops {self.dropout:.0%} of the units: "
                "`dropout` is the drop rate, as in PyTorch and Keras; the book's "
                f"dropout={self.dropout:g} was a keep probability, which is "
                f"dropout={1 - self.dropout:.2g} here", DropoutRateWarning, stacklevel=2)
        self.bias_initializer = lookup(BIAS_INITIALIZERS, bias_init, "bias_init")
        self.bias_init = bias_init
        checks.boolean(batch_norm, "batch_norm")
        if batch_norm and bias_init != "zeros":
            raise ConfigError(f"bias_init {bias_init!r} has no effect with batch_norm (the layer "
                              f"has no bias: batch norm's beta replaces it); leave it 'zeros'")
        self.batch_norm = batch_norm

    def _make_operations(self, fan_in, rng, dtype, dropout_rng) -> list[Operation]:
        W = self.initializer((fan_in, self.neurons), rng, dtype)
        ops: list[Operation] = [WeightMultiply(Param(W, "W"))]
        if self.batch_norm:
            ops.append(BatchNorm(self.neurons, dtype))
        else:
            B = self.bias_initializer((1, self.neurons), rng, dtype,
                                      self.initializer.std(fan_in, self.neurons))
            ops.append(BiasAdd(Param(B, "B")))
        # A copy, so one activation instance passed to two layers keeps two caches.
        ops.append(copy.copy(self.activation))
        if self.dropout > 0:
            ops.append(Dropout(self.dropout, dropout_rng))
        return ops

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 1:
            raise ShapeError(f"Dense expects flat inputs of shape (features,), got "
                             f"{tuple(input_shape)}")
        return (self.neurons,)

    def param_count(self, input_shape: tuple) -> int:
        self.output_shape(input_shape)  # the same check
        # W, then B (or batch norm's gamma and beta)
        return input_shape[0] * self.neurons + self.neurons * (2 if self.batch_norm else 1)

    def buffers(self) -> dict[str, np.ndarray]:
        """The running statistics of the batch normalisation (none without it)."""
        return {key: buf for op in self.operations if isinstance(op, BatchNorm)
                for key, buf in op.buffers().items()}

    def describe(self) -> str:
        text = f"Dense({self.neurons}, {self.activation.name or type(self.activation).__name__}"
        if self.batch_norm:
            text += ", batch_norm"
        if self.dropout:
            text += f", dropout={self.dropout:g}"
        return text + ")"

    def __repr__(self) -> str:
        return (f"Dense(neurons={self.neurons}, activation={type(self.activation).__name__}(), "
                f"weight_init={self.weight_init!r}, dropout={self.dropout}"
                + (", batch_norm=True)" if self.batch_norm else ")"))


LAYERS: dict[str, type[Layer]] = {"dense": Dense}
