"""The trainer: mini-batch training with evaluation, early stopping, callbacks, and
checkpoints that resume bit for bit.

Beside it: :mod:`~scratchnet.nn.history` (what a fit returns),
:mod:`~scratchnet.nn.checkpoints` (their layout and checks),
:mod:`~scratchnet.nn.divergence` (when training has diverged) and
:func:`scratchnet.nn.blas.thread_limit` (the BLAS threads a fit uses).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np

from .. import checks
from ..errors import CheckpointError, ConfigError, ShapeError
from ..options import Doc, Epochs, Ge, Seed, Size, checked
from . import checkpoints, divergence
from .blas import thread_limit
from .callbacks import Callback, EarlyStopping, PrintEvaluations, copy_into
from .history import History
from .metrics import check_xy, evaluate, infer_task
from .network import NeuralNetwork
from .optimizers import Optimizer
from .rows import as_rows, gather


@dataclass(kw_only=True)
class FitArgs:
    """The arguments of one :meth:`Trainer.fit` beside its data, as fit's declarations
    checked them (see there)."""

    epochs: int
    eval_every: int
    batch_size: int
    seed: int | None
    restart: bool
    early_stopping: bool | str | EarlyStopping
    callbacks: list[Callback]
    shuffle: bool
    resume: tuple[dict, dict] | None
    #: the epochs the learning-rate schedule is laid out over
    schedule_epochs: int

    def saved(self) -> dict:
        """What a checkpoint keeps of them: ``epochs``, ``eval_every``, ``batch_size``,
        ``seed``."""
        return {"epochs": self.epochs, "eval_every": self.eval_every,
                "batch_size": self.batch_size, "seed": self.seed}


@dataclass
class _Fit:
    """Everything one call of :meth:`Trainer.fit` works with, and where it stands.

    ``epoch`` and ``batch`` are the next batch to train (0-based); ``perm`` is the order of
    the current epoch's rows (None between epochs) and ``loss_sum`` the sum of its batch
    losses (weighted by batch size) so far."""

    args: FitArgs
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    stopper: EarlyStopping
    callbacks: list[Callback]
    x_buf: np.ndarray
    y_buf: np.ndarray
    epoch: int = 0
    batch: int = 0
    perm: np.ndarray | None = None
    loss_sum: float = 0.0
    #: the loss of the freshly initialised network on its first batch (None when the fit
    #: continued from earlier weights): what an exploding loss is measured against
    start_loss: float | None = None
    watch_start: bool = False
    elapsed: float = 0.0  # seconds trained before this call (a resumed fit)
    stopped_early: bool = False  # resumed from a fit that early stopping had ended
    t0: float = 0.0  # when training would have started, had it never stopped

    @property
    def n_batches(self) -> int:
        return math.ceil(len(self.X) / self.args.batch_size)

    def position(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "perm": self.perm,
                "loss_sum": self.loss_sum, "start_loss": self.start_loss,
                "elapsed": time.perf_counter() - self.t0}


class Trainer:
    """Trains a :class:`NeuralNetwork` with an :class:`Optimizer` (the book's API).

    ``Trainer(net, SGDMomentum(0.1, momentum=0.9)).fit(X_train, y_train, X_val, y_val,
    epochs=50, eval_every=10, batch_size=60, seed=1, early_stopping=True)``

    ``blas_threads`` is how many threads the BLAS library may use while :meth:`fit` runs
    (restored afterwards); None leaves the library's own setting. The default is 1: the
    matrix products of a mini-batch are small, so a second thread saves little, and when
    other processes keep the cores busy, multi-threaded BLAS waits for its descheduled
    threads at every product (``benchmarks/bench.py`` measures both; figures in
    ``benchmarks/README.md``).

    ``target_inverse`` maps standardised regression targets back to their units: the
    metrics of every evaluation (MAE, RMSE, R^2) are then in the original units, the losses
    in the units the network trains in (see :func:`~scratchnet.nn.metrics.evaluate`).
    ``text``: a character model (evaluations add bits per character and perplexity). A
    stateful layer's carry: reset each epoch, untouched by evaluation, in checkpoints.

    Divergence (:mod:`~scratchnet.nn.divergence`): a NaN or infinite loss or weight stops
    training with a :class:`~scratchnet.errors.DivergenceError`, and so does an epoch whose
    mean training loss is more than :attr:`divergence_factor` (1000) times the loss of the
    freshly initialised network on its first batch (a fit that continues from earlier
    weights, ``restart=False``, is watched for NaN only).
    """

    #: how many times its starting value an epoch's training loss may reach (None: no limit)
    divergence_factor: float | None = 1000.0

    def __init__(self, net: NeuralNetwork, optimizer: Optimizer,
                 callbacks: list[Callback] | None = None, blas_threads: int | None = 1,
                 target_inverse: Callable[[np.ndarray], np.ndarray] | None = None,
                 text: bool = False):
        self.net = net
        self.optimizer = optimizer
        self.target_inverse, self.text = target_inverse, text
        self.blas_threads = (None if blas_threads is None
                             else checks.positive_int(blas_threads, "blas_threads"))
        self.callbacks: list[Callback] = list(callbacks or [])
        self.stop_requested = False
        self.early_stopping: EarlyStopping | None = None
        self.history = History()
        self.fit_args: dict = {}  # epochs, eval_every, batch_size and seed of the fit
        self._position: dict | None = None  # where training stands, for checkpoints
        # the weights training ended with, when the best were put back over them: what a
        # checkpoint continues from
        self._last_weights: dict[str, np.ndarray] | None = None

    # -- the loop ------------------------------------------------------------------
    @checked
    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None,
            epochs: Annotated[Epochs, Doc("passes over the training data")] = 100,
            eval_every: Annotated[Epochs, Doc("evaluate every N epochs, and at the last")] = 10,
            batch_size: Annotated[Size, Doc("rows a step learns from")] = 32,
            seed: Seed | None = 1, restart: bool = True,
            early_stopping: Annotated[bool | Literal["notebook"] | EarlyStopping, Doc(
                "false, true (stop at the first evaluation that does not improve, restore the "
                "best), its options, or notebook (the notebook's trainer, exactly)")] = False,
            callbacks: list[Callback] | None = None, resume: tuple[dict, dict] | None = None,
            schedule_epochs: Epochs | None = None,
            shuffle: Annotated[bool, Doc("reshuffle every epoch (false: rows in order)")] = True,
            verbose: Annotated[int, Ge(0)] = 0) -> History:
        """Train and return the :class:`History`.

        ``X_train`` (and ``X_val``) hold one sample per row: (n, features) for a dense
        network, (n, channels, height, width) images for one that starts with a
        convolution (or a row source that makes its rows as they are gathered:
        :mod:`scratchnet.nn.rows`); ``y_train`` is (n, outputs).

        Args:
            restart: re-initialise the weights (from the network's seed) and the optimizer
                state first, as the book does; False continues from the current weights.
            early_stopping: ``"notebook"`` is :class:`~scratchnet.nn.callbacks.
                NotebookStopping`; the best evaluation is tracked either way.
            resume: a checkpoint from :meth:`checkpoint`; training continues exactly where
                it stopped (weights, optimizer state, schedule, random streams, position).
            schedule_epochs: the epochs the learning-rate schedule is laid out over
                (default ``epochs``); after them a decay stays at its final rate. A run
                extended past its planned end keeps its schedule this way.
            verbose: 1 prints a line per evaluation, as the book's trainer did (through
                :class:`~scratchnet.nn.callbacks.PrintEvaluations`); 0 (the default) is
                silent.
        """
        if verbose:
            callbacks = [*(callbacks or []), PrintEvaluations()]
        args = FitArgs(epochs=epochs, eval_every=eval_every, batch_size=batch_size, seed=seed,
                       restart=restart, early_stopping=early_stopping,
                       callbacks=list(callbacks or []), resume=resume, shuffle=shuffle,
                       schedule_epochs=schedule_epochs or epochs)
        with thread_limit(self.blas_threads):
            run = self._set_up(X_train, y_train, X_val, y_val, args)
            for cb in run.callbacks:
                cb.on_fit_start(self)
            run.t0 = time.perf_counter() - run.elapsed
            stopped_early = run.stopped_early  # a resumed fit that had stopped early
            while run.epoch < args.epochs and not stopped_early:
                if not self._train_epoch(run):
                    return self._finish(run, interrupted=True)
                stopped_early = self._end_epoch(run)
                if stopped_early or self.stop_requested:
                    break
            return self._finish(run, interrupted=run.epoch < args.epochs and not stopped_early,
                                stopped_early=stopped_early)

    def _set_up(self, X_train, y_train, X_val, y_val, args: FitArgs) -> _Fit:
        """Check the data, (re)build the network and load a checkpoint when given."""
        net = self.net
        X_train = as_rows(X_train, net.dtype, contiguous=True)
        y_train = np.ascontiguousarray(y_train, dtype=net.dtype)
        check_xy(X_train, y_train, "training data")
        if len(X_train) == 0:
            raise ShapeError("training data is empty")
        if X_val is not None and y_val is not None and len(X_val) > 0:
            X_val = as_rows(X_val, net.dtype)
            y_val = np.asarray(y_val, dtype=net.dtype)
            check_xy(X_val, y_val, "validation data")
        else:
            X_val = y_val = None
        self.early_stopping = stopper = EarlyStopping.of(args.early_stopping)
        stopper.reset()
        self.stop_requested = False
        self._last_weights = None

        fresh = args.restart and args.resume is None
        if fresh:
            net.reset_parameters(X_train.shape[1:])
            self.optimizer.reset()
        elif not net.built:
            net.build(X_train.shape[1:])
        if stopper.monitor != "val_loss" and X_val is None:
            raise ConfigError(f"early stopping monitors {stopper.monitor}, a metric of the "
                              "validation data: give X_val and y_val", key=("monitor",))
        # the plateau schedule watches what early stopping monitors, in its mode
        self._schedule = self.optimizer.schedule(args.schedule_epochs).watching(stopper.mode)
        self.history = History(task=infer_task(net.loss, y_train), monitor=stopper.monitor)
        self._rng = np.random.default_rng(args.seed)
        self.fit_args = args.saved()
        rows = min(args.batch_size, len(X_train))
        run = _Fit(args, X_train, y_train, X_val, y_val, stopper,
                   self.callbacks + args.callbacks,
                   x_buf=np.empty((rows, *X_train.shape[1:]), dtype=net.dtype),
                   y_buf=np.empty((rows, *y_train.shape[1:]), dtype=net.dtype))
        run.watch_start = fresh
        if args.resume is not None:
            resume = checkpoints.read(args.resume, epochs=args.epochs,
                                      batch_size=args.batch_size, n_rows=len(X_train))
            # checkpointable before its first batch (a finished run's)
            pos = self._position = self._resume(resume)
            run.stopped_early = resume.stopped_early
            run.epoch, run.batch, run.perm = pos["epoch"], pos["batch"], pos["perm"]
            run.loss_sum, run.elapsed = pos["loss_sum"], pos["elapsed"]
            run.start_loss = pos["start_loss"]
            if run.batch == 0:
                run.perm = None
        return run

    def _train_epoch(self, run: _Fit) -> bool:
        """The batches of epoch ``run.epoch`` from ``run.batch`` on: forward, backward and
        an optimizer step each. Returns False when a stop request ended it part-way."""
        net, params, epoch = self.net, self.net.params(), run.epoch
        lr = self._schedule(epoch)
        if run.perm is None:  # a new epoch (a resumed one keeps its order, sum and state)
            n = len(run.X)
            run.perm = self._rng.permutation(n) if run.args.shuffle else np.arange(n)
            run.batch, run.loss_sum = 0, 0.0
            net.reset_state()
            run.stopper.start_epoch(epoch, net.arrays(), (epoch + 1) % run.args.eval_every == 0)
        for cb in run.callbacks:
            cb.on_epoch_start(self, epoch)
        n_batches, size = run.n_batches, run.args.batch_size
        for b in range(run.batch, n_batches):
            idx = run.perm[b * size:(b + 1) * size]
            m = len(idx)
            xb = gather(run.X, idx, run.x_buf[:m])
            yb = gather(run.y, idx, run.y_buf[:m])
            loss = net.train_batch(xb, yb)
            divergence.check_batch_loss(loss, epoch, b, lr)
            self.optimizer.step(params, lr)
            if run.watch_start and run.start_loss is None:
                run.start_loss = loss
            run.loss_sum += loss * m
            run.batch = b + 1
            for cb in run.callbacks:
                cb.on_batch_end(self, epoch, b, n_batches, loss)
            if self.stop_requested and run.batch < n_batches:
                self._position = run.position()
                return False
        return True

    def _end_epoch(self, run: _Fit) -> bool:
        """After the last batch of an epoch: check the weights, evaluate when due, move the
        position to the next epoch. Returns True when early stopping ends training."""
        epoch = run.epoch
        divergence.check_weights(self.net.params(), epoch)
        train_loss, lr = run.loss_sum / len(run.X), self._schedule(epoch)
        divergence.check_epoch_loss(train_loss, run.start_loss, self.divergence_factor, epoch,
                                    lr)
        self.history.epochs.append({"epoch": epoch + 1, "train_loss": train_loss, "lr": lr,
                                    "seconds": time.perf_counter() - run.t0})
        stop = False
        if (epoch + 1) % run.args.eval_every == 0 or epoch + 1 == run.args.epochs:
            stop = self._evaluate_epoch(run, epoch, train_loss, lr)
        run.epoch, run.batch, run.perm, run.loss_sum = epoch + 1, 0, None, 0.0
        self._position = run.position()
        for cb in run.callbacks:
            cb.on_epoch_end(self, epoch)
        return stop

    def _evaluate_epoch(self, run: _Fit, epoch: int, train_loss: float, lr: float) -> bool:
        """One evaluation after ``epoch``: a history record, early stopping and the
        plateau schedule (both watch what early stopping monitors: the validation loss by
        default, else the training loss when there is no validation data)."""
        record = {"epoch": epoch + 1, "train_loss": train_loss}
        if run.X_val is not None:
            scores = self.evaluate(run.X_val, run.y_val)
            divergence.check_validation_loss(scores["loss"], epoch, lr)
            record["val_loss"] = scores.pop("loss")
            record.update(scores)
            watched = record.get(run.stopper.monitor)
            if watched is None:
                recorded = [k for k in record if k not in ("epoch", "train_loss")]
                raise ConfigError(f"early stopping monitors {run.stopper.monitor}, which this "
                                  f"run does not record; it records {', '.join(recorded)}",
                                  key=("monitor",))
        else:
            record["val_loss"], watched = None, train_loss
        stop = run.stopper.update(epoch + 1, watched, self.net.arrays())
        self._schedule.observe(watched, epoch)
        record["lr"] = lr
        record["seconds"] = time.perf_counter() - run.t0
        self.history.records.append(record)
        for cb in run.callbacks:
            cb.on_evaluate(self, record)
        return stop and run.X_val is not None

    def _finish(self, run: _Fit, interrupted: bool, stopped_early: bool = False) -> History:
        """How the fit ended, into the history; the best weights back unless interrupted
        (an interrupted fit keeps its live weights, to be resumed)."""
        history = self.history
        history.epochs_run = run.epoch
        history.interrupted = interrupted
        history.stopped_early = stopped_early
        history.weights_epoch = run.epoch
        final = None if interrupted else run.stopper.final_weights(stopped_early)
        if final is not None:
            self._last_weights = self.net.state_dict()
            history.weights_epoch, arrays = final
            copy_into(self.net.arrays(), arrays)
        history.best_epoch = run.stopper.best_epoch
        best = run.stopper.best
        history.best_value = best if math.isfinite(best) else None
        record = next((r for r in history.records if r["epoch"] == history.best_epoch), None)
        if record is not None:  # the loss of the best evaluation, whatever was monitored
            loss = record["train_loss"] if record["val_loss"] is None else record["val_loss"]
            history.best_val_loss = float(loss)
        for cb in run.callbacks:
            cb.on_fit_end(self, history)
        return history

    # -- evaluation ----------------------------------------------------------------
    def evaluate(self, X: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> dict:
        """Loss and the task's metrics on (X, y), in inference mode and in batches (the
        metrics in original units, with ``target_inverse``)."""
        return evaluate(self.net, X, y, batch_size, self.target_inverse, self.text)

    # -- checkpoints ---------------------------------------------------------------
    def checkpoint(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything needed to resume exactly: ``(meta, arrays)``
        (:func:`scratchnet.nn.checkpoints.make`: position, schedule, random generator
        states, early stopping, history; weights, optimizer slots, best weights, the
        epoch's permutation, the carried state)."""
        if self._position is None:
            raise ConfigError("nothing to checkpoint: fit has not run a batch yet")
        weights = self._last_weights if self._last_weights is not None else self.net.state_dict()
        return checkpoints.make(
            position=self._position, fit_args=self.fit_args, weights=weights,
            optimizer=self.optimizer.state_dict(self.net.params()),
            stopping=self.early_stopping.state_dict(),
            shuffle_rng=self._rng.bit_generator.state,
            dropout_rng=self.net.dropout_rng.bit_generator.state,
            history=self.history.to_dict(), schedule=self._schedule.state_dict(),
            carried=self.net.carried_state())

    def _resume(self, resume: checkpoints.Resume) -> dict:
        """Put a checkpoint's weights, state and random streams back; returns its position."""
        try:
            self.net.load_state_dict(resume.part("net."))
            self.optimizer.load_state_dict(self.net.params(), resume.part("opt."))
            self._schedule.load_state_dict(resume.meta.get("schedule") or {})
            self.net.load_carried_state(resume.part("carry."))
        except (ValueError, TypeError, KeyError) as e:  # ShapeError, ConfigError among them
            raise CheckpointError(f"it does not fit this run ({e})") from None
        checkpoints.check_best(resume.arrays, {k: v.shape for k, v in self.net.arrays().items()})
        self.early_stopping.load_state_dict(resume.meta["early_stopping"], resume.arrays)
        self._rng.bit_generator.state = resume.meta["shuffle_rng"]
        self.net.dropout_rng.bit_generator.state = resume.meta["dropout_rng"]
        history = resume.meta.get("history") or {}
        self.history.records = list(history.get("records", []))
        self.history.epochs = list(history.get("epochs", []))
        return resume.position
