"""What every layer is: a named sequence of operations whose parameters are created
lazily, and what the layers with weights share.

A layer's weights are created at the first forward pass (or an explicit
:meth:`Layer.build`), once the shape of its input samples is known, from the generator the
network hands it. A sample shape leaves out the batch: (784,) for flat rows, (1, 28, 28)
for one-channel images.

Every layer also answers, without building and without allocating a single weight, what
shape it outputs for a given input shape (:meth:`Layer.output_shape`), how many parameters
it would hold (:meth:`Layer.param_count`) and roughly how many numbers per sample a
training pass keeps (:meth:`Layer.activation_size`), and which operations it would build,
each with the shape it outputs (:meth:`Layer.chain`); a shape that cannot work is a
:class:`~scratchnet.errors.ShapeError` from all four, and from :meth:`Layer.build`.

:class:`WeightedLayer` is [product with the weights, bias or batch normalisation,
activation, (dropout)], the shape of :class:`~scratchnet.nn.layers.Dense` and
:class:`~scratchnet.nn.layers.Conv2D`, and declares the options they share.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from ..errors import ConfigError, DropoutRateWarning, ShapeError
from ..options import Doc, Named, Rate, checked
from .activations import ActivationSpec, get_activation
from .core import Dropout, Operation, Param
from .initializers import BIAS_INITIALIZERS, INITIALIZERS, fans, get_initializer
from .normalization import BatchNorm


def sample_shape(spec) -> tuple[int, ...]:
    """A sample shape as a tuple of positive ints: ``784`` -> (784,), ``(1, 28, 28)`` as is."""
    items = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
    if not items or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
                        for n in items):
        raise ShapeError(f"a sample shape is a positive integer (features) or a tuple of "
                         f"them, such as (channels, height, width); got {spec!r}")
    return tuple(int(n) for n in items)


@dataclass(frozen=True)
class PlannedOperation:
    """One operation of a layer's chain, described without building it (what ``scratchnet
    explain`` draws): its class, the sample shape it outputs (the batch left out), its
    parameters' shapes by name, and how it computes where one operation does several
    things (a recurrent layer's gates)."""

    operation: type
    shape: tuple[int, ...]
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)
    equations: tuple[str, ...] = ()


