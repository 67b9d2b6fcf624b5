"""Operations on batches of images (the book's chapter 5): convolution, pooling, flatten.

A batch of images is (N, C, H, W): images, channels, height, width, as in the book and
PyTorch. A convolution's weight is (F, C, KH, KW): output channels, input channels, kernel
height and width, PyTorch's and ONNX's ``Conv`` layout; its bias is one number per output
channel, shape (F,). The convolution is a cross-correlation (the kernel is not flipped), as
in every deep-learning library.

Every operation is vectorised: no Python loop runs over images or output positions. A
convolution is im2col (every window of the padded input copied into one matrix of columns,
through ``sliding_window_view``) and ONE matrix product forward; the backward pass is two
more products (weight and input gradient) and col2im, a loop over the KH*KW kernel offsets
that adds each offset's share of the input gradient back in place. Pooling loops over the
size*size window offsets the same way.

Memory layout (why the batch sits innermost)
--------------------------------------------
The arrays keep the (N, C, H, W) shape everywhere, but a convolution's output is a
transposed view of memory laid out (C, H, W, N), the batch innermost (the layout of
cuda-convnet). Then one window offset of the whole batch is a single contiguous run of
W'*N numbers, so the im2col copy and the col2im additions move long runs; the columns are
(C*KH*KW, H'*W'*N), and all three products are plain wide ``(F, K) @ (K, H'*W'*N)``
shapes with no transposed copy before or after. Activations, batch norm and pooling keep
whatever layout their input has (NumPy's element-wise functions allocate in the input's
memory order), so a stack of convolutions and pools runs in this layout from the first
convolution to the flatten, which copies once into the (N, C*H*W) rows a dense layer takes.

The other layouts copy shorter runs (C order: W' numbers, and a transposed product;
channels-last: KW*C numbers, and col2im reads a large array with a stride), which
``benchmarks/conv_layouts.py`` measured slower (figures in ``benchmarks/README.md``). The
columns and the padded input are kept from one training batch to the next, so that a
fresh array of that size does not pay its page faults again on every batch. Only buffers
that never leave the operation are kept; every output and gradient it returns is a new
array.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError, ShapeError
from .core import Operation, Param, ParamOperation


# -- sizes ------------------------------------------------------------------------------
def pair(value, what: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each at least ``minimum``, as a pair."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              or v < minimum for v in items):
        raise ConfigError(f"{what} must be an integer >= {minimum} or a pair of them, "
                          f"got {value!r}")
    return int(items[0]), int(items[1])


def check_padding(padding):
    """``"same"``, ``"valid"``, an int >= 0 or a pair of them (ConfigError otherwise)."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ConfigError(f"padding must be 'same', 'valid', an integer >= 0 or a pair "
                              f"of them, got {padding!r}")
        return padding
    return pair(padding, "padding", minimum=0)


def resolve_padding(padding, kernel: tuple[int, int], stride: tuple[int, int],
                    size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The zero padding ((top, bottom), (left, right)) for an input of ``size`` (H, W).

    ``"same"`` gives an output of ceil(H / stride) rows (the rule of PyTorch and
    TensorFlow): the total padding is max((ceil(H / s) - 1) * s + K - H, 0), the odd one
    out on the bottom (right). ``"valid"`` pads nothing; numbers pad both sides alike.
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        sides = []
        for n, k, s in zip(size, kernel, stride, strict=True):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0], sides[1]
    return (padding[0], padding[0]), (padding[1], padding[1])


def window_count(size: int, window: int, stride: int, too_large: str) -> int:
    """How many windows of ``window`` fit along ``size`` at ``stride``; a ShapeError with
    the message ``too_large`` when not even one does."""
    if window > size:
        raise ShapeError(too_large)
    return (size - window) // stride + 1


