"""Optimizers: handed the parameters, never the network.

The base class owns the loop and the per-parameter state (velocities, moments); a subclass
writes one in-place update in ``_update``. The state is laid out like the parameters
(:mod:`~scratchnet.nn.slots`): for a network's flat parameters, an element-wise update runs
once over all of them, with the numbers one update per parameter would give. The learning
rate of each epoch comes from the schedule (:mod:`scratchnet.nn.schedules`).

Two things every optimizer does in the base class's ``step``, before the subclass's update:
with ``clip_norm``, all gradients are scaled together by ``clip_norm / norm`` whenever their
global L2 norm exceeds it (``torch.nn.utils.clip_grad_norm_`` before ``optimizer.step()``);
then ``weight_decay`` ``wd`` adds ``wd * W`` to the gradient of every weight ``W`` (that of
``wd/2 * |W|^2``, torch.optim's ``weight_decay``; biases and batch-norm's ``gamma``/``beta``
are left alone; :class:`AdamW` decouples it). Both work on ``Param.grad`` in place, so after
a step each ``grad`` holds the gradient that was applied; the next backward pass overwrites it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Annotated

import numpy as np

from ..errors import ConfigError, ShapeError
from ..options import (Doc, Fraction, Named, NonNegativeFloat, PositiveFloat, Via, build,
                       checked, options)
from . import blas
from .core import Param
from .schedules import SCHEDULES, Schedule, get_schedule
from .slots import Slots

#: how every optimizer declares its (initial) learning rate; the default is its own
LearningRate = Annotated[PositiveFloat, Doc("(initial) learning rate")]
Epsilon = Annotated[PositiveFloat, Doc("added to the denominator, for stability")]


def is_weight(param: Param) -> bool:
    """Whether weight decay applies: a layer's weight matrix ``W`` (a recurrent layer's
    ``W_x`` and ``W_h``), not ``B``, ``B_h``, ``gamma``, ``beta``."""
    return param.name.rsplit(".", 1)[-1] in ("W", "W_x", "W_h")


class Optimizer:
    """Base class. Every option is declared in the signature (:mod:`scratchnet.options`;
    clipping and weight decay: the module docstring). ``decay_type`` names a schedule of
    :data:`~scratchnet.nn.SCHEDULES`, ``final_lr`` and ``decay_kwargs`` (``step_size``,
    ``threshold``, ``warmup_epochs``, ...) its options, which an experiment file gives under
    ``optimizer.decay`` (each option's :class:`~scratchnet.options.Via`). A subclass
    declares its own settings (``momentum``, ``beta1``, ...), kept as attributes of the same
    names, and hands the rest, ``**options``, to this constructor.

    It holds the state of the parameters it was last handed; handed others, it keeps the
    state of those it held and starts the rest at zero. They step together (Adam's bias
    correction counts :attr:`steps_taken`); :meth:`reset` forgets all of it."""

    name = ""
    #: names of the per-parameter state arrays a subclass keeps (saved in checkpoints)
    slots: tuple[str, ...] = ()
    #: the checkpoint key (``<param name>.<key>``) of :attr:`steps_taken`, for an update
    #: that depends on it (Adam's bias correction)
    step_key: str | None = None
    #: True when weight decay shrinks the weights directly instead of entering the
    #: gradient (AdamW)
    decoupled_weight_decay = False
    #: True when the update is element-wise, so that it can run once over the flat arrays
    #: of all parameters; False (a per-layer norm, say) runs it once per parameter
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
        self.lr, self.final_lr = lr, final_lr
        self.decay_type = None if decay_type in (None, "none") else decay_type
        self.weight_decay, self.clip_norm = weight_decay, clip_norm
        self.decay_kwargs = dict(decay_kwargs or {})
        self.schedule(2)  # validate now, not mid-run
        #: the global gradient norm measured by the last step (with ``clip_norm`` only)
        self.last_grad_norm: float | None = None
        self.reset()

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

    def reset(self) -> None:
        """Forget the parameters and their state: the next step starts from zeros."""
        self._slots = Slots((), self._new_slots, self.elementwise)  # of the last handed
        self._decayed, self._fast = (), []  # see _prepare
        #: the steps the parameters have taken
        self.steps_taken = 0

    # -- the step ------------------------------------------------------------------------
    def step(self, params: Sequence[Param], lr: float) -> None:
        """Update every parameter in place from its ``grad`` (clipped and with the L2 term
        first, in place: see the module docstring)."""
        if not self._slots.holds(params):
            self._bind(params)
        slots = self._slots
        self.steps_taken += 1
        if self.clip_norm is not None:
            self._clip(slots)
        wd = self.weight_decay
        if wd and self.decoupled_weight_decay:
            for p in self._decayed:
                p.value *= 1.0 - lr * wd
        elif wd:
            for p in self._decayed:
                p.grad += wd * p.value
        for segment, arrays, fast in zip(slots.segments, slots.arrays, self._fast, strict=True):
            if fast is None:
                self._update(segment, arrays, lr)
            else:
                fast(lr)

    def _clip(self, slots: Slots) -> None:
        norm = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in slots.params))
        self.last_grad_norm = norm
        if norm > self.clip_norm:
            scale = self.clip_norm / norm
            for segment in slots.segments:
                segment.grad *= scale

    def _new_slots(self, param: Param) -> dict[str, np.ndarray]:
        """Fresh state for one parameter (or segment): zeros shaped like it, per slot."""
        return {name: np.zeros(param.shape, param.value.dtype) for name in self.slots}

    def _update(self, param: Param, slots: dict[str, np.ndarray], lr: float) -> None:
        """Update ``param.value`` in place from ``param.grad`` and ``slots``, its state."""
        raise NotImplementedError

    def _fast_update(self, param: Param, slots: dict[str, np.ndarray]):
        """A faster way to do ``_update(param, slots, lr)``, as a function of ``lr`` made
        once for these arrays (which never move), or None to run ``_update``."""
        return None

    # -- the state, parameter by parameter -------------------------------------------------
    def _bind(self, params: Sequence[Param]) -> None:
        """Hold the state of ``params`` from now on (see the class docstring)."""
        held = self._slots.views()
        self._slots = Slots(params, self._new_slots, self.elementwise)
        self._slots.keep(held)
        self._prepare()

    def _prepare(self) -> None:
        slots = self._slots
        self._decayed = tuple(filter(is_weight, slots.params))  # what weight decay visits
        self._fast = [self._fast_update(segment, arrays)
                      for segment, arrays in zip(slots.segments, slots.arrays, strict=True)]

    @property
    def state(self) -> MappingProxyType:
        """``{param: {slot: array}}``, read-only: the arrays are views into the state the
        next step updates (writing into them changes it)."""
        return MappingProxyType(self._slots.views())

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fast": None}  # addresses: made again when loaded

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._prepare()

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self, params: Sequence[Param]) -> dict[str, np.ndarray]:
        """``"<param name>.<slot>" -> array`` (a copy) for every parameter of ``params``
        that has state, and the step count under :attr:`step_key` when the update uses it."""
        views, step = self._slots.views(), {}
        if self.step_key:
            step = {self.step_key: np.array([self.steps_taken], dtype=np.int64)}
        return {f"{p.name}.{name}": a.copy() for p in params if p in views
                for name, a in {**views[p], **step}.items()}

    def load_state_dict(self, params: Sequence[Param], state: dict[str, np.ndarray]) -> None:
        """Hold the state of ``params`` from ``state`` (as :meth:`state_dict` makes it); a
        parameter without all its slots there starts at zero."""
        self.reset()
        self._bind(params)
        views, steps = self._slots.views(), set()
        for p in params:
            shapes = {name: a.shape for name, a in views[p].items()}
            shapes.update({self.step_key: (1,)} if self.step_key else {})
            saved = {name: np.asarray(state[f"{p.name}.{name}"]) for name in shapes
                     if f"{p.name}.{name}" in state}
            if not self.slots or len(saved) < len(shapes):
                continue
            for name, a in saved.items():
                if a.shape != shapes[name]:
                    raise ShapeError(f"optimizer state {p.name}.{name}: expected shape "
                                     f"{shapes[name]}, got {a.shape}")
                if name in views[p]:
                    views[p][name][...] = a
            if self.step_key:
                steps.add(int(saved[self.step_key][0]))
        if len(steps) > 1:
            raise ShapeError(f"optimizer state: the parameters' {self.step_key} counts differ "
                             f"({sorted(steps)}); {type(self).__name__} steps them together")
        self.steps_taken = steps.pop() if steps else 0

    def config(self) -> dict:
        """The name and every declared option (attributes of the same names)."""
        return {"name": self.name, **{o.name: getattr(self, o.name) for o in options(type(self))}}


class SGD(Optimizer):
    """``p -= lr * grad``."""

    name = "sgd"

    def _update(self, param, slots, lr):
        param.value -= lr * param.grad

    def _fast_update(self, param, slots):
        step = blas.axpby(param.grad, param.value)  # one pass, no temporary
        return None if step is None else lambda lr: step(-lr, 1.0)


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
        self.momentum, self.nesterov = momentum, nesterov

    def _update(self, param, slots, lr):
        v, g = slots["velocity"], param.grad
        v *= self.momentum
        v += lr * g
        if self.nesterov:
            param.value -= self.momentum * v
            param.value -= lr * param.grad
        else:
            param.value -= v

    def _fast_update(self, param, slots):
        # two passes over memory, no temporary
        velocity = blas.axpby(param.grad, slots["velocity"])
        apply = blas.axpby(slots["velocity"], param.value)
        if self.nesterov or velocity is None or apply is None:
            return None

        def step(lr: float) -> None:
            velocity(lr, self.momentum)
            apply(-1.0, 1.0)
        return step


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
        self.rho, self.eps = rho, eps

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
    ``t`` counts the steps taken (:attr:`~Optimizer.steps_taken`), which checkpoints keep
    beside ``m`` and ``v`` of every parameter, as ``step``. ``weight_decay`` is the coupled
    L2 term of the base class; :class:`AdamW` decouples it.
    """

    name = "adam"
    slots = ("m", "v")
    step_key = "step"

    @checked
    def __init__(self, lr: LearningRate = 0.001,
                 beta1: Annotated[Fraction, Doc("decay of the mean of the gradients")] = 0.9,
                 beta2: Annotated[Fraction, Doc("decay of the mean of their squares")] = 0.999,
                 eps: Epsilon = 1e-8, **options):
        super().__init__(lr, **options)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, param, slots, lr):
        m, v, g = slots["m"], slots["v"], param.grad
        t = self.steps_taken
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
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    each weight is first shrunk, ``W *= 1 - lr * weight_decay``, then takes the Adam step of
    its plain gradient. Default ``weight_decay=0.01`` (PyTorch's). Only weights ``W`` decay
    (PyTorch decays whatever is in the parameter group)."""

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
