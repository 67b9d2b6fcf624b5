"""Argument checks of what is not a declared option (an operation's rate, a thread count,
a data loader's argument): declared options are checked by :mod:`scratchnet.options`.

Each returns the value as a plain Python ``int``/``float``/``bool`` or raises a
:class:`~scratchnet.errors.ConfigError` quoting the bad value: ``dropout must be a rate in
[0, 1), got 1.5``. Booleans are never numbers here (``True`` is not a batch size).
"""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)




def integer(value, what: str, minimum: int | None = None) -> int:
    """An integer (not a bool), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{what} must be an integer{bound}, got {value!r}")
    return int(value)


def positive_int(value, what: str) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def number(value, what: str, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within the bounds given (``low_open``: ``value > low``;
    ``high_open``: ``value < high``). The message states the interval:
    ``must be > 0``, ``must be >= 0``, ``must be in (0, 1]``."""
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ConfigError(f"{what} must be {interval(low, high, low_open, high_open)}, "
                          f"got {value!r}")
    return float(value)


def interval(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """``> 0``, ``>= 0``, ``<= 1``, ``in [0, 1)`` or ``a finite number`` (integer bounds
    in full: ``in [0, 4294967295]``)."""
    def text(x) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"

    if low is not None and high is not None:
        return (f"in {'(' if low_open else '['}{text(low)}, {text(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f"{'>' if low_open else '>='} {text(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {text(high)}"
    return "a finite number"


def positive(value, what: str) -> float:
    """A finite number > 0 (learning rates, epsilons, deltas)."""
    return number(value, what, 0, low_open=True)






def rate(value, what: str) -> float:
    """A drop rate in [0, 1): ``dropout must be a rate in [0, 1), got 1.2``."""
    if not (_is_real(value) and 0 <= value < 1):
        raise ConfigError(f"{what} must be a rate in [0, 1), got {value!r}")
    return float(value)


def open_fraction(value, what: str) -> float:
    """A number strictly between 0 and 1 (a share of the rows held out)."""
    if not (_is_real(value) and 0 < value < 1):
        raise ConfigError(f"{what} must be in (0, 1) (strictly between 0 and 1), "
                          f"got {value!r}")
    return float(value)


def boolean(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    return value
