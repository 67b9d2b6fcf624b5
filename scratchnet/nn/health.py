"""Per-layer health: what each layer's units and parameters are doing, at every evaluation.

:class:`HealthMonitor` is a callback: ``Trainer(net, opt, callbacks=[HealthMonitor(X_val)])``
adds a ``"health"`` list to every evaluation record, one entry per layer that has an
activation (dense and convolutional layers) and per recurrent layer (RNN, LSTM, GRU;
pooling, flatten and embedding layers have no units to watch). Everything is read through
the Operation contract: each activation caches its ``input_`` and ``output`` on the
forward pass (a recurrent layer keeps its states and gates, ``last_pass``), each
:class:`~scratchnet.nn.core.Param` holds its value and the gradient the optimizer last
applied.

What an entry holds (``docs/health.md`` reads them on the notebook's runs):

``mean``, ``std``
    of the layer's activation outputs on the *health sample*: the first ``sample`` rows
    (512) of the data handed in, forwarded in inference mode (no dropout), over every
    example, unit and, for a convolution, position.
``dead`` (relu, leaky_relu; None for other activations)
    the fraction of units whose input to the activation is <= 0 for every example of the
    sample (for a convolution a unit is a channel, at every position). A dead ReLU
    outputs 0 for everything it sees and receives no gradient, so it never comes back; a
    "dead" leaky ReLU still passes ``negative_slope`` of its gradient. ELU, GELU and
    softplus pass a sizeable gradient just below 0, so they are not counted.
``inactive`` (relu, leaky_relu; None for other activations)
    the fraction of the layer's outputs (example x unit) whose input is <= 0: for ReLU,
    the outputs that are 0 and pass no gradient back. Half is usual; a layer can have no
    dead unit and still be almost all inactive, each unit firing for a few examples.
``saturated`` (tanh, sigmoid; None for other activations)
    the fraction of the layer's outputs within :data:`MARGIN` (0.01) of a limit of the
    activation: |tanh| > 0.99, where its gradient is below 2% of its largest, or a sigmoid
    below 0.01 or above 0.99 (below 4%). It counts outputs (example x unit), not units
    saturated on every example: a unit flips between its two limits from one example to
    the next, so a layer whose outputs are almost all saturated can have no unit that is
    saturated on every example.
``params``
    per parameter (``W``, ``B``, batch norm's ``gamma`` and ``beta``, a recurrent layer's
    ``W_x``, ``W_h``, ``B``): the numbers of :data:`GRADIENT` of the gradient of the last
    training batch before the evaluation, as the optimizer applied it (after clipping,
    with the L2 term); and ``update_ratio``, the L2 norm of that batch's update over the L2
    norm of the weights after it (a well-known rule of thumb puts a healthy ratio near
    1e-3). The gradient is the training batch's, not a fresh backward pass on the sample:
    it costs nothing, and a backward pass in inference mode would not be the gradient
    training used.

A recurrent layer's entry also holds (its ``mean`` and ``std`` are of its states; the
RNN's ``dead``, ``inactive`` and ``saturated`` are its activation's, as a dense layer's):

``state_grad``, ``steps_back``
    how much gradient reaches each step back from the last: ``state_grad[i]`` is the L2
    norm of the gradient of the loss with respect to the hidden states (the batch's
    (B, H) block) ``steps_back[i]`` steps before the last, in the backward pass of that
    same training batch (its recurrent operation's hook, ``grad_probe``, sees them as
    they go by). Every step while there are at most :data:`MAX_STEPS` of them, else that
    many, spaced evenly on a log scale. None when that batch was not seen.
``gates`` (LSTM, GRU; None for the RNN)
    per gate (``i f g o``, ``r z n``), the fraction of its activations on the sample
    within :data:`MARGIN` of a limit: 0 or 1 for a sigmoid gate (shut or open whatever
    its input), -1 or 1 for the tanh candidate (``g``, ``n``).

Cost: when it is not in the callbacks nothing of it runs. When it is, one forward pass of
the sample per evaluation, a copy of the parameters before the last batch of every epoch
and a few norms (measured in docs/health.md). It changes nothing that training computes:
an inference pass draws no random numbers and updates no running statistics.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import checks
from ..errors import ConfigError
from .activations import Activation
from .callbacks import Callback
from .recurrent import GRU, LSTM, RNN

#: activation name -> how its units die: those whose input stays <= 0 are dead
DYING = ("relu", "leaky_relu")
#: activation name -> the limits its outputs saturate at
LIMITS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
#: how close to a limit an output counts as saturated
MARGIN = 0.01
#: rows of the data handed in that every evaluation forwards
SAMPLE = 512
#: what is recorded of each parameter's gradient: name -> how it is computed from it
GRADIENT = {
    "grad_norm": lambda g: float(np.sqrt(np.square(g, dtype=np.float64).sum())),  # L2 norm
    "grad_mean": lambda g: float(np.abs(g).mean(dtype=np.float64)),  # mean |gradient|
    "grad_max": lambda g: float(np.abs(g).max()),  # the largest |gradient|
}
#: the most steps back a recurrent layer's ``state_grad`` keeps (log-spaced beyond)
MAX_STEPS = 256
#: the names of the weights among a layer's parameters (not its biases, nor batch norm's
#: scale and shift), in the order the layer applies them
WEIGHTS = ("W", "W_x", "W_h")


def main_weights(params: dict) -> dict:
    """What a health entry's ``params`` holds of the layer's main weights: ``W``, or a
    recurrent layer's recurrent weights ``W_h`` ({} when it has neither)."""
    return params.get("W") or params.get("W_h") or {}


