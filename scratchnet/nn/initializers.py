"""Weight initialisers: one variance-scaling formula and named presets (as Keras does).

``variance_scaling(scale, mode, distribution)`` draws weights with variance
``scale / n`` where ``n`` is fan_in, fan_out or their average. Glorot (Xavier) normal is
``scale=1, mode="fan_avg"``, i.e. standard deviation ``sqrt(2 / (fan_in + fan_out))``;
He is ``scale=2, mode="fan_in"``; LeCun is ``scale=1, mode="fan_in"``. ``standard`` is the
notebook's N(0, 1), kept so its experiments can be reproduced (it is far too large for 784
inputs).

Fans follow the weight's layout (:func:`fans`): a dense weight is (fan_in, fan_out); a
convolution's (F, C, KH, KW) has fan_in C*KH*KW and fan_out F*KH*KW, the numbers each
output and each input is multiplied with (Keras and PyTorch count the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..registry import lookup


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a dense weight (fan_in, fan_out) or of a convolution's weight
    (out_channels, in_channels, KH, KW)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


@dataclass(frozen=True)
class VarianceScaling:
    scale: float = 1.0
    mode: str = "fan_avg"  # fan_in | fan_out | fan_avg
    distribution: str = "normal"  # normal | uniform

    def std(self, fan_in: int, fan_out: int) -> float:
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / n)

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator, dtype) -> np.ndarray:
        std = self.std(*fans(shape))
        if self.distribution == "uniform":
            limit = math.sqrt(3.0) * std  # a uniform on [-a, a] has variance a^2 / 3
            return rng.uniform(-limit, limit, size=shape).astype(dtype)
        return rng.normal(0.0, std, size=shape).astype(dtype)


@dataclass(frozen=True)
class StandardNormal:
    """N(0, 1) whatever the fan: the notebook's "standard" initialiser."""

    def std(self, fan_in: int, fan_out: int) -> float:
        return 1.0

    def __call__(self, shape, rng: np.random.Generator, dtype) -> np.ndarray:
        return rng.standard_normal(size=shape).astype(dtype)


INITIALIZERS = {
    "standard": StandardNormal(),
    "glorot": VarianceScaling(1.0, "fan_avg", "normal"),
    "glorot_uniform": VarianceScaling(1.0, "fan_avg", "uniform"),
    "he": VarianceScaling(2.0, "fan_in", "normal"),
    "he_uniform": VarianceScaling(2.0, "fan_in", "uniform"),
    # LeCun: variance 1 / fan_in (the init SELU networks assume); a plain normal here, as
    # for glorot and he, where Keras's lecun_normal truncates at two standard deviations
    "lecun": VarianceScaling(1.0, "fan_in", "normal"),
    "lecun_uniform": VarianceScaling(1.0, "fan_in", "uniform"),
}

def get_initializer(name: str):
    return lookup(INITIALIZERS, name, "weight_init")


def zeros_bias(shape, rng: np.random.Generator, dtype, std: float) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def normal_bias(shape, rng: np.random.Generator, dtype, std: float) -> np.ndarray:
    """N(0, std^2) with the weights' standard deviation, as the notebook's layers drew
    their biases."""
    return (rng.standard_normal(shape) * std).astype(dtype)


#: how biases start: ``fn(shape, rng, dtype, std_of_the_weights)``; zeros is the default
BIAS_INITIALIZERS = {"zeros": zeros_bias, "normal": normal_bias}
