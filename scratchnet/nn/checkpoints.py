"""Checkpoints: what :meth:`~scratchnet.nn.trainer.Trainer.checkpoint` saves to resume a fit
exactly, and the checks of one read back before the trainer uses any of it.

A checkpoint is ``(meta, arrays)``: :func:`make` lays it out and :func:`read` takes it
apart. One read back from a file may be damaged, or written by someone else, so every
value is checked and one out of range is refused, never clipped or wrapped:
:func:`check_meta` checks what the metadata alone can tell, :func:`check_position` what
needs the training data it resumes on (the batch, the permutation of the rows), and
:func:`check_best` the best weights early stopping would restore. Each raises a
:class:`~scratchnet.errors.CheckpointError` that names the key and what was expected.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass

import numpy as np

from ..errors import CheckpointError, ConfigError
from .metrics import METRIC_MODES
from .schedules import Mode


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(value, key: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value >= high):
        bound = f">= {low}" if high is None else f"in {low}..{high - 1}"
        raise CheckpointError(f"{key} is {_show(value)}; expected a whole number {bound}")
    return value


def _real(value, key: str, optional: bool = False, low: float | None = None) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (low is not None and value < low):
        bound = f" >= {low:g}" if low is not None else ""
        raise CheckpointError(f"{key} is {_show(value)}; expected a finite number{bound}"
                              + (" or null" if optional else ""))


def _mapping(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"{key} is {_show(value)}; expected a mapping")
    return value


def _rng_state(value, key: str) -> None:
    """The state of NumPy's default generator (PCG64): 128-bit state and increment."""
    state = _mapping(value, key)
    if state.get("bit_generator") != "PCG64" or set(state) != {"bit_generator", "state",
                                                               "has_uint32", "uinteger"}:
        raise CheckpointError(f"{key} is {_show(value)}; expected the state of a PCG64 "
                              "random generator (bit_generator, state, has_uint32, uinteger)")
    inner = _mapping(state["state"], f"{key}.state")
    if set(inner) != {"state", "inc"}:
        raise CheckpointError(f"{key}.state has keys {sorted(inner)}; expected state and inc")
    for part in ("state", "inc"):
        _whole(inner[part], f"{key}.state.{part}", 0, 1 << 128)
    _whole(state["has_uint32"], f"{key}.has_uint32", 0, 2)
    _whole(state["uinteger"], f"{key}.uinteger", 0, 1 << 32)


def check_meta(meta) -> None:
    """Types and ranges of a checkpoint's metadata: the position, the random generators,
    early stopping, the history."""
    meta = _mapping(meta, "the metadata")
    for key in ("epoch", "batch", "batch_size", "loss_sum", "shuffle_rng", "dropout_rng",
                "early_stopping"):
        if key not in meta:
            raise CheckpointError(f"the metadata has no {key!r}")
    _whole(meta["epoch"], "epoch")
    _whole(meta["batch"], "batch")
    _whole(meta["batch_size"], "batch_size", 1)
    _real(meta["loss_sum"], "loss_sum")
    _real(meta.get("start_loss"), "start_loss", optional=True)
    _real(meta.get("elapsed", 0.0), "elapsed", low=0)
    for key in ("shuffle_rng", "dropout_rng"):
        _rng_state(meta[key], key)
    stop = _mapping(meta["early_stopping"], "early_stopping")
    best = "best" if "best" in stop else "best_loss"  # (earlier releases': the loss)
    _real(stop.get(best), f"early_stopping.{best}", optional=True)
    for key, choices in (("monitor", list(METRIC_MODES)), ("mode", typing.get_args(Mode))):
        if key in stop and not (isinstance(stop[key], str) and stop[key] in choices):
            raise CheckpointError(f"early_stopping.{key} is {_show(stop[key])}; expected one "
                                  f"of: {', '.join(choices)}")
    if stop.get("best_epoch") is not None:
        _whole(stop["best_epoch"], "early_stopping.best_epoch")
    _whole(stop.get("wait", 0), "early_stopping.wait")
    _mapping(meta.get("schedule") or {}, "schedule")
    history = _mapping(meta.get("history") or {}, "history")
    for key, what in (("records", "evaluation"), ("epochs", "epoch")):
        rows = history.get(key, [])
        if not isinstance(rows, list) or not all(
                isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in rows):
            raise CheckpointError(f"history.{key} is not a list of {what} records (mappings "
                                  "with an integer epoch)")


