"""Optimizers: handed the parameters, never the network.

The base class owns the loop over parameters and their per-parameter state (velocities,
moments); a subclass writes one in-place update for one parameter in ``_update``. The
learning rate for each step comes from the schedule (see :mod:`scratchnet.schedules`),
which the trainer asks per epoch.
"""

from __future__ import annotations

import numpy as np

from .core import Param
from .errors import ConfigError
from .schedules import Schedule, _check_lr, make_schedule


class Optimizer:
    """Base class.

    Args:
        lr: the (initial) learning rate, > 0.
        final_lr: where the decay ends (with ``decay_type``).
        decay_type: "linear" or "exponential" (per epoch, the notebook's formulas), or None.
    """

    name = ""
    #: names of the per-parameter state arrays a subclass keeps (saved in checkpoints)
    slots: tuple[str, ...] = ()

    def __init__(self, lr: float = 0.01, final_lr: float | None = None,
                 decay_type: str | None = None):
        self.lr = _check_lr(lr)
        self.final_lr = final_lr
        self.decay_type = None if decay_type in (None, "none") else decay_type
        if self.decay_type is not None:
            make_schedule(self.decay_type, self.lr, 2, final_lr)  # validate now, not mid-run
        self.state: dict[Param, dict[str, np.ndarray]] = {}

    def schedule(self, epochs: int) -> Schedule:
        """The learning rate as a function of the epoch, for a run of ``epochs`` epochs."""
        return make_schedule(self.decay_type, self.lr, epochs, self.final_lr)

    def step(self, params: list[Param], lr: float) -> None:
        """Update every parameter in place from its ``grad``."""
        state = self.state
        for p in params:
            slots = state.get(p)
            if slots is None:
                slots = state[p] = {name: np.zeros_like(p.value) for name in self.slots}
            self._update(p, slots, lr)

    def _update(self, param: Param, slots: dict[str, np.ndarray], lr: float) -> None:
        raise NotImplementedError

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self, params: list[Param]) -> dict[str, np.ndarray]:
        """``"<param name>.<slot>" -> array`` for every parameter that has state."""
        return {f"{p.name}.{slot}": arr.copy()
                for p in params if p in self.state for slot, arr in self.state[p].items()}

    def load_state_dict(self, params: list[Param], state: dict[str, np.ndarray]) -> None:
        self.state = {}
        for p in params:
            keys = [f"{p.name}.{slot}" for slot in self.slots]
            if self.slots and all(k in state for k in keys):
                self.state[p] = {slot: np.array(state[k], dtype=p.value.dtype)
                                 for slot, k in zip(self.slots, keys)}

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr, "final_lr": self.final_lr,
                "decay_type": self.decay_type}


class SGD(Optimizer):
    """``p -= lr * grad``."""

    name = "sgd"

    def _update(self, param, slots, lr):
        param.value -= lr * param.grad


class SGDMomentum(Optimizer):
    """``v = momentum * v + lr * grad; p -= v`` (the book's form, lr inside the velocity)."""

    name = "sgd_momentum"
    slots = ("velocity",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, final_lr: float | None = None,
                 decay_type: str | None = None):
        super().__init__(lr, final_lr, decay_type)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def _update(self, param, slots, lr):
        v = slots["velocity"]
        v *= self.momentum
        v += lr * param.grad
        param.value -= v

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum}


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "sgd_momentum": SGDMomentum}


def get_optimizer(name: str, **kwargs) -> Optimizer:
    try:
        cls = OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}") from None
    return cls(**kwargs)