def image_shape(shape, what: str) -> tuple[int, int, int]:
    """``shape`` as (C, H, W), or a ShapeError saying that ``what`` takes images."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ShapeError(f"{what} takes images of shape (channels, height, width), got "
                         f"samples of shape {shape}")
    return shape


def conv_output_shape(input_shape, out_channels: int, kernel: tuple[int, int],
                      stride: tuple[int, int], padding) -> tuple[int, int, int]:
    """(C, H, W) -> (F, H', W') for a convolution, without allocating anything."""
    c, h, w = image_shape(input_shape, "a convolution")
    (top, bottom), (left, right) = resolve_padding(padding, kernel, stride, (h, w))
    ph, pw = h + top + bottom, w + left + right
    where = (f"kernel {kernel[0]}x{kernel[1]} is larger than its padded input {ph}x{pw} "
             f"(input {h}x{w}, padding {padding!r})")
    return (out_channels, window_count(ph, kernel[0], stride[0], where),
            window_count(pw, kernel[1], stride[1], where))


def pool_output_shape(input_shape, size: tuple[int, int],
                      stride: tuple[int, int]) -> tuple[int, int, int]:
    """(C, H, W) -> (C, H', W') for a pooling window, without allocating anything."""
    c, h, w = image_shape(input_shape, "pooling")
    where = f"pool {size[0]}x{size[1]} does not fit its input {h}x{w}"
    return (c, window_count(h, size[0], stride[0], where),
            window_count(w, size[1], stride[1], where))


def _every(start: int, count: int, step: int) -> slice:
    """``count`` indices from ``start`` ``step`` apart: window offset ``start`` of each of
    ``count`` windows."""
    return slice(start, start + step * (count - 1) + 1, step)


def _check_images(x: np.ndarray, channels: int | None, what: str) -> None:
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        c = "C" if channels is None else channels
        raise ShapeError(f"{what} expects input of shape (N, {c}, H, W), got {x.shape}")


# -- convolution ------------------------------------------------------------------------
class Conv2DOp(ParamOperation):
    """2-D convolution (cross-correlation) without bias: the book's ``Conv2D_Op``.

    ``(N, C, H, W) -> (N, F, H', W')`` with weight ``W`` of shape (F, C, KH, KW), where
    H' = (H + top + bottom - KH) // stride + 1 (and W' alike). ``stride`` is an int or a
    pair; ``padding`` is ``"same"``, ``"valid"``, an int or a pair (see
    :func:`resolve_padding`).

    ``backward`` fills the weight gradient from the forward pass's columns, so it needs a
    training forward pass (``inference=True`` keeps no columns, which bounds the memory
    of large inference batches).
    """

    def __init__(self, W: Param | np.ndarray, stride=1, padding="valid"):
        param = W if isinstance(W, Param) else Param(W, "W")
        if param.value.ndim != 4:
            raise ShapeError(f"Conv2DOp expects a weight of shape (F, C, KH, KW), got "
                             f"{param.value.shape}")
        super().__init__(param)
        self.stride = pair(stride, "stride")
        self.padding = check_padding(padding)
        self._kept: dict[str, np.ndarray] = {}  # buffers reused from batch to batch
        self._cols: np.ndarray | None = None  # (C*KH*KW, H'*W'*N) of the last forward

    CACHES = ParamOperation.CACHES + ("_cols",)

    def __getstate__(self) -> dict:
        # The kept buffers are scratch space (tens of MB) too: left behind like the caches.
        return {**super().__getstate__(), "_kept": {}}

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        F, C, KH, KW = self.param.value.shape
        _check_images(input_, C, "Conv2DOp")
        conv_output_shape(input_.shape[1:], F, (KH, KW), self.stride, self.padding)
        return super().forward(input_, inference)

    def _buffer(self, name: str, shape, dtype, keep: bool) -> np.ndarray:
        """A buffer of ``shape``: the one kept from the last batch when it fits (training
        batches repeat their shape), else a new one (zeroed, kept only when ``keep``)."""
        buf = self._kept.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.zeros(shape, dtype)
            if keep:
                self._kept[name] = buf
        return buf

    def _geometry(self):
        x, (F, C, KH, KW) = self.input_, self.param.value.shape
        N, _, H, W = x.shape
        pads = resolve_padding(self.padding, (KH, KW), self.stride, (H, W))
        _, Ho, Wo = conv_output_shape((C, H, W), F, (KH, KW), self.stride, self.padding)
        return N, C, H, W, F, KH, KW, Ho, Wo, pads

    def _output(self, inference: bool) -> np.ndarray:
        N, C, H, W, F, KH, KW, Ho, Wo, ((top, bottom), (left, right)) = self._geometry()
        sh, sw = self.stride
        keep = not inference
        # The padded input in (C, H, W, N) memory. Its border is never written, so a kept
        # buffer stays zero there.
        padded = self._buffer("padded", (C, H + top + bottom, W + left + right, N),
                              self.input_.dtype, keep)
        padded[:, top:top + H, left:left + W, :] = self.input_.transpose(1, 2, 3, 0)
        windows = sliding_window_view(padded, (KH, KW), axis=(1, 2))[:, ::sh, ::sw]
        cols = self._buffer("cols", (C, KH, KW, Ho, Wo, N), padded.dtype, keep)
        np.copyto(cols, windows.transpose(0, 4, 5, 1, 2, 3))  # (C, Ho, Wo, N, KH, KW) -> im2col
        cols = cols.reshape(C * KH * KW, Ho * Wo * N)
        self._cols = None if inference else cols
        out = np.matmul(self.param.value.reshape(F, -1), cols)
        return out.reshape(F, Ho, Wo, N).transpose(3, 0, 1, 2)

    def _param_grad(self, output_grad: np.ndarray) -> None:
        if self._cols is None:
            raise ShapeError("Conv2DOp.backward needs a training forward pass first "
                             "(inference passes keep no columns)")
        F = self.param.value.shape[0]
        np.matmul(_rows(output_grad, F), self._cols.T, out=self.param.grad.reshape(F, -1))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        N, C, H, W, F, KH, KW, Ho, Wo, ((top, bottom), (left, right)) = self._geometry()
        sh, sw = self.stride
        dcols = self._buffer("dcols", (C * KH * KW, Ho * Wo * N), output_grad.dtype, True)
        np.matmul(self.param.value.reshape(F, -1).T, _rows(output_grad, F), out=dcols)
        dcols = dcols.reshape(C, KH, KW, Ho, Wo, N)
        # col2im: each kernel offset's gradient goes back to the inputs it was multiplied with.
        padded = np.zeros((C, H + top + bottom, W + left + right, N), dcols.dtype)
        for i in range(KH):
            for j in range(KW):
                padded[:, _every(i, Ho, sh), _every(j, Wo, sw), :] += dcols[:, i, j]
        return padded[:, top:top + H, left:left + W, :].transpose(3, 0, 1, 2)

    def __repr__(self) -> str:
        F, C, KH, KW = self.param.value.shape
        return (f"Conv2DOp({C}->{F}, kernel={KH}x{KW}, stride={self.stride}, "
                f"padding={self.padding!r})")


def _rows(output_grad: np.ndarray, F: int) -> np.ndarray:
    """A convolution's output gradient (N, F, H', W') as (F, H'*W'*N): a view when it is in
    this module's (F, H', W', N) memory order, as the gradients flowing back are."""
    return output_grad.transpose(1, 2, 3, 0).reshape(F, -1)


