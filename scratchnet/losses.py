"""Losses: ``forward(prediction, target)`` returns a float, ``backward()`` its gradient
with respect to the prediction."""

from __future__ import annotations

import numpy as np

from .core import check_same_shape
from .errors import ConfigError


class Loss:
    name: str = ""
    #: "classification" when the loss only makes sense for classes; None when the targets
    #: decide (mean squared error on one-hot labels is still classification)
    task: str | None = None

    def __init__(self) -> None:
        self.prediction: np.ndarray | None = None
        self.target: np.ndarray | None = None

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        check_same_shape(target, prediction, f"{type(self).__name__} target")
        self.prediction = prediction
        self.target = target
        return float(self._output())

    def backward(self) -> np.ndarray:
        grad = self._input_grad()
        check_same_shape(grad, self.prediction, f"{type(self).__name__} gradient")
        return grad

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """What the network's raw output means to a user (probabilities for softmax)."""
        return output

    def _output(self) -> float:
        raise NotImplementedError

    def _input_grad(self) -> np.ndarray:
        raise NotImplementedError


class MeanSquaredError(Loss):
    """``sum((p - y)^2) / batch``: summed over outputs, averaged over the batch."""

    name = "mse"

    def _output(self) -> float:
        diff = self.prediction - self.target
        return np.vdot(diff, diff) / self.prediction.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = self.prediction - self.target
        grad *= 2.0 / self.prediction.shape[0]
        return grad


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(z))`` through log-sum-exp: no overflow, no log(0)."""
    shifted = z - z.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class SoftmaxCrossEntropy(Loss):
    """Categorical cross entropy of ``softmax(logits)`` against one-hot targets.

    Loss: ``-sum(y * log_softmax(z)) / batch``; gradient: ``(softmax(z) - y) / batch``.
    The network's last layer stays linear: the softmax lives here.
    """

    name = "softmax_cross_entropy"
    task = "classification"

    def _output(self) -> float:
        z = self.prediction
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self._softmax = exp / total
        shifted -= np.log(total)  # now log-softmax
        return -np.vdot(self.target, shifted) / z.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = self._softmax - self.target
        grad *= 1.0 / self.prediction.shape[0]
        return grad

    def predictions(self, output: np.ndarray) -> np.ndarray:
        return softmax(output)


LOSSES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
}


def get_loss(spec: str | Loss) -> Loss:
    if isinstance(spec, Loss):
        return spec
    try:
        return LOSSES[spec]()
    except (KeyError, TypeError):
        raise ConfigError(f"unknown loss {spec!r}; expected one of: {', '.join(LOSSES)}") from None
