"""Optimizers: handed the parameters, never the network.

The base class owns the loop over parameters and their per-parameter state (velocities,
moments); a subclass writes one in-place update for one parameter in ``_update``. For a
built network, whose parameters lie end to end in two flat arrays (values, gradients:
:func:`~scratchnet.nn.core.pack`), that update runs once, on one Param over the flat
arrays, with flat state that each parameter's state is a view into: the same numbers,
in one pass instead of one per parameter. The learning rate for each step comes from the
schedule (see :mod:`scratchnet.nn.schedules`), which the trainer asks per epoch.

Two things every optimizer does in the base class's ``step``, before the subclass's
update: clipping all gradients together by their global L2 norm (``clip_norm``), then L2
weight decay on the *weights* only (parameters named ``W``; biases and batch-norm's
``gamma``/``beta`` are left alone). Both work on ``Param.grad`` in place, so after a step
each ``grad`` holds the gradient that was applied; the next backward pass overwrites it.
"""

from __future__ import annotations

import math
import operator
from typing import Annotated

import numpy as np

from ..errors import ConfigError, ShapeError
from ..options import (Doc, Fraction, Named, NonNegativeFloat, PositiveFloat, Via, build,
                       checked, options)
from . import blas
from .core import Param, packed
from .schedules import SCHEDULES, Schedule, get_schedule

#: how every optimizer declares its (initial) learning rate; the default is its own
LearningRate = Annotated[PositiveFloat, Doc("(initial) learning rate")]
Epsilon = Annotated[PositiveFloat, Doc("added to the denominator, for stability")]


def is_weight(param: Param) -> bool:
    """Whether weight decay applies: a layer's weight matrix ``W`` (a recurrent layer's
    ``W_x`` and ``W_h``), not ``B``, ``B_h``, ``gamma``, ``beta``."""
    return param.name.rsplit(".", 1)[-1] in ("W", "W_x", "W_h")