def check_position(meta: dict, arrays: dict, n_rows: int) -> None:
    """The batch and the permutation of the rows, against ``n_rows`` training rows."""
    n_batches = math.ceil(n_rows / meta["batch_size"])
    if meta["batch"] >= n_batches:
        raise CheckpointError(f"batch {meta['batch']} is beyond the {n_batches} batches of an "
                              f"epoch of {n_rows} rows")
    perm = arrays.get("perm")
    if perm is None:
        if meta["batch"]:
            raise CheckpointError(f"it stopped at batch {meta['batch']} of an epoch but holds "
                                  "no permutation of the rows (perm)")
        return
    if perm.dtype.kind not in "iu" or perm.shape != (n_rows,) \
            or not np.array_equal(np.sort(perm), np.arange(n_rows)):
        raise CheckpointError(f"perm ({perm.dtype}, shape {perm.shape}) is not a permutation "
                              f"of the {n_rows} training rows")


def check_best(arrays: dict, shapes: dict[str, tuple]) -> None:
    """The best weights (``best.<name>``) have the network's names and shapes."""
    for key, value in arrays.items():
        if key.startswith("best."):
            name = key[len("best."):]
            if shapes.get(name) != value.shape:
                raise CheckpointError(f"{key} has shape {value.shape}; the network's {name} "
                                      f"has {shapes.get(name, 'no such array')}")


# -- the layout ------------------------------------------------------------------------------
def make(*, position: dict, fit_args: dict, weights: dict[str, np.ndarray],
         optimizer: dict[str, np.ndarray], stopping: tuple[dict, dict[str, np.ndarray]],
         shuffle_rng: dict, dropout_rng: dict, history: dict, schedule: dict,
         carried: dict[str, np.ndarray] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)``: ``meta`` is JSON-serialisable (the ``position`` in training, the
    ``fit_args`` (epochs, eval_every, batch_size, seed), the random generators' states,
    early stopping's meta, the ``history`` and the ``schedule``'s state); ``arrays`` maps
    names to arrays: ``net.<name>`` (the ``weights``), ``opt.<param>.<slot>`` (the
    ``optimizer``'s state), early stopping's (``best.<name>``), ``perm`` (the order of
    the epoch's rows, mid-epoch) and ``carry.<layer>.<state>`` (the state stateful layers
    carry into the next batch)."""
    stop_meta, stop_arrays = stopping
    arrays = {f"net.{k}": v for k, v in weights.items()}
    arrays.update({f"opt.{k}": v for k, v in optimizer.items()})
    arrays.update(stop_arrays)
    arrays.update({f"carry.{k}": v for k, v in (carried or {}).items()})
    if position["perm"] is not None:
        arrays["perm"] = np.asarray(position["perm"], dtype=np.int64)
    meta = {
        "epoch": position["epoch"], "batch": position["batch"],
        "loss_sum": position["loss_sum"], "start_loss": position["start_loss"],
        "elapsed": position["elapsed"], **fit_args,
        "shuffle_rng": shuffle_rng, "dropout_rng": dropout_rng,
        "early_stopping": stop_meta, "history": history, "schedule": schedule,
    }
    return meta, arrays


@dataclass
class Resume:
    """A checkpoint taken apart for a fit of ``epochs`` epochs in batches of
    ``batch_size`` over ``n_rows`` rows, its metadata and position checked (see
    :func:`read`)."""

    meta: dict
    arrays: dict[str, np.ndarray]

    @property
    def position(self) -> dict:
        """``epoch``, ``batch``, ``perm``, ``loss_sum``, ``start_loss`` and ``elapsed``."""
        meta = self.meta
        return {"epoch": meta["epoch"], "batch": meta["batch"],
                "perm": self.arrays.get("perm"), "loss_sum": meta["loss_sum"],
                "start_loss": meta.get("start_loss"), "elapsed": meta.get("elapsed", 0.0)}

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping had ended the fit it was taken from."""
        return bool((self.meta.get("history") or {}).get("stopped_early"))

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays under ``prefix`` ("net.", "opt."), the prefix left off."""
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}


def read(checkpoint, *, epochs: int, batch_size: int, n_rows: int) -> Resume:
    """``(meta, arrays)`` checked for a fit of ``epochs`` epochs in batches of
    ``batch_size`` over ``n_rows`` rows: a damaged value is a CheckpointError, a checkpoint
    of another kind of run a ConfigError."""
    meta, arrays = checkpoint
    check_meta(meta)  # a damaged value is refused (CheckpointError), never clipped
    if meta.get("batch_size") != batch_size:
        raise ConfigError(f"cannot resume with batch_size {batch_size}: the checkpoint "
                          f"was trained with {meta.get('batch_size')}")
    if meta["epoch"] > epochs:
        raise ConfigError(f"cannot resume: the checkpoint is at epoch {meta['epoch']}, "
                          f"beyond the run's {epochs} epochs")
    check_position(meta, arrays, n_rows)
    return Resume(meta, arrays)
