"""Learning-rate schedules: pure functions of the (0-based) epoch.

Nothing mutates a stored learning rate: ``schedule(epoch)`` returns the rate for that
epoch, so each schedule can be tested (and printed) on its own. The notebook's decays,
over a run of ``epochs`` epochs:

- linear: ``lr - (lr - final_lr) * epoch / (epochs - 1)``
- exponential: ``lr * (final_lr / lr) ** (epoch / (epochs - 1))``

Both reach ``final_lr`` at the last epoch; a one-epoch run uses ``lr``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError


def _check_lr(lr: float, what: str = "learning rate") -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"{what} must be > 0, got {lr!r}")
    return float(lr)


@dataclass(frozen=True)
class Schedule:
    lr: float
    epochs: int = 1

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}")

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def fraction(self, epoch: int) -> float:
        """How far through the run ``epoch`` is, from 0 (first) to 1 (last)."""
        return 0.0 if self.epochs == 1 else min(max(epoch, 0), self.epochs - 1) / (self.epochs - 1)

    def rates(self) -> list[float]:
        return [self(e) for e in range(self.epochs)]


@dataclass(frozen=True)
class Constant(Schedule):
    def __call__(self, epoch: int) -> float:
        return self.lr


@dataclass(frozen=True)
class LinearDecay(Schedule):
    final_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.final_lr, (int, float)) or not 0 <= self.final_lr <= self.lr:
            raise ConfigError(f"final_lr must be in [0, lr={self.lr}], got {self.final_lr!r}")

    def __call__(self, epoch: int) -> float:
        return self.lr - (self.lr - self.final_lr) * self.fraction(epoch)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    final_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.final_lr, (int, float)) or not 0 < self.final_lr <= self.lr:
            raise ConfigError(
                f"exponential decay needs 0 < final_lr <= lr={self.lr} (a rate cannot decay "
                f"exponentially to 0; use linear decay for that), got {self.final_lr!r}")

    def __call__(self, epoch: int) -> float:
        return self.lr * (self.final_lr / self.lr) ** self.fraction(epoch)


SCHEDULES: dict[str, type[Schedule]] = {
    "none": Constant,
    "linear": LinearDecay,
    "exponential": ExponentialDecay,
}


def make_schedule(decay_type: str | None, lr: float, epochs: int, final_lr: float | None = None,
                  **kwargs) -> Schedule:
    """The schedule named ``decay_type`` ("none"/None, "linear", "exponential", ...)."""
    name = "none" if decay_type in (None, "none") else decay_type
    try:
        cls = SCHEDULES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown decay type {decay_type!r}; expected one of: "
                          f"{', '.join(SCHEDULES)}") from None
    if name == "none":
        return cls(lr=lr, epochs=epochs)
    if final_lr is None:
        raise ConfigError(f"{name} decay needs final_lr")
    return cls(lr=lr, epochs=epochs, final_lr=final_lr, **kwargs)
