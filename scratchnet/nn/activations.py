"""Activation functions as operations, and the registry that names them for configs."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from ..options import (Doc, Named, NonNegativeFloat, PositiveFloat, build, check_value, checked,
                       options)
from .core import Operation


class Activation(Operation):
    """An element-wise operation without parameters."""

    #: name used in experiment files; set by each subclass
    name: str = ""

    def config(self) -> dict:
        """The keyword arguments that rebuild this activation (its declared options, kept
        as attributes of the same names)."""
        return {o.name: getattr(self, o.name) for o in options(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


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


class LeakyReLU(Activation):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise (PyTorch's default slope 0.01)."""

    name = "leaky_relu"

    @checked
    def __init__(self, negative_slope: Annotated[NonNegativeFloat, Doc(
            "the slope for x < 0")] = 0.01):
        self.negative_slope = negative_slope

    def _output(self, inference: bool) -> np.ndarray:
        slope = self.input_.dtype.type(self.negative_slope)
        return np.where(self.input_ > 0, self.input_, self.input_ * slope)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        slope = output_grad.dtype.type(self.negative_slope)
        return output_grad * np.where(self.input_ > 0, output_grad.dtype.type(1), slope)


class ELU(Activation):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (Clevert et al. 2015).

    ``expm1`` is taken of ``min(x, 0)`` only, so a large positive input never overflows.
    """

    name = "elu"

    @checked
    def __init__(self, alpha: Annotated[PositiveFloat, Doc(
            "the output approaches -alpha for large negative inputs")] = 1.0):
        self.alpha = alpha

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        negative = np.expm1(np.minimum(x, 0))
        negative *= x.dtype.type(self.alpha)
        return np.where(x > 0, x, negative)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # for x <= 0 the derivative alpha * exp(x) is the output plus alpha
        alpha = output_grad.dtype.type(self.alpha)
        return output_grad * np.where(self.input_ > 0, output_grad.dtype.type(1),
                                      self.output + alpha)


class GELU(Activation):
    """The tanh approximation of the Gaussian error linear unit (Hendrycks & Gimpel 2016):
    ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))``, PyTorch's
    ``GELU(approximate="tanh")``."""

    CACHES = Activation.CACHES + ("_tanh",)

    name = "gelu"
    _C = math.sqrt(2.0 / math.pi)
    _A = 0.044715

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        c, a = x.dtype.type(self._C), x.dtype.type(self._A)
        t = x * x
        t *= a
        t += 1
        t *= x
        t *= c
        np.tanh(t, out=t)
        self._tanh = t  # kept for the backward pass
        out = t + 1
        out *= x
        out *= 0.5
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        x, t = self.input_, self._tanh
        c, a3 = x.dtype.type(self._C), x.dtype.type(3 * self._A)
        # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
        inner = x * x
        inner *= a3
        inner += 1
        inner *= c
        inner *= x
        sech2 = t * t
        np.subtract(1, sech2, out=sech2)
        inner *= sech2
        inner += t
        inner += 1
        inner *= 0.5
        inner *= output_grad
        return inner


class Softplus(Activation):
    """``log(1 + exp(x))``, computed as ``max(x, 0) + log1p(exp(-|x|))`` so that
    ``exp`` only ever sees non-positive numbers (no overflow at +-1000). Its derivative is
    the sigmoid, taken in the same overflow-free tanh form as :class:`Sigmoid`."""

    name = "softplus"

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        out = np.abs(x)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
        out += np.maximum(x, 0)
        return out

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        x = self.input_
        s = np.multiply(x, x.dtype.type(0.5))
        np.tanh(s, out=s)
        s += 1
        s *= 0.5
        s *= output_grad
        return s


#: config name -> class; the gradient-check tests run over every entry.
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softplus)
}


#: how a layer's ``activation`` option is declared
ActivationSpec = Annotated[Activation | str | None, Named(ACTIVATIONS, "activation", spec=True),
                           Doc("activation name, or {name: ..., <options>}")]


def get_activation(spec: str | dict | Activation | None, **kwargs) -> Activation:
    """An activation from its config name (its options as keywords), a mapping
    ``{name: ..., <options>}``, or an instance (passed through); None is the identity."""
    if spec is None:
        return Linear()
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        spec = dict(check_value(spec, ActivationSpec, "activation"))
        return build(ACTIVATIONS, spec.pop("name"), "activation", **spec, **kwargs)
    return build(ACTIVATIONS, spec, "activation", **kwargs)
