"""Activation functions as operations, and the registry that names them for configs."""

from __future__ import annotations

import numpy as np

from .core import Operation
from .errors import ConfigError


class Activation(Operation):
    """An element-wise operation without parameters."""

    #: name used in experiment files; set by each subclass
    name: str = ""

    def config(self) -> dict:
        """The keyword arguments that rebuild this activation (for saving configs)."""
        return {}


class Linear(Activation):
    """The identity: ``f(x) = x``."""

    name = "linear"

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, computed as ``0.5 * (1 + tanh(x / 2))``.

    The tanh form is the same function but never overflows: ``exp(1000)`` would.
    """

    name = "sigmoid"

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        out = np.multiply(x, x.dtype.type(0.5))
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        s = self.output
        return output_grad * s * (1 - s)


class Tanh(Activation):
    name = "tanh"

    def _output(self, inference: bool) -> np.ndarray:
        return np.tanh(self.input_)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        t = self.output
        grad = np.multiply(t, t)
        np.subtract(1, grad, out=grad)
        grad *= output_grad
        return grad


class ReLU(Activation):
    """``max(0, x)``. The gradient is masked on the *input* being positive (the notebook
    masked on the clipped output being >= 0, which is always true, so its ReLU passed
    every gradient through)."""

    name = "relu"

    def _output(self, inference: bool) -> np.ndarray:
        return np.maximum(self.input_, 0)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad * (self.input_ > 0)


#: config name -> class; the gradient-check tests run over every entry.
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU)
}


def get_activation(spec: str | Activation | None, **kwargs) -> Activation:
    """An activation from its config name (or an instance, passed through)."""
    if spec is None:
        return Linear()
    if isinstance(spec, Activation):
        return spec
    try:
        cls = ACTIVATIONS[spec]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown activation {spec!r}; expected one of: {', '.join(ACTIVATIONS)}"
        ) from None
    return cls(**kwargs)
