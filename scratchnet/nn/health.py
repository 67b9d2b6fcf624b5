"""Per-layer health: what each layer's units and parameters are doing, at every evaluation.

:class:`HealthMonitor` is a callback: ``Trainer(net, opt, callbacks=[HealthMonitor(X_val)])``
adds a ``"health"`` list to every evaluation record, one entry per layer that has an
activation (dense and convolutional layers; pooling and flatten layers have no units to
watch). Everything is read through the Operation contract: each activation caches its
``input_`` and ``output`` on the forward pass, each :class:`~scratchnet.nn.core.Param`
holds its value and the gradient the optimizer last applied.

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
    per parameter (``W``, ``B``, or batch norm's ``gamma`` and ``beta``): ``grad_norm``,
    the L2 norm of the gradient of the last training batch before the evaluation, as the
    optimizer applied it (after clipping, with the L2 term); and ``update_ratio``, the L2
    norm of that batch's update over the L2 norm of the weights after it (a well-known
    rule of thumb puts a healthy ratio near 1e-3). The gradient is the training batch's,
    not a fresh backward pass on the sample: it costs nothing, and a backward pass in
    inference mode would not be the gradient training used.

Cost: when it is not in the callbacks nothing of it runs. When it is, one forward pass of
the sample per evaluation, a copy of the parameters before the last batch of every epoch
and a few norms (measured in docs/health.md). It changes nothing that training computes:
an inference pass draws no random numbers and updates no running statistics.
"""

from __future__ import annotations

import math

import numpy as np

from .. import checks
from ..errors import ConfigError
from .activations import Activation
from .callbacks import Callback

#: activation name -> how its units die: those whose input stays <= 0 are dead
DYING = ("relu", "leaky_relu")
#: activation name -> the limits its outputs saturate at
LIMITS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
#: how close to a limit an output counts as saturated
MARGIN = 0.01
#: rows of the data handed in that every evaluation forwards
SAMPLE = 512


def _activation_of(layer) -> Activation | None:
    return next((op for op in layer.operations if isinstance(op, Activation)), None)


class _LayerStats:
    """Sums over the chunks of one forward pass of the sample, for one layer."""

    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self.total = self.squares = 0.0
        self.near = 0  # outputs within MARGIN of a limit
        self.off = 0  # outputs whose input is <= 0
        self.alive: np.ndarray | None = None  # per unit: some input > 0

    def add(self, op: Activation) -> None:
        out = op.output
        self.count += out.size
        self.total += float(out.sum(dtype=np.float64))
        self.squares += float(np.square(out, dtype=np.float64).sum())
        if self.name in LIMITS:
            low, high = LIMITS[self.name]
            self.near += int(np.count_nonzero((out < low + MARGIN) | (out > high - MARGIN)))
        if self.name in DYING:
            on = op.input_ > 0
            self.off += on.size - int(np.count_nonzero(on))
            alive = on.any(axis=tuple(i for i in range(on.ndim) if i != 1))  # units: axis 1
            self.alive = alive if self.alive is None else self.alive | alive

    def entry(self) -> dict:
        mean = self.total / self.count
        variance = max(self.squares / self.count - mean * mean, 0.0)
        return {"activation": self.name, "mean": mean, "std": math.sqrt(variance),
                "dead": None if self.alive is None else float(1.0 - self.alive.mean()),
                "inactive": None if self.alive is None else self.off / self.count,
                "saturated": self.near / self.count if self.name in LIMITS else None}


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

    # -- hooks -------------------------------------------------------------------------
    def on_fit_start(self, trainer) -> None:
        self.sample = np.ascontiguousarray(self._rows, dtype=trainer.net.dtype)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self._n_batches in (None, 1):  # the next step may be the epoch's last
            self._take_before(trainer)

    def on_batch_end(self, trainer, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        self._steps += 1
        self._n_batches = n_batches
        if batch == n_batches - 2:  # the next step is the epoch's last
            self._take_before(trainer)

    def on_evaluate(self, trainer, record: dict) -> None:
        record["health"] = self.measure(trainer.net)

    # -- measuring ---------------------------------------------------------------------
    def _take_before(self, trainer) -> None:
        for p in trainer.net.params():
            if p.name in self._before:
                np.copyto(self._before[p.name], p.value)
            else:
                self._before[p.name] = p.value.copy()
        self._before_step = self._steps

    def measure(self, net) -> list[dict]:
        """One entry per layer with an activation: ``{"layer", "type", "activation",
        "units", "mean", "std", "dead", "inactive", "saturated", "params"}``."""
        if self.sample is None:
            self.sample = np.ascontiguousarray(self._rows, dtype=net.dtype)
        watched = [(i, layer, _activation_of(layer)) for i, layer in enumerate(net.layers)]
        watched = [(i, layer, op) for i, layer, op in watched if op is not None]
        stats = {i: _LayerStats(op.name) for i, _, op in watched}
        step = net.inference_batch_size(len(self.sample))  # a large sample goes in chunks
        for start in range(0, len(self.sample), step):
            net.forward(self.sample[start:start + step], inference=True)
            for i, _, op in watched:
                stats[i].add(op)
        last_step_known = self._before_step is not None and self._steps - self._before_step == 1
        entries = []
        for i, layer, op in watched:
            entry = {"layer": i, "type": layer.describe(), "units": int(op.output.shape[1]),
                     **stats[i].entry()}
            entry["params"] = {p.name.rsplit(".", 1)[-1]: self._param_health(p, last_step_known)
                               for p in layer.params()}
            entries.append(entry)
        return entries

    def _param_health(self, p, last_step_known: bool) -> dict:
        norm = float(np.linalg.norm(p.value))
        ratio = None
        if last_step_known and norm > 0:
            ratio = float(np.linalg.norm(p.value - self._before[p.name])) / norm
        return {"grad_norm": float(np.linalg.norm(p.grad)), "update_ratio": ratio}