class Optimizer:
    """Base class. Every option is declared in the signature (:mod:`scratchnet.options`);
    what the declarations leave out: ``weight_decay`` ``wd`` adds ``wd * W`` to the gradient
    of every ``W`` before the update (the gradient of ``wd/2 * |W|^2``, torch.optim's
    ``weight_decay``; :class:`AdamW` decouples it); with ``clip_norm``, all gradients are
    scaled together by ``clip_norm / norm`` whenever their global L2 norm exceeds it (before
    the L2 term, as ``torch.nn.utils.clip_grad_norm_`` before ``optimizer.step()``);
    ``decay_type`` names a schedule of :data:`~scratchnet.nn.SCHEDULES`, ``final_lr`` and
    ``decay_kwargs`` (``step_size``, ``threshold``, ``warmup_epochs``, ...) its options.

    A subclass declares its own settings (``momentum``, ``beta1``, ...), kept as attributes
    of the same names, and hands the rest, ``**options``, to this constructor. An
    experiment file gives the schedule's options under ``optimizer.decay`` (each option's
    :class:`~scratchnet.options.Via`).
    """

    name = ""
    #: names of the per-parameter state arrays a subclass keeps (saved in checkpoints)
    slots: tuple[str, ...] = ()
    #: True when weight decay shrinks the weights directly instead of entering the
    #: gradient (AdamW)
    decoupled_weight_decay = False
    #: True when the update is element-wise and the same for every parameter, its slots
    #: shaped like the parameter (or, like Adam's step counter, one entry that every
    #: parameter's step moves alike): then the parameters of a network, whose values and
    #: gradients lie end to end in two flat arrays (:func:`~scratchnet.nn.core.pack`), are
    #: updated all at once, with the same numbers in a few long passes instead of a few
    #: short ones per parameter (at batch 60, the calls cost more than the arithmetic)
    elementwise = True

    @checked
    def __init__(self, lr: LearningRate = 0.01,
                 final_lr: Annotated[NonNegativeFloat | None, Via("decay", "final_lr"), Doc(
                     "where the decay ends")] = None,
                 decay_type: Annotated[str | None, Named(SCHEDULES, "decay type"),
                                       Via("decay", "type")] = None, *,
                 weight_decay: Annotated[NonNegativeFloat, Doc(
                     "L2 on the weights (decoupled for adamw)")] = 0.0,
                 clip_norm: Annotated[PositiveFloat | None, Doc(
                     "clip gradients by their global norm")] = None,
                 decay_kwargs: Annotated[dict | None, Via("decay")] = None):
        self.lr = lr
        self.final_lr = final_lr
        self.decay_type = None if decay_type in (None, "none") else decay_type
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.decay_kwargs = dict(decay_kwargs or {})
        self.schedule(2)  # validate now, not mid-run
        self.state: dict[Param, dict[str, np.ndarray]] = {}
        #: the global gradient norm measured by the last step (with ``clip_norm`` only)
        self.last_grad_norm: float | None = None
        self._flat: tuple | None = None  # see _packed

    def schedule(self, epochs: int) -> Schedule:
        """The learning rate as a function of the epoch, for a run of ``epochs`` epochs (a
        ConfigError names the option at fault: ``final_lr``, ``decay_type``, or
        ``decay_kwargs`` and the schedule's option)."""
        try:
            return get_schedule(self.decay_type, self.lr, epochs, self.final_lr,
                                **self.decay_kwargs)
        except ConfigError as e:  # a key of the schedule's, as this constructor's
            own = e.key[:1] in (("epochs",), ("final_lr",))
            key = e.key if own else ("decay_kwargs", *e.key) if e.key else ("decay_type",)
            raise ConfigError(str(e), key=key) from None

    def step(self, params: list[Param], lr: float) -> None:
        """Update every parameter in place from its ``grad`` (clipped and with the L2 term
        first, in place: see the module docstring)."""
        if self.clip_norm is not None:
            self._clip(params)
        wd = self.weight_decay
        if wd:
            for p in filter(is_weight, params):
                if self.decoupled_weight_decay:
                    p.value *= 1.0 - lr * wd
                else:
                    p.grad += wd * p.value
        flat = self._packed(params) if self.elementwise else None
        if flat is not None:
            self._update(*flat, lr)  # every parameter at once
            return
        state = self.state
        for p in params:
            slots = state.get(p)
            if slots is None:
                slots = state[p] = self._new_slots(p)
            self._update(p, slots, lr)

    def _packed(self, params: list[Param]) -> tuple[Param, dict[str, np.ndarray]] | None:
        """(one Param over the flat arrays of ``params``, flat slots) when the parameters are
        packed (:func:`~scratchnet.nn.core.packed`), else None. Each parameter's slots in
        ``state`` become views into the flat slots, keeping what they held, so checkpoints
        see them as before; a slot not shaped like the parameter (a step counter) is one
        array that every parameter's state shares, so the parameters must agree on it.
        Worked out once, then recognised by identity while the same parameters keep the
        same arrays and ``state`` holds the same slot arrays."""
        state, known = self.state, getattr(self, "_flat", None)  # None in older pickles
        if known is not None and known[0] is state and len(known[1]) == len(params) \
                and all(p is q and p.value is v and p.grad is g and state.get(p) is d
                        and all(map(operator.is_, d.values(), arrays))
                        for p, (q, v, g, d, arrays) in zip(params, known[1])):
            return known[2]
        if known is not None:  # leaving the flat slots: each parameter gets its own again
            self._flat = None
            for p in state:
                state[p] = {name: a.copy() for name, a in state[p].items()}
        flat = packed(params)
        if flat is None:
            return None
        probe = self._new_slots(Param(np.zeros(2, flat.value.dtype), "", np.zeros(2)))
        shared = [name for name, a in probe.items() if a.shape != (2,)]
        for name in shared:
            held = [state[p][name] for p in params if name in state.get(p, {})]
            if held and (len(held) < len(params)
                         or any(not np.array_equal(h, held[0]) for h in held)):
                return None  # parameters that took different numbers of steps
        slots = self._new_slots(flat)
        start = 0
        for p in params:
            end = start + p.value.size
            old = state.get(p, {})
            views = {name: slots[name] if name in shared else
                     slots[name][start:end].reshape(p.shape) for name in slots}
            for name, view in views.items():
                if name in old:  # a shared slot: each parameter's is the same (above)
                    view[...] = old[name]
            state[p] = views
            start = end
        self._flat = (state, [(p, p.value, p.grad, state[p], tuple(state[p].values()))
                              for p in params], (flat, slots))
        return flat, slots

    def __getstate__(self) -> dict:
        # the flat slots are found again at the next step; a pickle need not hold them twice
        return {**self.__dict__, "_flat": None}

    def _clip(self, params: list[Param]) -> None:
        norm = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
        self.last_grad_norm = norm
        if norm > self.clip_norm:
            scale = self.clip_norm / norm
            for p in params:
                p.grad *= scale

    def _new_slots(self, param: Param) -> dict[str, np.ndarray]:
        """Fresh state for one parameter: zeros shaped like it, one array per slot."""
        return {name: np.zeros_like(param.value) for name in self.slots}

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
                slots = self._new_slots(p)  # the right shapes and dtypes (a step counter)
                for slot, k in zip(self.slots, keys):
                    saved = np.asarray(state[k])
                    if saved.shape != slots[slot].shape:
                        raise ShapeError(f"optimizer state {k}: expected shape "
                                         f"{slots[slot].shape}, got {saved.shape}")
                    slots[slot][...] = saved
                self.state[p] = slots

    def config(self) -> dict:
        """The name and every declared option (attributes of the same names)."""
        return {"name": self.name, **{o.name: getattr(self, o.name) for o in options(type(self))}}