class Layer:
    """A sequence of operations built once the shape of the input samples is known."""

    #: whether the layer takes (channels, height, width) images rather than flat rows, so
    #: a network that starts with it is fed images
    takes_images = False
    #: whether it applies to the last axis at every step of a sequence: a batch (batch,
    #: time, features) runs through its operations as batch * time rows
    per_step = False
    #: whether it reads (time, features) sequences (a recurrent layer), so a network that
    #: starts with it reads each sample as one; and whether it reads integer ids (an
    #: embedding), which only a network's first layer can
    takes_sequences = False
    takes_ids = False
    #: the option that sets how many units the layer outputs (None: none does)
    width_option: str | None = None

    def __init__(self):
        self.operations: list[Operation] = []
        self.built = False
        #: the sample shape the layer was built for (None before)
        self.input_shape: tuple[int, ...] | None = None

    # -- shapes, without building ------------------------------------------------------
    def output_shape(self, input_shape) -> tuple[int, ...]:
        """The sample shape this layer outputs for samples of ``input_shape``."""
        raise NotImplementedError

    def param_count(self, input_shape) -> int:
        """How many parameters the layer holds once built for ``input_shape``."""
        self.output_shape(input_shape)  # the same ShapeError for a shape that cannot work
        return 0

    def activation_size(self, input_shape) -> int:
        """An estimate of the numbers per sample that a training forward pass keeps for the
        backward pass: one output per operation (and a convolution's columns). Times the
        batch size and the dtype's item size, the activation memory of a training step."""
        return math.prod(self.output_shape(input_shape)) * self._n_operations()

    def inference_size(self, input_shape) -> int:
        """The numbers per sample an inference pass keeps: those of a training pass
        (:meth:`activation_size`) unless the backward pass makes arrays of its own."""
        return self.activation_size(input_shape)

    def _n_operations(self) -> int:
        return 1

    def chain(self, input_shape) -> list[PlannedOperation]:
        """The operations :meth:`build` makes for samples of ``input_shape``, in order,
        without making them. A layer of one operation names it as :attr:`operation`; one
        that does not is shown as itself."""
        return [PlannedOperation(getattr(self, "operation", type(self)),
                                 self.output_shape(input_shape))]

    # -- building ------------------------------------------------------------------
    def build(self, input_shape, rng: np.random.Generator, dtype, dropout_rng=None) -> None:
        shape = sample_shape(input_shape)
        self.output_shape(shape)  # refuse a shape that cannot work before allocating
        self.input_shape = shape
        self.operations = self._make_operations(shape, rng, np.dtype(dtype), dropout_rng)
        self.built = True

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        raise NotImplementedError

    # -- passes --------------------------------------------------------------------
    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        if not self.built:
            raise ShapeError(f"{type(self).__name__} used before it was built")
        steps = x.shape[:2] if self.per_step and x.ndim == 3 else None
        if steps is not None:
            x = x.reshape(-1, x.shape[2])
        for op in self.operations:
            x = op.forward(x, inference)
        return x if steps is None else x.reshape(*steps, -1)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        steps = grad.shape[:2] if self.per_step and grad.ndim == 3 else None
        if steps is not None:
            grad = grad.reshape(-1, grad.shape[2])
        for op in reversed(self.operations):
            grad = op.backward(grad)
        return grad if steps is None or grad is None else grad.reshape(*steps, -1)

    def set_needs_input_grad(self, needed: bool) -> None:
        """Whether the layer's input gradient is read (False for a network's first layer)."""
        if self.operations:
            self.operations[0].needs_input_grad = needed

    def params(self) -> list[Param]:
        return [p for op in self.operations for p in op.params()]

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state saved with the weights (running statistics and the like)."""
        return {key: buf for op in self.operations if isinstance(op, BatchNorm)
                for key, buf in op.buffers().items()}

    @property
    def n_params(self) -> int:
        return sum(p.value.size for p in self.params())

    def describe(self) -> str:
        return type(self).__name__


class WeightedLayer(Layer):
    """What :class:`Dense` and :class:`Conv2D` share: a product with the weights ``W``, then
    a bias ``B`` (or batch normalisation, whose ``beta`` takes the bias's place: a bias
    before a normalisation would be subtracted away), an activation, and optional dropout.

    Subclasses say the weight's shape, the bias's (one entry per output unit), and which
    operations make the product, the bias and the normalisation (:attr:`product`,
    :attr:`bias`, :attr:`norm`). The options every such layer takes are declared here; a
    subclass declares its own and hands these on.
    """

    product: type[Operation]
    bias: type[Operation]
    norm: type[BatchNorm]

    @checked
    def __init__(self, activation: ActivationSpec = "linear", weight_init: Annotated[
            str, Named(INITIALIZERS, "weight_init"), Doc("weight initialiser")] = "glorot",
            bias_init: Annotated[str, Named(BIAS_INITIALIZERS, "bias_init"), Doc(
                "zeros, or normal (drawn like the weights, as the notebook did)")] = "zeros",
            dropout: Annotated[Rate, Doc("drop rate after the activation")] = 0.0,
            batch_norm: Annotated[bool, Doc("batch normalisation before the activation "
                                            "(it replaces the bias)")] = False):
        super().__init__()
        self.activation = get_activation(activation)
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)
        self.dropout = dropout
        if self.dropout >= 0.5:
            name = type(self).__name__
            warnings.warn(
                f"{name}(dropout={self.dropout:g}) drops {self.dropout:.0%} of the units: "
                "`dropout` is the drop rate, as in PyTorch and Keras; the book's "
                f"dropout={self.dropout:g} was a keep probability, which is "
                f"dropout={1 - self.dropout:.2g} here", DropoutRateWarning, stacklevel=5)
        self.bias_initializer = BIAS_INITIALIZERS[bias_init]
        self.bias_init = bias_init
        if batch_norm and bias_init != "zeros":
            raise ConfigError(f"bias_init {bias_init!r} has no effect with batch_norm (the layer "
                              f"has no bias: batch norm's beta replaces it); leave it 'zeros'",
                              key=("bias_init",))
        self.batch_norm = batch_norm

    def _weight_shape(self, input_shape) -> tuple[int, ...]:
        raise NotImplementedError

    def _bias_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _product(self, W: Param) -> Operation:
        return self.product(W)

    def _bias(self, B: Param) -> Operation:
        return self.bias(B)

    def _norm(self, dtype) -> BatchNorm:
        return self.norm(math.prod(self._bias_shape()), dtype)

    def param_count(self, input_shape) -> int:
        self.output_shape(input_shape)
        per_unit = 2 if self.batch_norm else 1  # gamma and beta, or the bias
        return (math.prod(self._weight_shape(sample_shape(input_shape)))
                + per_unit * math.prod(self._bias_shape()))

    def _n_operations(self) -> int:
        return 3 + (self.dropout > 0)

    def _product_shape(self, input_shape) -> tuple[int, ...]:
        """The sample shape the product with the weights outputs (and so its bias, its
        activation and its dropout)."""
        return self.output_shape(input_shape)

    def chain(self, input_shape) -> list[PlannedOperation]:
        shape = sample_shape(input_shape)
        out, units = self._product_shape(shape), self._bias_shape()
        chain = [PlannedOperation(self.product, out, {"W": self._weight_shape(shape)})]
        if self.batch_norm:
            per_unit = self.norm._param_shape(math.prod(units))
            chain.append(PlannedOperation(self.norm, out, {"gamma": per_unit, "beta": per_unit}))
        else:
            chain.append(PlannedOperation(self.bias, out, {"B": units}))
        chain.append(PlannedOperation(type(self.activation), out))
        if self.dropout > 0:
            chain.append(PlannedOperation(Dropout, out))
        return chain

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        shape = self._weight_shape(input_shape)
        W = self.initializer(shape, rng, dtype)
        ops: list[Operation] = [self._product(Param(W, "W"))]
        if self.batch_norm:
            ops.append(self._norm(dtype))
        else:
            B = self.bias_initializer(self._bias_shape(), rng, dtype,
                                      self.initializer.std(*fans(shape)))
            ops.append(self._bias(Param(B, "B")))
        # A copy, so one activation instance passed to two layers keeps two caches.
        ops.append(copy.copy(self.activation))
        if self.dropout > 0:
            ops.append(Dropout(self.dropout, dropout_rng))
        return ops

    def _options(self) -> str:
        """The activation, then batch_norm and dropout when set: ``relu, dropout=0.3``."""
        text = self.activation.name or type(self.activation).__name__
        if self.batch_norm:
            text += ", batch_norm"
        if self.dropout:
            text += f", dropout={self.dropout:g}"
        return text
