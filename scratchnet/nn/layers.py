"""The layers an experiment file names by ``type`` (:data:`LAYERS`).

* :class:`Dense` is [WeightMultiply, BiasAdd or BatchNorm, activation, (Dropout)].
* :class:`Conv2D` is [Conv2DOp, ChannelBiasAdd or BatchNorm2D, activation, (Dropout),
  (FlattenOp)].
* :class:`MaxPool2D`, :class:`AvgPool2D` and :class:`Flatten` are one operation each,
  without parameters.

What every layer is, and the options Dense and Conv2D share (activation, weight_init,
bias_init, dropout, batch_norm), are in :mod:`~scratchnet.nn.layer_base`. Each layer's
own options are declared in its constructor's signature (:mod:`scratchnet.options`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from ..errors import ShapeError
from ..options import Alias, Doc, FromData, Ge, Le, MAX_SIZE, Size, checked
from .conv import (AvgPool2DOp, ChannelBiasAdd, Conv2DOp, FlattenOp, MaxPool2DOp, pair,
                   conv_output_shape, pool_output_shape)
from .core import BiasAdd, Operation, Param, WeightMultiply
from .layer_base import Layer, PlannedOperation, WeightedLayer, sample_shape
from .normalization import BatchNorm, BatchNorm2D

__all__ = ["LAYERS", "AvgPool2D", "Conv2D", "Dense", "Flatten", "Layer", "MaxPool2D",
           "WeightedLayer", "sample_shape"]

#: a window's or a kernel's size, or a stride: one side for both, or [height, width]
SizeOrPair = Size | tuple[Size, Size]
#: rows and columns of zeros on each side
_Zeros = Annotated[int, Ge(0), Le(MAX_SIZE)]


class Dense(WeightedLayer):
    """A fully connected layer: ``activation(x @ W + B)``, then optional dropout.

    ``W`` is (fan_in, neurons) and ``B`` is (1, neurons). With ``batch_norm=True`` it is
    ``activation(BatchNorm(x @ W))``, whose parameters are ``W``, ``gamma`` and ``beta``,
    and whose running statistics are its buffers. Samples are flat, (features,), or
    sequences, (time, features), where it applies at every step (as ``torch.nn.Linear``):
    images need a :class:`Flatten` (or ``Conv2D(..., flatten=True)``) before.

    Args:
        neurons: output width.
        activation: an :class:`~scratchnet.nn.Activation` instance, its config name, or a mapping
            ``{name: ..., <options>}``.
        weight_init: an initialiser name from :data:`~scratchnet.nn.INITIALIZERS`.
        bias_init: "zeros" (default) or "normal" (drawn like the weights, as the notebook did).
        dropout: the drop rate in [0, 1) applied after the activation while training.
        batch_norm: insert a :class:`~scratchnet.nn.BatchNorm` before the activation.
    """

    per_step = True
    width_option = "neurons"
    product, bias, norm = WeightMultiply, BiasAdd, BatchNorm

    @checked
    def __init__(self, neurons: Annotated[Size, Doc("output width of the layer"), FromData(
                     "outputs", "the width the data's targets need (its classes, a text's "
                     "vocabulary, 1 for a value); the last layer only")], *shared, **options):
        # the shared options, in WeightedLayer's order, may follow positionally:
        # Dense(89, Tanh()) as the book writes it
        self.neurons = neurons
        super().__init__(*shared, **options)

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

    def describe(self) -> str:
        return f"Dense({self.neurons}, {self._options()})"

    def __repr__(self) -> str:
        return (f"Dense(neurons={self.neurons}, activation={type(self.activation).__name__}(), "
                f"weight_init={self.weight_init!r}, dropout={self.dropout}"
                + (", batch_norm=True)" if self.batch_norm else ")"))


class Conv2D(WeightedLayer):
    """A convolutional layer: ``activation(conv(x, W) + B)`` on (N, C, H, W) images, then
    optional dropout and an optional flatten (the book's ``flatten=True``).

    ``W`` is (out_channels, in_channels, KH, KW), PyTorch's and ONNX's layout, and ``B``
    is (out_channels,). With ``batch_norm=True`` a per-channel
    :class:`~scratchnet.nn.BatchNorm2D` (``gamma``, ``beta`` and running
    statistics of shape (out_channels,)) replaces the bias, before the activation, as in
    :class:`Dense`. Weight initialisers count fan_in = C*KH*KW and fan_out = F*KH*KW.

    Args:
        out_channels: F, the number of filters.
        kernel_size: an int or a pair (KH, KW); ``param_size``, the book's name for it, is
            accepted too.
        stride: an int or a pair.
        padding: "same" (output ceil(H / stride), the default), "valid" (none), an int or a
            pair (rows and columns of zeros on each side).
        activation, weight_init, dropout, batch_norm, bias_init: as for :class:`Dense`.
        flatten: end with a flatten to (F*H'*W',), as the book's ``Conv2D`` does.
    """

    takes_images = True
    width_option = "out_channels"
    product, bias, norm = Conv2DOp, ChannelBiasAdd, BatchNorm2D

    @checked
    def __init__(self, out_channels: Annotated[Size, Doc("number of filters")],
                 kernel_size: Annotated[SizeOrPair, Alias("param_size"), Doc(
                     "an int, or [height, width]")],
                 stride: Annotated[SizeOrPair, Doc("an int, or [height, width]")] = 1,
                 padding: Annotated[Literal["same", "valid"] | _Zeros | tuple[_Zeros, _Zeros],
                                    Doc("same (output ceil(size / stride)), valid (none), or "
                                        "zeros on each side: an int or [rows, columns]")
                                    ] = "same",
                 *, flatten: Annotated[bool, Doc("flatten the output (the book's "
                                                 "flatten=True)")] = False, **options):
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", 0)
        self.flatten = flatten
        super().__init__(**options)

    def _product_shape(self, input_shape) -> tuple[int, ...]:
        return conv_output_shape(sample_shape(input_shape), self.out_channels,
                                 self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = self._product_shape(input_shape)
        return (math.prod(shape),) if self.flatten else shape

    def chain(self, input_shape) -> list[PlannedOperation]:
        chain = super().chain(input_shape)
        if self.flatten:
            chain.append(PlannedOperation(FlattenOp, self.output_shape(input_shape)))
        return chain

    def activation_size(self, input_shape) -> int:
        shape = sample_shape(input_shape)
        _, ho, wo = self._product_shape(shape)
        columns = shape[0] * math.prod(self.kernel_size) * ho * wo  # im2col
        return super().activation_size(shape) + columns

    def _n_operations(self) -> int:
        return super()._n_operations() + self.flatten

    def _weight_shape(self, input_shape) -> tuple[int, ...]:
        return (self.out_channels, input_shape[0]) + self.kernel_size

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def _product(self, W: Param) -> Operation:
        return self.product(W, self.stride, self.padding)

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

    @checked
    def __init__(self, size: Annotated[SizeOrPair, Doc("window: an int, or [height, width]")],
                 stride: Annotated[SizeOrPair | None, Doc("default: the window size")] = None):
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

    operation = FlattenOp
    takes_images = True

    def output_shape(self, input_shape) -> tuple[int, ...]:
        return (math.prod(sample_shape(input_shape)),)

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        return [self.operation()]

    def __repr__(self) -> str:
        return "Flatten()"


#: layer ``type`` -> class; an experiment file's layer takes the options its class declares
LAYERS: dict[str, type[Layer]] = {"dense": Dense, "conv2d": Conv2D, "max_pool2d": MaxPool2D,
                                  "avg_pool2d": AvgPool2D, "flatten": Flatten}