class SGD(Optimizer):
    """``p -= lr * grad``."""

    name = "sgd"

    def _update(self, param, slots, lr):
        if not blas.sgd_step(lr, param.grad, param.value):  # one pass, no temporary
            param.value -= lr * param.grad


class SGDMomentum(Optimizer):
    """``v = momentum * v + lr * grad; p -= v`` (the book's form, lr inside the velocity).

    With ``nesterov=True`` the step looks ahead: ``p -= momentum * v + lr * grad`` with the
    updated ``v`` (Sutskever et al. 2013 in the form PyTorch uses; for a constant rate it
    is exactly ``torch.optim.SGD(..., momentum, nesterov=True)``, whose buffer is ``v / lr``).
    """

    name = "sgd_momentum"
    slots = ("velocity",)

    @checked
    def __init__(self, lr: LearningRate = 0.01,
                 momentum: Annotated[Fraction, Doc("share of the last step kept")] = 0.9, *,
                 nesterov: Annotated[bool, Doc("look ahead (Nesterov's momentum)")] = False,
                 **options):
        super().__init__(lr, **options)
        self.momentum = momentum
        self.nesterov = nesterov

    def _update(self, param, slots, lr):
        v, g = slots["velocity"], param.grad
        # two passes over memory, no temporary
        if not self.nesterov and blas.momentum_step(lr, self.momentum, g, v, param.value):
            return
        v *= self.momentum
        v += lr * g
        if self.nesterov:
            param.value -= self.momentum * v
            param.value -= lr * param.grad
        else:
            param.value -= v


