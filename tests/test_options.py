"""The declaration vocabulary (scratchnet.options): a constructor's signature checks its
arguments, names the option at fault, and lists its options with their bounds."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest

from scratchnet.errors import ConfigError
from scratchnet.options import (Alias, Doc, Fraction, Ge, NonNegativeFloat, PositiveFloat,
                                PositiveInt, checked, options)


class _Base:
    @checked
    def __init__(self, lr: PositiveFloat = 0.01, *,
                 weight_decay: Annotated[NonNegativeFloat, Doc("L2 on the weights")] = 0.0,
                 clip_norm: PositiveFloat | None = None):
        self.lr, self.weight_decay, self.clip_norm = lr, weight_decay, clip_norm


class _Child(_Base):
    @checked
    def __init__(self, lr: PositiveFloat = 0.01, momentum: Fraction = 0.9, *,
                 padding: Literal["same", "valid"] | Annotated[int, Ge(0)] = "same",
                 kernel_size: Annotated[PositiveInt, Alias("param_size")] = 3, **rest):
        super().__init__(lr, **rest)
        self.momentum, self.padding, self.kernel_size = momentum, padding, kernel_size


def test_options_follow_the_signature_through_the_base_classes():
    found = {o.name: o for o in options(_Child)}
    assert list(found) == ["lr", "momentum", "padding", "kernel_size", "weight_decay",
                           "clip_norm"]
    assert found["momentum"].describe() == "a number in [0, 1)"
    assert found["weight_decay"].doc == "L2 on the weights"
    assert found["kernel_size"].aliases == ("param_size",)
    assert found["clip_norm"].default is None and not found["lr"].required


def test_values_are_converted_and_aliases_renamed():
    made = _Child(1, 0.5, padding=2, param_size=5, weight_decay=1)
    assert (made.lr, type(made.lr), made.padding, made.kernel_size) == (1.0, float, 2, 5)
    assert made.weight_decay == 1.0


@pytest.mark.parametrize("kwargs, key, text", [
    ({"momentum": 1.0}, "momentum", "momentum must be a number in [0, 1), got 1.0"),
    ({"lr": -1}, "lr", "lr must be a number > 0, got -1"),
    ({"padding": "full"}, "padding", "got 'full'"),
    ({"clip_norm": 0}, "clip_norm", "a number > 0 or null, got 0"),
    ({"weight_decay": float("nan")}, "weight_decay", "got nan"),
    ({"kernel_size": True}, "kernel_size", "a positive integer, got True"),
])
def test_a_bad_value_names_its_option(kwargs, key, text):
    with pytest.raises(ConfigError) as caught:
        _Child(**kwargs)
    assert caught.value.key == (key,)
    assert text in str(caught.value)


def test_an_option_and_its_alias_together_are_refused():
    with pytest.raises(ConfigError, match="kernel_size and param_size"):
        _Child(kernel_size=3, param_size=5)
