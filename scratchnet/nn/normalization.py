"""Batch normalisation (Ioffe & Szegedy 2015) as an operation."""

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

    def __init__(self, neurons: int, dtype="float32", momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        neurons = checks.positive_int(neurons, "BatchNorm features")
        self.momentum = checks.number(momentum, "batch-norm momentum", 0, 1, low_open=True)
        self.eps = checks.positive(eps, "batch-norm eps")
        dtype = np.dtype(dtype)
        shape = (1, neurons)
        self.gamma = Param(np.ones(shape, dtype), "gamma")
        self.beta = Param(np.zeros(shape, dtype), "beta")
        self.running_mean = np.zeros(shape, dtype)
        self.running_var = np.ones(shape, dtype)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    def params(self) -> list[Param]:
        return [self.gamma, self.beta]

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        n = self.gamma.value.shape[1]
        if input_.ndim != 2 or input_.shape[1] != n:
            raise ShapeError(f"BatchNorm expects input of shape (batch, {n}), got {input_.shape}")
        if not inference and input_.shape[0] < 2:
            raise ShapeError(
                f"batch normalisation needs at least 2 rows per training batch, got "
                f"{input_.shape[0]} (pick a batch_size that does not leave a last batch of "
                f"one row)")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        self._training = not inference
        if inference:
            centred = x - self.running_mean
            var = self.running_var
        else:
            mean = x.mean(axis=0, keepdims=True)
            centred = x - mean
            var = np.mean(centred * centred, axis=0, keepdims=True)
            m, rows = self.momentum, x.shape[0]
            self.running_mean *= 1.0 - m
            self.running_mean += m * mean
            self.running_var *= 1.0 - m
            self.running_var += (m * rows / (rows - 1)) * var
        inv_std = var + x.dtype.type(self.eps)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1, inv_std, out=inv_std)
        centred *= inv_std  # now xhat
        self._xhat, self._inv_std = centred, inv_std
        out = centred * self.gamma.value
        out += self.beta.value
        return out

    def _param_grad(self, output_grad: np.ndarray) -> None:
        np.sum(output_grad * self._xhat, axis=0, keepdims=True, out=self.gamma.grad)
        output_grad.sum(axis=0, keepdims=True, out=self.beta.grad)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # With the parameter gradients already summed (backward fills them first):
        # dx = gamma * inv_std * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)
        scale = self.gamma.value * self._inv_std
        if not self._training:
            return output_grad * scale
        rows = output_grad.shape[0]
        grad = self._xhat * (self.gamma.grad / rows)
        grad += self.beta.grad / rows
        np.subtract(output_grad, grad, out=grad)
        grad *= scale
        return grad

    def __repr__(self) -> str:
        return f"BatchNorm({self.gamma.value.shape[1]}, momentum={self.momentum}, eps={self.eps})"
