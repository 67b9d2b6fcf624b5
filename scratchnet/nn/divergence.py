"""When training has diverged: the trainer's policy, in one place.

A NaN or infinite loss (a batch's, or the validation loss) or weight stops training with
a :class:`~scratchnet.errors.DivergenceError`, and so does a loss that has exploded
while staying finite: an epoch whose mean training loss is more than ``factor`` times the
loss of the freshly initialised network on its first batch (a fit that continues from
earlier weights has no such reference and is watched for NaN only). Each message names
the epoch and suggests the usual cause, a learning rate too high.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..errors import DivergenceError
from .core import Param


def check_batch_loss(loss: float, epoch: int, batch: int, lr: float) -> None:
    """A batch's loss (``epoch``, ``batch`` 0-based) is finite."""
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged: loss is {loss} at epoch {epoch + 1}, "
                              f"batch {batch + 1} (learning rate {lr:g} too high?)")


def check_weights(params: Iterable[Param], epoch: int) -> None:
    """Every parameter is finite after ``epoch`` (0-based)."""
    for p in params:
        if not np.isfinite(p.value).all():
            raise DivergenceError(
                f"training diverged: {p.name} has NaN or infinite values after epoch "
                f"{epoch + 1} (learning rate too high?)")


def check_epoch_loss(train_loss: float, start_loss: float | None, factor: float | None,
                     epoch: int, lr: float) -> None:
    """An epoch's mean training loss stays within ``factor`` times ``start_loss`` (no
    limit without either)."""
    if factor is not None and start_loss and train_loss > factor * start_loss:
        raise DivergenceError(
            f"training diverged: the training loss of epoch {epoch + 1} is "
            f"{train_loss:.4g}, more than {factor:g} times its starting value "
            f"{start_loss:.4g} (learning rate {lr:g} too high?)")


def check_validation_loss(loss: float, epoch: int, lr: float) -> None:
    """The validation loss after ``epoch`` (0-based) is finite."""
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged: validation loss is {loss} after "
                              f"epoch {epoch + 1} (learning rate {lr:g} too high?)")