class ChannelBiasAdd(ParamOperation):
    """``x + b[c]`` on channel c: ``(N, C, H, W) -> (N, C, H, W)`` with ``b`` of shape (C,)."""

    def __init__(self, B: Param | np.ndarray):
        param = B if isinstance(B, Param) else Param(B, "B")
        if param.value.ndim != 1:
            raise ShapeError(f"ChannelBiasAdd expects a bias of shape (C,), got "
                             f"{param.value.shape}")
        super().__init__(param)

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        _check_images(input_, self.param.value.shape[0], "ChannelBiasAdd")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_ + self.param.value.reshape(1, -1, 1, 1)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad

    def _param_grad(self, output_grad: np.ndarray) -> None:
        output_grad.sum(axis=(0, 2, 3), out=self.param.grad)


# -- pooling ------------------------------------------------------------------------------
class _Pool2D(Operation):
    """What max and average pooling share: ``(N, C, H, W) -> (N, C, H', W')`` over
    ``size`` windows ``stride`` apart (``stride`` defaults to ``size``: windows side by side).

    Window offset (i, j) of every window at once is one strided view of the input,
    ``x[:, :, i::stride, j::stride]`` cut to (H', W'); when the windows tile the input
    exactly these are the views a reshape to (N, C, H', size, W', size) would give. The
    passes loop over the size*size offsets, never over windows.
    """

    def __init__(self, size, stride=None):
        super().__init__()
        self.size = pair(size, "pool size")
        self.stride = self.size if stride is None else pair(stride, "pool stride")

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        _check_images(input_, None, type(self).__name__)
        pool_output_shape(input_.shape[1:], self.size, self.stride)
        return super().forward(input_, inference)

    def _offsets(self) -> list[tuple[int, int]]:
        """The window offsets (i, j), in row-major order."""
        return [(i, j) for i in range(self.size[0]) for j in range(self.size[1])]

    def _at(self, a: np.ndarray, i: int, j: int) -> np.ndarray:
        """The view of ``a`` (shaped like the input) at window offset (i, j) of every window."""
        _, Ho, Wo = pool_output_shape(self.input_.shape[1:], self.size, self.stride)
        return a[:, :, _every(i, Ho, self.stride[0]), _every(j, Wo, self.stride[1])]

    def _route(self, grad: np.ndarray, i: int, j: int, share: np.ndarray) -> None:
        """Add ``share`` (one value per window) into ``grad`` at window offset (i, j).
        Windows that do not overlap own their inputs, so a plain copy does (cheaper than
        adding in place)."""
        view = self._at(grad, i, j)
        if self.stride[0] >= self.size[0] and self.stride[1] >= self.size[1]:
            view[...] = share
        else:
            view += share

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, stride={self.stride})"


