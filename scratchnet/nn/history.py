"""What a fit did: :class:`History`, returned by :meth:`~scratchnet.nn.trainer.Trainer.fit`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """What a fit did: one record per evaluation, one per epoch, and how it ended.

    Each record holds ``epoch`` (1-based), ``train_loss`` (mean batch loss over that
    epoch), ``val_loss``, the task's metrics (``accuracy``, or ``mae``/``rmse``/``r2``),
    ``lr`` and ``seconds`` (training time since the fit started). ``epochs`` holds every
    epoch's ``epoch``, ``train_loss``, ``lr`` and ``seconds``, evaluated or not.
    """

    records: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    task: str = "classification"
    epochs_run: int = 0
    #: what early stopping watched (``val_loss``, ``accuracy``, ...), its best value and
    #: the epoch of that evaluation, and that evaluation's validation loss (the training
    #: loss, without validation data): a run's ``best_val_loss`` in ``summary.json``
    monitor: str = "val_loss"
    best_value: float | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    #: the epochs of training behind the weights the fit ended with (the best epoch when
    #: early stopping put the best back)
    weights_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def per_epoch(self) -> list[dict]:
        """A row per epoch trained: its evaluation record where it was evaluated, else
        its training loss, learning rate and time alone (what ``metrics.jsonl`` holds)."""
        evaluated = {r["epoch"]: r for r in self.records}
        rows = [evaluated.pop(e["epoch"], e) for e in self.epochs]
        return sorted(rows + list(evaluated.values()), key=lambda r: r["epoch"])

    def last_row(self) -> dict:
        """The newest epoch's row of :meth:`per_epoch` (for a callback's ``on_epoch_end``)."""
        last = self.epochs[-1]
        evaluated = self.records and self.records[-1]["epoch"] == last["epoch"]
        return self.records[-1] if evaluated else last

    def to_dict(self) -> dict:
        return {"records": self.records, "epochs": self.epochs, "task": self.task,
                "epochs_run": self.epochs_run, "monitor": self.monitor,
                "best_value": self.best_value, "best_epoch": self.best_epoch,
                # (a checkpoint's history has called it best_loss since its first release)
                "best_loss": self.best_val_loss, "weights_epoch": self.weights_epoch,
                "stopped_early": self.stopped_early, "interrupted": self.interrupted}
