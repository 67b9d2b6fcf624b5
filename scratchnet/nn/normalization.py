"""Batch normalisation (Ioffe & Szegedy 2015) as an operation: feature by feature for
(batch, n) rows, channel by channel for (N, C, H, W) images."""

from __future__ import annotations

import numpy as np

from .. import checks
from ..errors import ShapeError
from .core import Operation, Param


class BatchNorm(Operation):
    """Batch normalisation (Ioffe & Szegedy 2015) of (batch, n) inputs, feature by feature.

    Training: ``xhat = (x - mean) / sqrt(var + eps)`` with the batch's mean and biased
    variance, output ``gamma * xhat + beta``; the running averages are updated in place with
    PyTorch's convention, ``running = (1 - momentum) * running + momentum * batch`` with
    ``momentum=0.1`` (the weight of the *new* batch; Keras's 0.99 is the weight of the old
    average), the running variance from the unbiased batch variance, as PyTorch does.
    Inference: the running statistics instead of the batch's.

    ``gamma`` (ones) and ``beta`` (zeros) are :class:`Param` of shape (1, n) named
    "gamma" and "beta"; ``running_mean`` (zeros) and ``running_var`` (ones) are plain
    arrays of shape (1, n), live buffers that checkpoints save. Training needs at least two
    rows per batch (a single row has no variance), as in PyTorch.
    """

    CACHES = Operation.CACHES + ("_xhat", "_inv_std")
    #: the axes each feature's statistics are taken over
    axes: tuple[int, ...] = (0,)

    def __init__(self, neurons: int, dtype="float32", momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        neurons = checks.positive_int(neurons, f"{type(self).__name__} features")
        self.momentum = checks.number(momentum, "batch-norm momentum", 0, 1, low_open=True)
        self.eps = checks.positive(eps, "batch-norm eps")
        dtype = np.dtype(dtype)
        shape = self.param_shape(neurons)
        self.gamma = Param(np.ones(shape, dtype), "gamma")
        self.beta = Param(np.zeros(shape, dtype), "beta")
        self.running_mean = np.zeros(shape, dtype)
        self.running_var = np.ones(shape, dtype)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    @staticmethod
    def param_shape(n: int) -> tuple[int, ...]:
        """The shape of ``gamma``, ``beta`` and the running statistics for ``n`` units."""
        return (1, n)

    def _broadcast(self, a: np.ndarray) -> np.ndarray:
        """A parameter or statistic as a view that broadcasts against the input."""
        return a

    def params(self) -> list[Param]:
        return [self.gamma, self.beta]

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    @property
    def features(self) -> int:
        return self.gamma.value.size

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        self._check_input(input_)
        if not inference and input_.size // self.features < 2:
            raise ShapeError(
                f"batch normalisation needs at least 2 rows per training batch (2 values of "
                f"each feature), got input of shape {input_.shape} (pick a batch_size that "
                f"does not leave a last batch of one row)")
        return super().forward(input_, inference)

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ShapeError(f"BatchNorm expects input of shape (batch, {self.features}), "
                             f"got {x.shape}")

    def _output(self, inference: bool) -> np.ndarray:
        x, axes, bc = self.input_, self.axes, self._broadcast
        self._training = not inference
        if inference:
            centred = x - bc(self.running_mean)
            var = bc(self.running_var)
        else:
            mean = x.mean(axis=axes, keepdims=True)
            centred = x - mean
            var = np.mean(centred * centred, axis=axes, keepdims=True)
            m, rows = self.momentum, x.size // self.features
            running_mean, running_var = bc(self.running_mean), bc(self.running_var)  # views
            running_mean *= 1.0 - m
            running_mean += m * mean
            running_var *= 1.0 - m
            running_var += (m * rows / (rows - 1)) * var
        inv_std = var + x.dtype.type(self.eps)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1, inv_std, out=inv_std)
        centred *= inv_std  # now xhat
        self._xhat, self._inv_std = centred, inv_std
        out = centred * bc(self.gamma.value)
        out += bc(self.beta.value)
        return out

    def _param_grad(self, output_grad: np.ndarray) -> None:
        axes, bc = self.axes, self._broadcast
        np.sum(output_grad * self._xhat, axis=axes, keepdims=True, out=bc(self.gamma.grad))
        output_grad.sum(axis=axes, keepdims=True, out=bc(self.beta.grad))

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # From the parameter gradients, the sums over the batch that backward's first hook
        # (_param_grad) left (see Operation):
        # dx = gamma * inv_std * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)
        # (N counting every value a statistic was taken over)
        bc = self._broadcast
        scale = bc(self.gamma.value) * self._inv_std
        if not self._training:
            return output_grad * scale
        rows = output_grad.size // self.features
        grad = self._xhat * (bc(self.gamma.grad) / rows)
        grad += bc(self.beta.grad) / rows
        np.subtract(output_grad, grad, out=grad)
        grad *= scale
        return grad

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.features}, momentum={self.momentum}, "
                f"eps={self.eps})")


class BatchNorm2D(BatchNorm):
    """Batch normalisation of (N, C, H, W) images channel by channel (PyTorch's
    ``BatchNorm2d``): each channel's statistics are taken over the batch and every position,
    N*H*W values, and its running variance uses that count for the unbiased estimate.

    ``gamma``, ``beta``, ``running_mean`` and ``running_var`` have shape (C,), PyTorch's and
    ONNX's shape for them; otherwise as :class:`BatchNorm`.
    """

    axes = (0, 2, 3)

    @staticmethod
    def param_shape(n: int) -> tuple[int, ...]:
        return (n,)

    def _broadcast(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(1, -1, 1, 1)

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim != 4 or x.shape[1] != self.features:
            raise ShapeError(f"BatchNorm2D expects input of shape (N, {self.features}, H, W), "
                             f"got {x.shape}")
