"""Callbacks: how the trainer reports progress (the library never prints), and early
stopping as a small object."""

from __future__ import annotations

import math

import numpy as np

from .. import checks


class Callback:
    """Override any hook. ``trainer.stop_requested = True`` from a hook stops training at
    the end of the current batch."""

    def on_fit_start(self, trainer) -> None: ...
    def on_epoch_start(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, epoch: int, batch: int, n_batches: int, loss: float) -> None: ...
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

    Keeps a copy of the parameter arrays at the best evaluation (not a copy of the whole
    network). A loss counts as better when it is below ``best - min_delta``. A NaN or
    infinite loss never becomes the best. ``patience=None`` only tracks the best.

    The notebook's rule ("stop as soon as the validation loss rises and put back the
    previous model") is ``EarlyStopping(patience=1, restore_best=True)``.
    """

    def __init__(self, patience: int | None = 1, min_delta: float = 0.0, restore_best: bool = True):
        self.patience = None if patience is None else checks.positive_int(patience, "patience")
        self.min_delta = checks.non_negative(min_delta, "min_delta")
        self.restore_best = checks.boolean(restore_best, "restore_best")
        self.reset()

    @classmethod
    def of(cls, spec: "bool | EarlyStopping") -> "EarlyStopping":
        """What ``fit(early_stopping=...)`` takes, as an object: ``True`` is the notebook's
        rule (patience 1, restore the best), ``False`` only tracks the best, and an
        :class:`EarlyStopping` passes through."""
        if isinstance(spec, EarlyStopping):
            return spec
        if checks.boolean(spec, "early_stopping"):
            return cls(patience=1, restore_best=True)
        return cls(patience=None, restore_best=False)

    def reset(self) -> None:
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_params: dict[str, np.ndarray] | None = None

    def update(self, epoch: int, loss: float, arrays: dict[str, np.ndarray]) -> bool:
        """Record an evaluation of the live ``arrays`` (name -> array, e.g.
        :meth:`NeuralNetwork.arrays`); returns True when training should stop."""
        if math.isfinite(loss) and loss < self.best_loss - self.min_delta:
            self.best_loss = float(loss)
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
        for name, a in arrays.items():
            np.copyto(a, self.best_params[name])
        return True

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
                "best_epoch": self.best_epoch, "wait": self.wait}
        arrays = {f"best.{k}": v.copy() for k, v in (self.best_params or {}).items()}
        return meta, arrays

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.best_loss = math.inf if meta.get("best_loss") is None else float(meta["best_loss"])
        self.best_epoch = meta.get("best_epoch")
        self.wait = int(meta.get("wait", 0))
        best = {k[len("best."):]: np.array(v) for k, v in arrays.items() if k.startswith("best.")}
        self.best_params = best or None