def _activation_of(layer) -> Activation | None:
    return next((op for op in layer.operations if isinstance(op, Activation)), None)


#: the layers whose entries hold ``state_grad`` (and, with gates, ``gates``)
RECURRENT = (RNN, LSTM, GRU)


def steps_kept(steps: int) -> np.ndarray:
    """The steps back (0: the last step) a ``state_grad`` of ``steps`` steps keeps: all of
    them up to :data:`MAX_STEPS`, else at most that many, spaced evenly on a log scale."""
    if steps <= MAX_STEPS:
        return np.arange(steps)
    return np.unique(np.geomspace(1, steps, MAX_STEPS).round().astype(int) - 1)


class _LayerStats:
    """Sums over the chunks of one forward pass of the sample, for one layer."""

    def __init__(self, name: str | None):
        self.name = name
        self.count = 0
        self.total = self.squares = 0.0
        self.near = 0  # outputs within MARGIN of a limit
        self.off = 0  # outputs whose input is <= 0
        self.alive: np.ndarray | None = None  # per unit: some input > 0

    def add(self, out: np.ndarray, input_: np.ndarray, units: int = 1) -> None:
        """One chunk's outputs and the activation's inputs, the units along axis ``units``."""
        self.count += out.size
        self.total += float(out.sum(dtype=np.float64))
        self.squares += float(np.square(out, dtype=np.float64).sum())
        if self.name in LIMITS:
            low, high = LIMITS[self.name]
            self.near += int(np.count_nonzero((out < low + MARGIN) | (out > high - MARGIN)))
        if self.name in DYING:
            on = input_ > 0
            self.off += on.size - int(np.count_nonzero(on))
            alive = on.any(axis=tuple(i for i in range(on.ndim) if i != units))
            self.alive = alive if self.alive is None else self.alive | alive

    def entry(self) -> dict:
        mean = self.total / self.count
        variance = max(self.squares / self.count - mean * mean, 0.0)
        return {"activation": self.name, "mean": mean, "std": math.sqrt(variance),
                "dead": None if self.alive is None else float(1.0 - self.alive.mean()),
                "inactive": None if self.alive is None else self.off / self.count,
                "saturated": self.near / self.count if self.name in LIMITS else None}


class _Watched:
    """One watched layer: its numbers summed over the chunks of a pass of the sample."""

    def __init__(self, index: int, layer):
        self.index, self.layer = index, layer
        self.activation = _activation_of(layer)  # None for a recurrent layer
        self.recurrent = isinstance(layer, RECURRENT)
        name = self.activation.name if self.activation is not None else (
            layer.activation.name if isinstance(layer, RNN) else None)
        self.stats = _LayerStats(name)
        self.near = np.zeros(len(getattr(layer, "gate_names", ())), dtype=np.int64)
        self.gate_count = 0

    def add(self) -> None:
        """Read the chunk the network has just forwarded."""
        if self.activation is not None:
            self.stats.add(self.activation.output, self.activation.input_)
            return
        arrays = self.layer.last_pass()  # time-major: the units on axis 2
        states, z = arrays["h"][1:], arrays["z"]
        self.stats.add(states, z, units=2)  # (z: the RNN's pre-activations)
        if len(self.near):
            gates = z.reshape(*z.shape[:2], len(self.near), -1)
            for j, sigmoid in enumerate(self.layer.operation.sigmoid_gates):
                low, high = LIMITS["sigmoid" if sigmoid else "tanh"]
                g = gates[:, :, j]
                self.near[j] += np.count_nonzero((g < low + MARGIN) | (g > high - MARGIN))
            self.gate_count += gates[:, :, 0].size

    def entry(self) -> dict:
        units = self.layer.hidden_size if self.recurrent else self.activation.output.shape[1]
        entry = {"layer": self.index, "type": self.layer.describe(), "units": int(units),
                 **self.stats.entry()}
        if self.recurrent:
            gates = zip(self.layer.gate_names, self.near, strict=True)
            entry["gates"] = ({name: int(n) / self.gate_count for name, n in gates}
                              if len(self.near) else None)
        return entry


