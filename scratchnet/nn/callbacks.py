"""Callbacks: how the trainer reports progress (the library never prints), and early
stopping as a small object."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from .. import checks
from ..errors import ConfigError
from ..options import Doc, Ge, Le, MAX_EPOCHS, Named, NonNegativeFloat, checked
from .metrics import HIGHER_IS_BETTER, METRIC_MODES
from .schedules import Mode


class Callback:
    """Override any hook. ``trainer.stop_requested = True`` from a hook stops training at
    the end of the current batch."""

    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, epoch: int, batch: int, n_batches: int,
                     loss: float) -> None: ...
    def on_evaluate(self, trainer, record: dict) -> None: ...
    def on_epoch_end(self, trainer, epoch: int) -> None: ...
    def on_fit_end(self, trainer, history) -> None: ...


class PrintEvaluations(Callback):
    """What the book's trainer printed, a line per evaluation (``Trainer.fit(...,
    verbose=1)``, as Keras's ``fit``): ``Validation loss after 10 epochs is 0.352`` (and
    the accuracy or MAE beside it). It is the one callback that prints, to ``file``
    (standard output by default); the rest of the engine never does."""

    def __init__(self, file=None):
        self.file = file

    def on_evaluate(self, trainer, record) -> None:
        loss = record["val_loss"] if record.get("val_loss") is not None else record["train_loss"]
        what = "Validation" if record.get("val_loss") is not None else "Training"
        extra = "".join(f", {k} {record[k]:.4f}" for k in ("accuracy", "mae") if k in record)
        print(f"{what} loss after {record['epoch']} epochs is {loss:.3f}{extra}", file=self.file)

    def on_fit_end(self, trainer, history) -> None:
        if history.stopped_early:
            print(f"Stopped early after epoch {history.epochs_run}; using the weights of "
                  f"epoch {history.best_epoch}", file=self.file)


class EarlyStopping:
    """Track the best evaluation; stop after ``patience`` evaluations without improvement.

    ``monitor`` names what is watched: the validation loss (the default), or a metric
    every evaluation records (``accuracy``; ``mae``, ``rmse``, ``r2``; a character
    model's ``bits_per_char`` and ``perplexity``). ``mode`` says which way is better,
    by default the metric's own (:data:`~scratchnet.nn.metrics.METRIC_MODES`: max for
    accuracy and r2). A value counts as better when it is below ``best - min_delta``
    (mode min) or above ``best + min_delta`` (mode max); a NaN or infinite value never
    becomes the best. ``patience=None`` only tracks the best. The plateau schedule
    watches the same value, in the same mode.

    Keeps a copy of the parameter arrays at the best evaluation (not a copy of the whole
    network).

    What the notebook meant ("stop as soon as the validation loss rises and put back the
    previous model") is ``EarlyStopping(patience=1, restore_best=True)``, the rule of
    ``early_stopping=True``; what its trainer did is :class:`NotebookStopping`.
    """

    @property
    def keeps(self) -> str:
        """Which weights a fit ends with, as a run's summary names them: "best" or "last"."""
        return "best" if self.restore_best else "last"

    @checked
    def __init__(self, patience: Annotated[Annotated[int, Ge(1), Le(MAX_EPOCHS)] | None, Doc(
                     "evaluations without improvement before stopping")] = 1,
                 min_delta: Annotated[NonNegativeFloat, Doc(
                     "smallest change that counts as better")] = 0.0,
                 restore_best: Annotated[bool, Doc(
                     "put back the best weights at the end")] = True,
                 monitor: Annotated[str, Named(METRIC_MODES, "metric"), Doc(
                     "what is watched: the validation loss, or a metric the run records "
                     "(the plateau schedule watches it too)")] = "val_loss",
                 mode: Annotated[Mode | None, Doc(
                     f"min: lower is better, max: higher; default: max for {HIGHER_IS_BETTER}, "
                     "min for the others")] = None):
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.monitor = monitor
        self.mode: Mode = mode or METRIC_MODES[monitor]
        self.reset()

    @classmethod
    def of(cls, spec: "bool | str | EarlyStopping") -> "EarlyStopping":
        """What ``fit(early_stopping=...)`` takes, as an object: ``True`` stops at the
        first evaluation that does not improve and restores the best (patience 1),
        ``"notebook"`` is the notebook's trainer (:class:`NotebookStopping`), ``False``
        only tracks the best, and an :class:`EarlyStopping` passes through."""
        if isinstance(spec, EarlyStopping):
            return spec
        if spec == "notebook":
            return NotebookStopping()
        if checks.boolean(spec, "early_stopping"):
            return cls(patience=1, restore_best=True)
        return cls(patience=None, restore_best=False)

    def reset(self) -> None:
        #: the best value of :attr:`monitor` so far (infinitely bad before the first)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_params: dict[str, np.ndarray] | None = None

    def improves(self, value: float) -> bool:
        """Whether ``value`` of :attr:`monitor` beats the best by more than ``min_delta``."""
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def start_epoch(self, epoch: int, arrays: dict[str, np.ndarray], evaluates: bool) -> None:
        """Called before the first batch of every epoch (0-based ``epoch``) with the live
        ``arrays``; ``evaluates`` says whether the epoch ends on an ``eval_every``
        evaluation. This rule needs nothing then; :class:`NotebookStopping` copies."""

    def update(self, epoch: int, value: float, arrays: dict[str, np.ndarray]) -> bool:
        """Record an evaluation of the live ``arrays`` (name -> array, e.g.
        :meth:`~scratchnet.nn.NeuralNetwork.arrays`), whose :attr:`monitor` is ``value``;
        returns True when training should stop."""
        if self.improves(value):
            self.best = float(value)
            self.best_epoch = epoch
            self.wait = 0
            if self.best_params is None:
                self.best_params = {name: a.copy() for name, a in arrays.items()}
            else:
                for name, a in arrays.items():
                    np.copyto(self.best_params[name], a)
            return False
        self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def restore(self, arrays: dict[str, np.ndarray]) -> bool:
        """Copy the best arrays back into the live ``arrays``; False when there is no best."""
        if self.best_params is None:
            return False
        copy_into(arrays, self.best_params)
        return True

    def final_weights(self, stopped: bool) -> tuple[int, dict[str, np.ndarray]] | None:
        """``(epoch, arrays)``: the weights a finished fit puts back (after ``epoch``
        epochs), or None to keep its last ones. Here: the best, with ``restore_best``."""
        if self.restore_best and self.best_params is not None:
            return self.best_epoch, self.best_params
        return None

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"monitor": self.monitor, "mode": self.mode,
                "best": self.best if math.isfinite(self.best) else None,
                "best_epoch": self.best_epoch, "wait": self.wait}
        arrays = {f"best.{k}": v.copy() for k, v in (self.best_params or {}).items()}
        return meta, arrays

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Put back :meth:`state_dict`'s; a checkpoint of earlier releases watched the
        validation loss (its ``best_loss``). A ConfigError when it watched another value
        than this rule does."""
        watched = (meta.get("monitor", "val_loss"), meta.get("mode", "min"))
        if watched != (self.monitor, self.mode):
            raise ConfigError(f"the checkpoint's early stopping monitored {watched[0]} "
                              f"(mode {watched[1]}); this fit monitors {self.monitor} (mode "
                              f"{self.mode})")
        best = meta["best"] if "best" in meta else meta.get("best_loss")
        self.reset()  # then what the checkpoint holds
        if best is not None:
            self.best = float(best)
        self.best_epoch = meta.get("best_epoch")
        self.wait = int(meta.get("wait", 0))
        kept = {k[len("best."):]: np.array(v) for k, v in arrays.items() if k.startswith("best.")}
        self.best_params = kept or None


class NotebookStopping(EarlyStopping):
    """The study notebook's trainer, exactly: to reproduce its numbers, not to use.

    At every ``eval_every``-th epoch E it first copies the network, *before* training the
    epoch (so the copy holds the weights after epoch E - 1); after the epoch it evaluates.
    A loss strictly below the best so far is an improvement (no ``min_delta``); at the
    first evaluation that does not improve it puts the copy back and stops. It ends with
    the weights after epoch E - 1, whose loss it never evaluated, not those of the
    previous evaluation (its message said "using the model from epoch E - eval_every").
    A run that never stops keeps its last weights, best or not: the notebook restores
    nothing at the end. Evaluations it would not have made (the trainer's extra one at the
    last epoch, when ``epochs`` is not a multiple of ``eval_every``) change nothing.

    The best evaluation is still tracked (``best_epoch``, ``best``), but no copy of
    it is kept: only the start-of-epoch copy, whose epoch is ``start_epoch_copied``.
    """

    keeps = "notebook"

    def __init__(self):
        super().__init__(patience=1, min_delta=0.0, restore_best=False)

    def reset(self) -> None:
        super().reset()
        self.start_params: dict[str, np.ndarray] | None = None
        #: the epochs trained when the copy was taken (E - 1 for evaluation epoch E)
        self.start_epoch_copied: int | None = None

    def start_epoch(self, epoch: int, arrays: dict[str, np.ndarray], evaluates: bool) -> None:
        if not evaluates:
            return
        if self.start_params is None:
            self.start_params = {name: a.copy() for name, a in arrays.items()}
        else:
            copy_into(self.start_params, arrays)
        self.start_epoch_copied = epoch

    def update(self, epoch: int, loss: float, arrays: dict[str, np.ndarray]) -> bool:
        if self.start_epoch_copied != epoch - 1:  # not one of the notebook's evaluations
            return False
        if math.isfinite(loss) and loss < self.best:
            self.best, self.best_epoch = float(loss), epoch
            return False
        self.wait = 1
        return True

    def final_weights(self, stopped: bool) -> tuple[int, dict[str, np.ndarray]] | None:
        if stopped and self.start_params is not None:
            return self.start_epoch_copied, self.start_params
        return None

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = super().state_dict()
        meta["start_epoch_copied"] = self.start_epoch_copied
        arrays.update({f"start.{k}": v.copy() for k, v in (self.start_params or {}).items()})
        return meta, arrays

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        super().load_state_dict(meta, arrays)
        self.start_epoch_copied = meta.get("start_epoch_copied")
        start = {k[len("start."):]: np.array(v) for k, v in arrays.items()
                 if k.startswith("start.")}
        self.start_params = start or None


def copy_into(targets: dict[str, np.ndarray], sources: dict[str, np.ndarray]) -> None:
    """Copy each array of ``sources`` into the array of the same name in ``targets``."""
    for name, a in targets.items():
        np.copyto(a, sources[name])
