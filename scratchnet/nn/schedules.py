"""Learning-rate schedules: pure functions of the (0-based) epoch.

Nothing mutates a stored learning rate: ``schedule(epoch)`` returns the rate for that
epoch, so each schedule can be tested (and printed) on its own. The notebook's decays,
over a run of ``epochs`` epochs:

- linear: ``lr - (lr - final_lr) * epoch / (epochs - 1)``
- exponential: ``lr * (final_lr / lr) ** (epoch / (epochs - 1))``

Both reach ``final_lr`` at the last epoch; a one-epoch run uses ``lr``. Beside them:

- step: ``max(final_lr, lr * gamma ** (epoch // step_size))`` (``final_lr`` defaults to 0)
- cosine: ``final_lr + (lr - final_lr) * (1 + cos(pi * epoch / (epochs - 1))) / 2``, from
  ``lr`` at the first epoch to ``final_lr`` (default 0) at the last
- plateau: ``max(min_lr, lr * factor ** k)`` where ``k`` counts the reductions so far. It is
  the one schedule driven by the run: the trainer hands it each evaluation's loss through
  :meth:`Schedule.observe`, and a reduction happens when the loss has not improved for
  more than ``patience`` evaluations (PyTorch's ``ReduceLROnPlateau`` rule). It stays a
  function of the epoch given what it has observed (the epochs where reductions took
  effect), and its state goes into checkpoints through ``state_dict``.

Any of them can start with a linear warm-up of ``warmup_epochs`` epochs
(``get_schedule(..., warmup_epochs=W)``): epoch ``e < W`` uses ``lr * (e + 1) / (W + 1)``,
a ramp that reaches ``lr`` exactly at epoch ``W``; from there the wrapped schedule runs,
*shifted* to start at epoch ``W`` and built over the remaining ``epochs - W`` epochs, so a
decay still ends at ``final_lr`` on the last epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

from ..errors import ConfigError
from ..options import (Alias, Doc, Epochs, Fraction, Ge, Gt, Le, Lt, MAX_EPOCHS,
                       NonNegativeFloat, PositiveFloat, check_fields, check_option,
                       check_options)
from ..registry import lookup

#: how many epochs a schedule waits or counts (its patience, its step, a warm-up)
EpochCount = Annotated[int, Ge(0), Le(MAX_EPOCHS)]
#: which way a watched value improves: "min" for a loss, "max" for accuracy (PyTorch's
#: ``mode`` of ``ReduceLROnPlateau``; each metric's own: nn.metrics.METRIC_MODES)
Mode = Literal["min", "max"]


@dataclass(frozen=True)
class Schedule:
    """A learning rate as a function of the (0-based) epoch. Every field is declared with
    its bounds (:mod:`scratchnet.options`) and checked when the schedule is made; an
    experiment file's ``optimizer.decay`` takes the fields after ``lr`` and ``epochs``."""

    lr: PositiveFloat
    epochs: Epochs = 1

    def __post_init__(self) -> None:
        check_fields(self)

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def fraction(self, epoch: int) -> float:
        """How far through the run ``epoch`` is, from 0 (first) to 1 (last)."""
        return 0.0 if self.epochs == 1 else min(max(epoch, 0), self.epochs - 1) / (self.epochs - 1)

    def rates(self) -> list[float]:
        return [self(e) for e in range(self.epochs)]

    def sampled_rates(self, limit: int) -> list[tuple[int, float]]:
        """``(epoch, rate)`` for at most ``limit`` (0-based) epochs spread evenly from the
        first to the last: every epoch of a short run, a summary of a long one."""
        n = min(self.epochs, max(limit, 2))
        return [(e, self(e)) for e in sorted({round(i * (self.epochs - 1) / max(n - 1, 1))
                                              for i in range(n)})]

    # -- schedules driven by evaluations (reduce-on-plateau); no-ops for the others -----
    def observe(self, loss: float, epoch: int) -> bool:
        """Hand in the watched value (the loss, or the metric early stopping monitors) of
        the evaluation made after (0-based) ``epoch``; True when that changes the rate
        from ``epoch + 1`` on. A pure schedule ignores it."""
        return False

    def watching(self, mode: Mode) -> "Schedule":
        """This schedule, made to watch a value that improves in ``mode`` (the trainer
        hands it early stopping's): itself, unless it observes evaluations."""
        return self

    def state_dict(self) -> dict:
        """What a checkpoint must keep to resume exactly (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ConfigError(f"{type(self).__name__} keeps no state, but the checkpoint "
                              f"holds schedule state {state!r} (was it saved by another "
                              f"schedule?)")


@dataclass(frozen=True)
class Constant(Schedule):
    # taken and unused, so that a sweep over decay types can give them all one final_lr
    final_lr: Annotated[NonNegativeFloat | None, Doc("unused: a constant rate has no end")
                        ] = None

    def __call__(self, epoch: int) -> float:
        return self.lr


#: where a decay ends (required by linear and exponential decay)
FinalLR = Annotated[NonNegativeFloat, Doc("the rate at the last epoch (at most lr)")]


@dataclass(frozen=True)
class LinearDecay(Schedule):
    final_lr: FinalLR = field(kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_final_lr(self, self.final_lr)

    def __call__(self, epoch: int) -> float:
        return self.lr - (self.lr - self.final_lr) * self.fraction(epoch)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    # a rate cannot decay exponentially to 0 (linear decay can)
    final_lr: Annotated[PositiveFloat, Doc("the rate at the last epoch (at most lr)")] = field(
        kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_final_lr(self, self.final_lr)

    def __call__(self, epoch: int) -> float:
        return self.lr * (self.final_lr / self.lr) ** self.fraction(epoch)


def _check_final_lr(schedule: Schedule, value, what: str = "final_lr") -> None:
    """A rate the schedule ends at or falls to is at most its ``lr``."""
    if value > schedule.lr:
        raise ConfigError(f"{what} must be at most lr={schedule.lr:g}, got {value!r}",
                          key=(what,))


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``max(final_lr, lr * gamma ** (epoch // step_size))``: drop by ``gamma`` every
    ``step_size`` epochs (PyTorch's ``StepLR``; ``gamma`` defaults to its 0.1), never below
    ``final_lr``."""

    step_size: Annotated[Epochs, Doc("epochs between drops")] = field(kw_only=True)
    gamma: Annotated[float, Gt(0), Le(1), Doc("factor at each drop")] = 0.1
    final_lr: Annotated[NonNegativeFloat, Doc("the floor (at most lr)")] = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_final_lr(self, self.final_lr)

    def __call__(self, epoch: int) -> float:
        return max(self.final_lr, self.lr * self.gamma ** (max(epoch, 0) // self.step_size))


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Half a cosine from ``lr`` at the first epoch to ``final_lr`` (default 0) at the last
    (PyTorch's ``CosineAnnealingLR`` with ``T_max = epochs - 1``)."""

    final_lr: Annotated[NonNegativeFloat, Doc("the rate at the last epoch (at most lr)")] = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_final_lr(self, self.final_lr)

    def __call__(self, epoch: int) -> float:
        f = self.fraction(epoch)
        if f >= 1.0:
            return self.final_lr
        # written from lr down, so the first epoch is lr exactly
        return self.lr - (self.lr - self.final_lr) * 0.5 * (1.0 - math.cos(math.pi * f))


@dataclass(frozen=True)
class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the observed loss has not improved for more
    than ``patience`` evaluations in a row; never below ``min_lr``.

    The rule is PyTorch's ``ReduceLROnPlateau`` (relative threshold, no cooldown): in
    mode "min" a value improves when it is below ``best * (1 - threshold)``, in mode "max"
    when it is above ``best * (1 + threshold)``; every evaluation that does not improve
    adds one to a counter, and when the counter exceeds ``patience`` the rate drops and
    the counter starts again. ``patience`` counts evaluations (``eval_every`` epochs
    apart), as early stopping does. The trainer feeds what early stopping monitors, in
    its mode (:meth:`watching`): the validation loss by default (the training loss when
    there is no validation set), or a metric such as the accuracy (mode "max").

    The rate for an epoch is ``max(min_lr, lr * factor ** k)``, ``k`` being the number of
    reductions that took effect at or before it, so the schedule is still a function of the
    epoch given what it has observed; ``state_dict`` holds that history for checkpoints.
    """

    factor: Annotated[float, Gt(0), Lt(1), Doc("factor on a plateau")] = 0.1
    patience: Annotated[EpochCount, Doc("evaluations without improvement before a drop")
                        ] = 10
    # final_lr: what the other schedules call where the rate ends
    min_lr: Annotated[NonNegativeFloat, Alias("final_lr"), Doc(
        "lower bound (at most lr)")] = 0.0
    threshold: Annotated[Fraction, Doc("relative improvement that counts as one")] = 1e-4
    # an experiment file does not give it: it follows train.early_stopping's monitor
    mode: Annotated[Mode, Doc("min: the watched value should fall (a loss); max: rise")
                    ] = "min"
    _state: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_final_lr(self, self.min_lr, "min_lr")
        self._state.update(best=None, wait=0, drops=[])

    def __call__(self, epoch: int) -> float:
        k = sum(1 for d in self._state["drops"] if d <= epoch)
        return max(self.min_lr, self.lr * self.factor ** k)

    def observe(self, loss: float, epoch: int) -> bool:
        state = self._state
        value = float(loss)
        best = state["best"]
        if math.isfinite(value) and (best is None or (
                value < best * (1.0 - self.threshold) if self.mode == "min"
                else value > best * (1.0 + self.threshold))):
            state["best"] = value
            state["wait"] = 0
            return False
        state["wait"] += 1
        if state["wait"] <= self.patience:
            return False
        state["wait"] = 0
        before = self(epoch + 1)
        state["drops"].append(epoch + 1)
        if self(epoch + 1) < before:
            return True
        state["drops"].pop()  # already at min_lr: nothing to record
        return False

    def watching(self, mode: Mode) -> "ReduceOnPlateau":
        return self if mode == self.mode else replace(self, mode=mode)

    @property
    def drops(self) -> list[int]:
        """The (0-based) epochs from which each reduction took effect."""
        return list(self._state["drops"])

    def state_dict(self) -> dict:
        s = self._state
        return {"best": s["best"], "wait": s["wait"], "drops": list(s["drops"])}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"best", "wait", "drops"}:
            raise ConfigError(f"plateau schedule state needs keys best, wait and drops, "
                              f"got {sorted(state)}")
        self._state.update(best=None if state["best"] is None else float(state["best"]),
                           wait=int(state["wait"]), drops=[int(d) for d in state["drops"]])


@dataclass(frozen=True)
class Warmup(Schedule):
    """``lr * (e + 1) / (W + 1)`` for the first ``W = warmup_epochs`` epochs, then
    ``schedule`` shifted by ``W`` epochs (it should be built over ``epochs - W`` epochs, as
    :func:`get_schedule` does). A plateau schedule inside only observes evaluations from
    the end of the warm-up on (the loss falls anyway while the rate ramps up)."""

    schedule: Schedule = field(kw_only=True)
    warmup_epochs: Annotated[EpochCount, Doc("linear warm-up epochs before the schedule")
                             ] = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()

    def __call__(self, epoch: int) -> float:
        w = self.warmup_epochs
        if epoch < w:
            return self.lr * (max(epoch, 0) + 1) / (w + 1)
        return self.schedule(epoch - w)

    def observe(self, loss: float, epoch: int) -> bool:
        if epoch < self.warmup_epochs - 1:
            return False
        return self.schedule.observe(loss, epoch - self.warmup_epochs)

    def watching(self, mode: Mode) -> "Warmup":
        inner = self.schedule.watching(mode)
        return self if inner is self.schedule else replace(self, schedule=inner)

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)


SCHEDULES: dict[str, type[Schedule]] = {
    "none": Constant,
    "linear": LinearDecay,
    "exponential": ExponentialDecay,
    "step": StepDecay,
    "cosine": CosineDecay,
    "plateau": ReduceOnPlateau,
}


def get_schedule(decay_type: str | None, lr: float, epochs: int,
                 final_lr: float | None = None, warmup_epochs: int = 0, **kwargs) -> Schedule:
    """The schedule named ``decay_type`` ("none"/None, "linear", "exponential", "step",
    "cosine", "plateau") over ``epochs`` epochs, with its options as keywords
    (``step_size``, ``gamma``; ``factor``, ``patience``, ``min_lr``, ``threshold``).

    ``final_lr`` is required by linear and exponential decay, the floor of step decay, the
    end of cosine decay (0 when None), ``min_lr`` for plateau; "none" takes and ignores it.
    ``warmup_epochs > 0`` wraps the schedule in a :class:`Warmup`. A ConfigError's ``key``
    names the option at fault.
    """
    name = "none" if decay_type in (None, "none") else decay_type
    cls = lookup(SCHEDULES, name, "decay type")
    if final_lr is not None:
        kwargs["final_lr"] = final_lr  # plateau's min_lr is declared under that alias too
    epochs = check_option(Warmup, "epochs", epochs)
    warmup_epochs = check_option(Warmup, "warmup_epochs", warmup_epochs)
    options = check_options(cls, kwargs, f"{name} decay",
                            supplied={"lr": lr, "epochs": max(epochs - warmup_epochs, 1)})
    inner = cls(**options)
    if warmup_epochs == 0:
        return inner
    return Warmup(lr=lr, epochs=epochs, schedule=inner, warmup_epochs=warmup_epochs)


#: the name of earlier releases
make_schedule = get_schedule