class HealthMonitor(Callback):
    """Records each layer's health at every evaluation into the record's ``"health"``
    (see the module docstring for every number's definition).

    Args:
        X: rows of the network's input (the validation split, say); the first ``sample``
            rows are the health sample.
        sample: how many rows to forward at each evaluation (512 by default).

    Put it before any callback that reads or writes the record (a run folder's
    recorder): callbacks see a record in the order they are given.
    """

    def __init__(self, X: np.ndarray, sample: int = SAMPLE):
        self.sample_size = checks.positive_int(sample, "health sample")
        if np.ndim(X) < 2 or len(X) == 0:
            raise ConfigError(f"the health sample needs rows of the network's input, "
                                     f"got an array of shape {np.shape(X)}")
        self._rows = X[:self.sample_size]
        self.sample: np.ndarray | None = None  # in the network's dtype, from the fit's start
        self._before: dict[str, np.ndarray] = {}  # parameters before the last step
        self._steps = 0  # optimizer steps seen
        self._before_step: int | None = None  # the step count when ``_before`` was taken
        self._n_batches: int | None = None
        #: per recurrent layer (by index): {step: norm of its state's gradient} in the
        #: backward pass of the step after ``_before_step``, from its operation's hook
        self._state_grads: dict[int, dict[int, float]] = {}

    # -- hooks -------------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        self.sample = np.ascontiguousarray(self._rows, dtype=trainer.net.dtype)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self._n_batches in (None, 1):  # the next step may be the epoch's last
            self._take_before(trainer)

    def on_batch_end(self, trainer, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        self._steps += 1
        self._n_batches = n_batches
        _unhook(trainer.net)  # the step it watched, if any, is over
        if batch == n_batches - 2:  # the next step is the epoch's last
            self._take_before(trainer)

    def on_evaluate(self, trainer, record: dict) -> None:
        record["health"] = self.measure(trainer.net)

    def on_fit_end(self, trainer, history) -> None:
        _unhook(trainer.net)

    # -- measuring ---------------------------------------------------------------------
    def _take_before(self, trainer) -> None:
        """Before the step the next evaluation may report: the parameters copied, and the
        recurrent layers' hooks set to record that step's state gradients."""
        for p in trainer.net.params():
            if p.name in self._before:
                np.copyto(self._before[p.name], p.value)
            else:
                self._before[p.name] = p.value.copy()
        self._before_step = self._steps
        self._state_grads = {}
        for i, layer in enumerate(trainer.net.layers):
            if isinstance(layer, RECURRENT) and layer.operations:
                norms = self._state_grads[i] = {}
                layer.operations[0].grad_probe = functools.partial(_record_norm, norms)

    def measure(self, net) -> list[dict]:
        """One entry per layer with an activation and per recurrent layer: ``{"layer",
        "type", "activation", "units", "mean", "std", "dead", "inactive", "saturated",
        "params"}``, a recurrent layer's also ``"state_grad", "steps_back", "gates"``."""
        if self.sample is None:
            self.sample = np.ascontiguousarray(self._rows, dtype=net.dtype)
        watched = [_Watched(i, layer) for i, layer in enumerate(net.layers)
                   if isinstance(layer, RECURRENT) or _activation_of(layer) is not None]
        step = net.inference_batch_size(len(self.sample))  # a large sample goes in chunks
        for start in range(0, len(self.sample), step):
            net.forward(self.sample[start:start + step], inference=True)
            for w in watched:
                w.add()
        last_step_known = self._before_step is not None and self._steps - self._before_step == 1
        entries = []
        for w in watched:
            entry = w.entry()
            entry["params"] = {p.name.rsplit(".", 1)[-1]: self._param_health(p, last_step_known)
                               for p in w.layer.params()}
            if w.recurrent:
                entry.update(_by_steps_back(self._state_grads.get(w.index)
                                            if last_step_known else None))
            entries.append(entry)
        return entries

    def _param_health(self, p, last_step_known: bool) -> dict:
        norm = float(np.linalg.norm(p.value))
        ratio = None
        if last_step_known and norm > 0:
            ratio = float(np.linalg.norm(p.value - self._before[p.name])) / norm
        return {**{name: measure(p.grad) for name, measure in GRADIENT.items()},
                "update_ratio": ratio}


def _record_norm(norms: dict[int, float], t: int, dh: np.ndarray) -> None:
    """A recurrent operation's ``grad_probe``: the L2 norm of step t's state gradient."""
    norms[t] = float(np.sqrt(np.square(dh, dtype=np.float64).sum()))


def _unhook(net) -> None:
    for layer in net.layers:
        if isinstance(layer, RECURRENT) and layer.operations:
            layer.operations[0].grad_probe = None


def _by_steps_back(norms: dict[int, float] | None) -> dict:
    """``{"state_grad", "steps_back"}`` from the norms by step of one backward pass
    (None: that pass was not seen)."""
    if not norms:
        return {"state_grad": None, "steps_back": None}
    last = max(norms)
    kept = steps_kept(last + 1)
    return {"state_grad": [norms[last - int(k)] for k in kept],
            "steps_back": [int(k) for k in kept]}
