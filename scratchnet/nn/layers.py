"""Layers: named sequences of operations whose parameters are created lazily.

A layer's weights are created at the first forward pass (or an explicit
:meth:`Layer.build`), once the shape of its input samples is known, from the generator the
network hands it. A sample shape leaves out the batch: (784,) for flat rows, (1, 28, 28)
for one-channel images.

* :class:`Dense` is [WeightMultiply, BiasAdd or BatchNorm, activation, (Dropout)].
* :class:`Conv2D` is [Conv2DOp, ChannelBiasAdd or BatchNorm2D, activation, (Dropout),
  (FlattenOp)].
* :class:`MaxPool2D`, :class:`AvgPool2D` and :class:`Flatten` are one operation each,
  without parameters.

Every layer also answers, without building and without allocating a single weight, what
shape it outputs for a given input shape (:meth:`Layer.output_shape`), how many parameters
it would hold (:meth:`Layer.param_count`) and roughly how many numbers per sample a
training pass keeps (:meth:`Layer.activation_size`); a shape that cannot work (a kernel
larger than its padded input, a pool that does not fit, a dense layer on images) is a
:class:`~scratchnet.errors.ShapeError` from all three, and from :meth:`Layer.build`.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np

from .. import checks
from ..errors import ConfigError, DropoutRateWarning, ShapeError
from ..registry import lookup
from .activations import Activation, get_activation
from .conv import (AvgPool2DOp, ChannelBiasAdd, Conv2DOp, FlattenOp, MaxPool2DOp, check_padding,
                   conv_output_shape, pair, pool_output_shape)
from .core import BiasAdd, Dropout, Operation, Param, WeightMultiply
from .initializers import BIAS_INITIALIZERS, fans, get_initializer
from .normalization import BatchNorm, BatchNorm2D


def sample_shape(spec) -> tuple[int, ...]:
    """A sample shape as a tuple of positive ints: ``784`` -> (784,), ``(1, 28, 28)`` as is."""
    items = tuple(spec) if isinstance(spec, (tuple, list)) else (spec,)
    if not items or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
                        for n in items):
        raise ShapeError(f"a sample shape is a positive integer (features) or a tuple of "
                         f"them, such as (channels, height, width); got {spec!r}")
    return tuple(int(n) for n in items)


class Layer:
    """A sequence of operations built once the shape of the input samples is known."""

    #: whether the layer takes (channels, height, width) images rather than flat rows, so
    #: a network that starts with it is fed images
    takes_images = False
    #: whether it applies to the last axis at every step of a sequence: a batch (batch,
    #: time, features) runs through its operations as batch * time rows
    per_step = False

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

    def _n_operations(self) -> int:
        return 1

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


class _Weighted(Layer):
    """What :class:`Dense` and :class:`Conv2D` share: a product with the weights ``W``, then
    a bias ``B`` (or batch normalisation, whose ``beta`` takes the bias's place: a bias
    before a normalisation would be subtracted away), an activation, and optional dropout.

    Subclasses say how many units they output (``units``), the weight's shape, and which
    operations make the product, the bias and the normalisation.
    """

    units: int

    def __init__(self, activation, weight_init: str, dropout: float, bias_init: str,
                 batch_norm: bool):
        super().__init__()
        self.activation = get_activation(activation)
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)
        self.dropout = checks.rate(dropout, "dropout")
        if self.dropout >= 0.5:
            name = type(self).__name__
            warnings.warn(
                f"{name}(dropout={self.dropout:g}) drops {self.dropout:.0%} of the units: "
                "`dropout` is the drop rate, as in PyTorch and Keras; the book's "
                f"dropout={self.dropout:g} was a keep probability, which is "
                f"dropout={1 - self.dropout:.2g} here", DropoutRateWarning, stacklevel=3)
        self.bias_initializer = lookup(BIAS_INITIALIZERS, bias_init, "bias_init")
        self.bias_init = bias_init
        checks.boolean(batch_norm, "batch_norm")
        if batch_norm and bias_init != "zeros":
            raise ConfigError(f"bias_init {bias_init!r} has no effect with batch_norm (the layer "
                              f"has no bias: batch norm's beta replaces it); leave it 'zeros'")
        self.batch_norm = batch_norm

    def _weight_shape(self, input_shape) -> tuple[int, ...]:
        raise NotImplementedError

    def _bias_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _product(self, W: Param) -> Operation:
        raise NotImplementedError

    def _bias(self, B: Param) -> Operation:
        raise NotImplementedError

    def _norm(self, dtype) -> BatchNorm:
        raise NotImplementedError

    def param_count(self, input_shape) -> int:
        self.output_shape(input_shape)
        per_unit = 2 if self.batch_norm else 1  # gamma and beta, or the bias
        return math.prod(self._weight_shape(sample_shape(input_shape))) + per_unit * self.units

    def _n_operations(self) -> int:
        return 3 + (self.dropout > 0)

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


class Dense(_Weighted):
    """A fully connected layer: ``activation(x @ W + B)``, then optional dropout.

    ``W`` is (fan_in, neurons) and ``B`` is (1, neurons). With ``batch_norm=True`` it is
    ``activation(BatchNorm(x @ W))``, whose parameters are ``W``, ``gamma`` and ``beta``,
    and whose running statistics are its buffers. Samples are flat, (features,), or
    sequences, (time, features), where it applies at every step (as ``torch.nn.Linear``):
    images need a :class:`Flatten` (or ``Conv2D(..., flatten=True)``) before.

    Args:
        neurons: output width.
        activation: an :class:`Activation` instance or its config name.
        weight_init: an initialiser name from :data:`~scratchnet.initializers.INITIALIZERS`.
        dropout: the drop rate in [0, 1) applied after the activation while training.
        bias_init: "zeros" (default) or "normal" (drawn like the weights, as the notebook did).
        batch_norm: insert a :class:`~scratchnet.core.BatchNorm` before the activation.
    """

    per_step = True

    def __init__(self, neurons: int, activation: Activation | str | None = None,
                 weight_init: str = "glorot", dropout: float = 0.0, bias_init: str = "zeros",
                 batch_norm: bool = False):
        self.neurons = self.units = checks.positive_int(neurons, "neurons")
        super().__init__(activation, weight_init, dropout, bias_init, batch_norm)

    @property
    def fan_in(self) -> int | None:
        return None if self.input_shape is None else self.input_shape[-1]

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if len(shape) > 2:
            raise ShapeError(f"a dense layer takes flat samples (features,), got samples of "
                             f"shape {shape}: add a flatten layer before this dense layer")
        return shape[:-1] + (self.neurons,)

    def _weight_shape(self, input_shape) -> tuple[int, ...]:
        return (input_shape[-1], self.neurons)

    def _bias_shape(self) -> tuple[int, ...]:
        return (1, self.neurons)

    def _product(self, W: Param) -> Operation:
        return WeightMultiply(W)

    def _bias(self, B: Param) -> Operation:
        return BiasAdd(B)

    def _norm(self, dtype) -> BatchNorm:
        return BatchNorm(self.neurons, dtype)

    def describe(self) -> str:
        return f"Dense({self.neurons}, {self._options()})"

    def __repr__(self) -> str:
        return (f"Dense(neurons={self.neurons}, activation={type(self.activation).__name__}(), "
                f"weight_init={self.weight_init!r}, dropout={self.dropout}"
                + (", batch_norm=True)" if self.batch_norm else ")"))


class Conv2D(_Weighted):
    """A convolutional layer: ``activation(conv(x, W) + B)`` on (N, C, H, W) images, then
    optional dropout and an optional flatten (the book's ``flatten=True``).

    ``W`` is (out_channels, in_channels, KH, KW), PyTorch's and ONNX's layout, and ``B``
    is (out_channels,). With ``batch_norm=True`` a per-channel
    :class:`~scratchnet.normalization.BatchNorm2D` (``gamma``, ``beta`` and running
    statistics of shape (out_channels,)) replaces the bias, before the activation, as in
    :class:`Dense`. Weight initialisers count fan_in = C*KH*KW and fan_out = F*KH*KW.

    Args:
        out_channels: F, the number of filters.
        kernel_size: an int or a pair (KH, KW); ``param_size`` is the book's name for it.
        stride: an int or a pair.
        padding: "same" (output ceil(H / stride), the default), "valid" (none), an int or a
            pair (rows and columns of zeros on each side).
        activation, weight_init, dropout, batch_norm, bias_init: as for :class:`Dense`.
        flatten: end with a flatten to (F*H'*W',), as the book's ``Conv2D`` does.
    """

    takes_images = True

    def __init__(self, out_channels: int, kernel_size=None, stride=1, padding="same",
                 activation: Activation | str | None = None, weight_init: str = "glorot",
                 dropout: float = 0.0, batch_norm: bool = False, flatten: bool = False,
                 bias_init: str = "zeros", param_size=None):
        self.out_channels = self.units = checks.positive_int(out_channels, "out_channels")
        if kernel_size is None and param_size is None:
            raise ConfigError("Conv2D needs kernel_size (param_size, the book's name for it, "
                              "also works)")
        if kernel_size is not None and param_size is not None \
                and pair(kernel_size, "kernel_size") != pair(param_size, "param_size"):
            raise ConfigError(f"kernel_size {kernel_size!r} and param_size {param_size!r} "
                              f"are two names for one setting; give one")
        self.kernel_size = pair(kernel_size if kernel_size is not None else param_size,
                                "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = check_padding(padding)
        self.flatten = checks.boolean(flatten, "flatten")
        super().__init__(activation, weight_init, dropout, bias_init, batch_norm)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = conv_output_shape(sample_shape(input_shape), self.out_channels,
                                  self.kernel_size, self.stride, self.padding)
        return (math.prod(shape),) if self.flatten else shape

    def activation_size(self, input_shape) -> int:
        shape = sample_shape(input_shape)
        _, ho, wo = conv_output_shape(shape, self.out_channels, self.kernel_size, self.stride,
                                      self.padding)
        columns = shape[0] * math.prod(self.kernel_size) * ho * wo  # im2col
        return super().activation_size(shape) + columns

    def _n_operations(self) -> int:
        return super()._n_operations() + self.flatten

    def _weight_shape(self, input_shape) -> tuple[int, ...]:
        return (self.out_channels, input_shape[0]) + self.kernel_size

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def _product(self, W: Param) -> Operation:
        return Conv2DOp(W, self.stride, self.padding)

    def _bias(self, B: Param) -> Operation:
        return ChannelBiasAdd(B)

    def _norm(self, dtype) -> BatchNorm:
        return BatchNorm2D(self.out_channels, dtype)

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        ops = super()._make_operations(input_shape, rng, dtype, dropout_rng)
        return ops + [FlattenOp()] if self.flatten else ops

    def describe(self) -> str:
        text = f"Conv2D({self.out_channels}, {self.kernel_size[0]}x{self.kernel_size[1]}"
        if self.stride != (1, 1):
            text += f", stride {_size(self.stride)}"
        if self.padding != "same":
            padding = self.padding if isinstance(self.padding, str) else _size(self.padding)
            text += f", padding {padding}"
        return text + f", {self._options()}" + (", flatten)" if self.flatten else ")")

    def __repr__(self) -> str:
        return (f"Conv2D(out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, "
                f"activation={type(self.activation).__name__}(), "
                f"weight_init={self.weight_init!r}, dropout={self.dropout}, "
                f"batch_norm={self.batch_norm}, flatten={self.flatten})")


def _size(hw: tuple[int, int]) -> str:
    """``2`` for (2, 2), ``2x3`` otherwise."""
    return str(hw[0]) if hw[0] == hw[1] else f"{hw[0]}x{hw[1]}"


class _Pool(Layer):
    """A pooling layer over ``size`` windows ``stride`` apart (default: ``size``, windows
    side by side): (C, H, W) -> (C, H', W'), H' = (H - size) // stride + 1."""

    operation: type[Operation]
    takes_images = True

    def __init__(self, size, stride=None):
        super().__init__()
        self.size = pair(size, "pool size")
        self.stride = self.size if stride is None else pair(stride, "pool stride")

    def output_shape(self, input_shape) -> tuple[int, ...]:
        return pool_output_shape(sample_shape(input_shape), self.size, self.stride)

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        return [self.operation(self.size, self.stride)]

    def describe(self) -> str:
        text = f"{type(self).__name__}({self.size[0]}x{self.size[1]}"
        return text + (f", stride {_size(self.stride)})" if self.stride != self.size else ")")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, stride={self.stride})"


class MaxPool2D(_Pool):
    """The largest value of each window (ties: the gradient goes to the first, as PyTorch)."""

    operation = MaxPool2DOp


class AvgPool2D(_Pool):
    """The mean of each window."""

    operation = AvgPool2DOp


class Flatten(Layer):
    """(C, H, W) -> (C*H*W,) in C order (PyTorch's ``flatten(1)``), for the dense layers
    that follow convolutions."""

    takes_images = True

    def output_shape(self, input_shape) -> tuple[int, ...]:
        return (math.prod(sample_shape(input_shape)),)

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        return [FlattenOp()]

    def __repr__(self) -> str:
        return "Flatten()"


LAYERS: dict[str, type[Layer]] = {"dense": Dense, "conv2d": Conv2D, "max_pool2d": MaxPool2D,
                                  "avg_pool2d": AvgPool2D, "flatten": Flatten}