class MaxPool2DOp(_Pool2D):
    """The largest value of each window. Where a window holds its maximum more than once,
    the gradient goes to ONE of them, the first in row-major order (as PyTorch does): the
    forward pass keeps the offset of each window's first maximum.

    A loop over the window offsets with arithmetic ufuncs only, which
    ``benchmarks/conv_layouts.py --pools`` measured well ahead of masked copies
    (``np.copyto(where=)``, ``np.where``) and of ``argmax`` over a copy of the windows
    (``benchmarks/README.md``).
    """

    CACHES = _Pool2D.CACHES + ("_argmax",)

    def _output(self, inference: bool) -> np.ndarray:
        offsets = self._offsets()
        out = self._at(self.input_, *offsets[0]).copy(order="K")  # keep the memory order
        self._argmax = np.zeros_like(out, dtype=np.min_scalar_type(len(offsets) - 1))
        for k, (i, j) in enumerate(offsets[1:], start=1):
            candidate = self._at(self.input_, i, j)
            greater = candidate > out  # strictly: a tie keeps the earlier offset
            np.maximum(out, candidate, out=out)
            # Offsets only grow, so "k where greater, else the index so far" is a maximum.
            np.maximum(self._argmax, greater * self._argmax.dtype.type(k), out=self._argmax)
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(self.input_)
        for k, (i, j) in enumerate(self._offsets()):
            self._route(grad, i, j, output_grad * (self._argmax == k))
        return grad


class AvgPool2DOp(_Pool2D):
    """The mean of each window; each input of a window gets 1/(size*size) of its gradient."""

    def _output(self, inference: bool) -> np.ndarray:
        offsets = self._offsets()
        out = self._at(self.input_, *offsets[0]).copy(order="K")
        for i, j in offsets[1:]:
            out += self._at(self.input_, i, j)
        out *= out.dtype.type(1 / len(offsets))
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        share = output_grad * output_grad.dtype.type(1 / len(self._offsets()))
        grad = np.zeros_like(self.input_)
        for i, j in self._offsets():
            self._route(grad, i, j, share)
        return grad


# -- flatten ------------------------------------------------------------------------------
class FlattenOp(Operation):
    """``(N, C, H, W) -> (N, C*H*W)`` in C order (PyTorch's ``flatten(1)``): each sample's
    channels one after another, each channel row by row. Any (N, ...) input works."""

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        if input_.ndim < 2:
            raise ShapeError(f"FlattenOp expects input of shape (N, ...), got {input_.shape}")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_.reshape(len(self.input_), -1)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # Copied back into the input's memory order (a batch-innermost view after a
        # convolution), so the pooling and activation before it stay on one layout.
        grad = np.empty_like(self.input_)
        grad[...] = output_grad.reshape(self.input_.shape)
        return grad