class SGDNesterov(SGDMomentum):
    """SGD with Nesterov momentum: ``SGDMomentum(..., nesterov=True)`` under its own
    config name, "nesterov"."""

    name = "nesterov"
    fixed_options = ("nesterov",)

    @checked
    def __init__(self, *args, **options):
        super().__init__(*args, nesterov=True, **options)


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011): ``s += g^2; p -= lr * g / (sqrt(s) + eps)``.

    Defaults are ``torch.optim.Adagrad``'s: ``lr=0.01``, ``eps=1e-10``, the sum starting at
    0 (PyTorch's ``lr_decay`` is left to the schedules).
    """

    name = "adagrad"
    slots = ("sum_sq",)

    @checked
    def __init__(self, lr: LearningRate = 0.01, eps: Epsilon = 1e-10, **options):
        super().__init__(lr, **options)
        self.eps = eps

    def _update(self, param, slots, lr):
        s, g = slots["sum_sq"], param.grad
        s += g * g
        denom = np.sqrt(s)
        denom += self.eps
        param.value -= lr * (g / denom)


class RMSProp(Optimizer):
    """RMSProp (Hinton, lecture 6e): ``a = rho * a + (1 - rho) * g^2;
    p -= lr * g / (sqrt(a) + eps)``.

    ``rho=0.9`` and ``lr=0.001`` are Hinton's and Keras's defaults (PyTorch's
    ``RMSprop`` calls ``rho`` ``alpha`` and defaults it to 0.99, with ``lr=0.01``); ``eps``
    is added outside the square root, as both do. No momentum, not centred.
    """

    name = "rmsprop"
    slots = ("square_avg",)

    @checked
    def __init__(self, lr: LearningRate = 0.001, rho: Annotated[Fraction, Doc(
            "decay of the running mean of squared gradients")] = 0.9, eps: Epsilon = 1e-8,
            **options):
        super().__init__(lr, **options)
        self.rho = rho
        self.eps = eps

    def _update(self, param, slots, lr):
        a, g = slots["square_avg"], param.grad
        a *= self.rho
        a += (1.0 - self.rho) * (g * g)
        denom = np.sqrt(a)
        denom += self.eps
        param.value -= lr * (g / denom)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments::

        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    (``eps`` outside the square root, as ``torch.optim.Adam``; defaults are the paper's).
    ``t`` counts this parameter's steps: it is the slot ``step`` (an int64 array of one
    entry, which the parameters of a packed network share), so checkpoints keep it beside
    ``m`` and ``v``. ``weight_decay`` is the coupled
    L2 term of the base class; :class:`AdamW` decouples it.
    """

    name = "adam"
    slots = ("m", "v", "step")

    @checked
    def __init__(self, lr: LearningRate = 0.001,
                 beta1: Annotated[Fraction, Doc("decay of the mean of the gradients")] = 0.9,
                 beta2: Annotated[Fraction, Doc("decay of the mean of their squares")] = 0.999,
                 eps: Epsilon = 1e-8, **options):
        super().__init__(lr, **options)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def _new_slots(self, param):
        slots = super()._new_slots(param)
        slots["step"] = np.zeros(1, dtype=np.int64)
        return slots

    def _update(self, param, slots, lr):
        m, v, g = slots["m"], slots["v"], param.grad
        step = slots["step"]
        step += 1
        t = int(step[0])
        b1, b2 = self.beta1, self.beta2
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        denom = np.sqrt(v)
        denom /= math.sqrt(1.0 - b2 ** t)
        denom += self.eps
        param.value -= (lr / (1.0 - b1 ** t)) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as
    ``torch.optim.AdamW``: each weight is first shrunk, ``W *= 1 - lr * weight_decay``, then
    takes the Adam step of its plain gradient. Default ``weight_decay=0.01`` (PyTorch's).
    Only weights ``W`` decay (PyTorch decays whatever is in the parameter group).
    """

    name = "adamw"
    decoupled_weight_decay = True

    @checked
    def __init__(self, *args, weight_decay: Annotated[NonNegativeFloat, Doc(
            "decoupled: each step shrinks the weights by lr times it")] = 0.01, **options):
        super().__init__(*args, weight_decay=weight_decay, **options)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, SGDMomentum, SGDNesterov, AdaGrad, RMSProp, Adam, AdamW)
}


def get_optimizer(name: str, **kwargs) -> Optimizer:
    return build(OPTIMIZERS, name, "optimizer", **kwargs)
