"""The trainer: mini-batch training with evaluation, early stopping, callbacks, and
checkpoints that resume bit for bit."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .callbacks import Callback, EarlyStopping
from .errors import ConfigError, DivergenceError, ShapeError
from .metrics import METRICS, TASK_METRICS, infer_task
from .network import NeuralNetwork
from .optimizers import Optimizer


@dataclass
class History:
    """What a fit did: one record per evaluation, and how it ended.

    Each record holds ``epoch`` (1-based), ``train_loss`` (mean batch loss over that
    epoch), ``val_loss``, the task's metrics (``accuracy``, or ``mae``/``rmse``/``r2``),
    ``lr`` and ``seconds`` (training time since the fit started).
    """

    records: list[dict] = field(default_factory=list)
    task: str = "classification"
    epochs_run: int = 0
    best_epoch: int | None = None
    best_loss: float | None = None
    stopped_early: bool = False
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def to_dict(self) -> dict:
        return {"records": self.records, "task": self.task, "epochs_run": self.epochs_run,
                "best_epoch": self.best_epoch, "best_loss": self.best_loss,
                "stopped_early": self.stopped_early, "interrupted": self.interrupted}


def _check_xy(X: np.ndarray, y: np.ndarray, what: str) -> None:
    if X.ndim != 2 or y.ndim != 2:
        raise ShapeError(f"{what}: X and y must be 2-D, got shapes {X.shape} and {y.shape}")
    if len(X) != len(y):
        raise ShapeError(f"{what}: X has {len(X)} rows but y has {len(y)}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


_blas_controller = None


def blas_thread_limit(threads: int | None):
    """A context manager that runs its block with ``threads`` BLAS threads (threadpoolctl,
    which scikit-learn installs), restoring the previous count after; None changes nothing.
    """
    global _blas_controller
    if threads is None:
        return contextlib.nullcontext()
    if _blas_controller is None:  # scanning the loaded libraries takes milliseconds: once
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=threads, user_api="blas")


class Trainer:
    """Trains a :class:`NeuralNetwork` with an :class:`Optimizer` (the book's API).

    ``Trainer(net, SGDMomentum(0.1, momentum=0.9)).fit(X_train, y_train, X_val, y_val,
    epochs=50, eval_every=10, batch_size=60, seed=1, early_stopping=True)``

    ``blas_threads`` is how many threads the BLAS library may use while :meth:`fit` runs
    (restored afterwards); None leaves the library's own setting. The default is 1: the
    matrix products of a mini-batch are small, so a second thread saves little (about 15%
    per MNIST epoch at batch 60 on an idle 2-core machine), and when other processes keep
    the cores busy, multi-threaded BLAS waits for its descheduled threads at every product
    (epochs 5-40x slower measured on a busy 2-core machine). ``benchmarks/bench.py``
    measures both.
    """

    def __init__(self, net: NeuralNetwork, optimizer: Optimizer,
                 callbacks: list[Callback] | None = None, blas_threads: int | None = 1):
        self.net = net
        self.optimizer = optimizer
        self.blas_threads = (None if blas_threads is None
                             else _positive_int(blas_threads, "blas_threads"))
        self.callbacks: list[Callback] = list(callbacks or [])
        self.stop_requested = False
        self.early_stopping: EarlyStopping | None = None
        self.history = History()
        self._position: dict | None = None  # where training stands, for checkpoints

    # -- the loop ------------------------------------------------------------------
    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, epochs: int = 100, eval_every: int = 10,
            batch_size: int = 32, seed: int | None = 1, restart: bool = True,
            early_stopping: bool | EarlyStopping = False,
            callbacks: list[Callback] | None = None,
            resume: tuple[dict, dict] | None = None) -> History:
        """Train and return the :class:`History`.

        Args:
            restart: re-initialise the weights (from the network's seed) and the optimizer
                state first, as the book does; False continues from the current weights.
            early_stopping: True for the notebook's rule (stop at the first evaluation that
                does not improve, restore the best weights), or an :class:`EarlyStopping`.
                The best evaluation is tracked either way (``trainer.early_stopping``).
            resume: a checkpoint from :meth:`checkpoint`; training continues exactly where
                it stopped (weights, optimizer state, schedule, random streams, position).
        """
        with blas_thread_limit(self.blas_threads):
            return self._fit(X_train, y_train, X_val, y_val, epochs, eval_every, batch_size,
                             seed, restart, early_stopping, callbacks, resume)

    def _fit(self, X_train, y_train, X_val, y_val, epochs, eval_every, batch_size, seed,
             restart, early_stopping, callbacks, resume) -> History:
        epochs = _positive_int(epochs, "epochs")
        eval_every = _positive_int(eval_every, "eval_every")
        batch_size = _positive_int(batch_size, "batch_size")
        net = self.net
        X_train = np.ascontiguousarray(X_train, dtype=net.dtype)
        y_train = np.ascontiguousarray(y_train, dtype=net.dtype)
        _check_xy(X_train, y_train, "training data")
        if len(X_train) == 0:
            raise ShapeError("training data is empty")
        has_val = X_val is not None and y_val is not None and len(X_val) > 0
        if has_val:
            X_val = np.asarray(X_val, dtype=net.dtype)
            y_val = np.asarray(y_val, dtype=net.dtype)
            _check_xy(X_val, y_val, "validation data")

        if isinstance(early_stopping, EarlyStopping):
            stopper = early_stopping
        elif early_stopping:
            stopper = EarlyStopping(patience=1, restore_best=True)
        else:
            stopper = EarlyStopping(patience=None, restore_best=False)
        self.early_stopping = stopper
        callbacks = self.callbacks + list(callbacks or [])
        self.stop_requested = False

        if restart and resume is None:
            net.reset_parameters(X_train.shape[1])
            self.optimizer.state = {}
        elif not net.built:
            net.build(X_train.shape[1])
        params = net.params()
        schedule = self._schedule = self.optimizer.schedule(epochs)
        task = infer_task(net.loss, y_train)
        self.history = history = History(task=task)
        rng = self._rng = np.random.default_rng(seed)
        n = len(X_train)
        n_batches = math.ceil(n / batch_size)
        x_buf = np.empty((batch_size, X_train.shape[1]), dtype=net.dtype)
        y_buf = np.empty((batch_size, y_train.shape[1]), dtype=net.dtype)

        start_epoch, start_batch, perm = 0, 0, None
        loss_sum, elapsed = 0.0, 0.0
        stopper.reset()
        if resume is not None:
            pos = self._load_checkpoint(resume, rng, epochs, batch_size)
            start_epoch, start_batch, perm = pos["epoch"], pos["batch"], pos["perm"]
            loss_sum, elapsed = pos["loss_sum"], pos["elapsed"]
        self._fit_args = {"epochs": epochs, "eval_every": eval_every, "batch_size": batch_size,
                          "seed": seed}

        for cb in callbacks:
            cb.on_fit_start(self)
        t0 = time.perf_counter() - elapsed
        epoch = start_epoch
        for epoch in range(start_epoch, epochs):
            lr = schedule(epoch)
            if start_batch == 0 or perm is None:
                perm = rng.permutation(n)
                loss_sum, first_batch = 0.0, 0
            else:
                first_batch = start_batch
            start_batch = 0
            for cb in callbacks:
                cb.on_epoch_start(self, epoch)
            for b in range(first_batch, n_batches):
                idx = perm[b * batch_size:(b + 1) * batch_size]
                m = len(idx)
                # mode="clip": with the default mode="raise" NumPy gathers into a
                # temporary and copies it into `out`; a permutation's indices are valid.
                xb = np.take(X_train, idx, axis=0, out=x_buf[:m], mode="clip")
                yb = np.take(y_train, idx, axis=0, out=y_buf[:m], mode="clip")
                loss = net.train_batch(xb, yb)
                if not math.isfinite(loss):
                    raise DivergenceError(
                        f"training diverged: loss is {loss} at epoch {epoch + 1}, batch {b + 1} "
                        f"(learning rate {lr:g} too high?)")
                self.optimizer.step(params, lr)
                loss_sum += loss * m
                for cb in callbacks:
                    cb.on_batch_end(self, epoch, b, n_batches, loss)
                if self.stop_requested:
                    self._position = {"epoch": epoch, "batch": b + 1, "perm": perm,
                                      "loss_sum": loss_sum,
                                      "elapsed": time.perf_counter() - t0}
                    if b + 1 == n_batches:  # the epoch is complete: finish it properly
                        break
                    history.interrupted = True
                    history.epochs_run = epoch
                    self._sync_history(history, stopper)
                    for cb in callbacks:
                        cb.on_fit_end(self, history)
                    return history
            self._check_finite(epoch)
            train_loss = loss_sum / n
            stop = False
            if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
                record = {"epoch": epoch + 1, "train_loss": train_loss}
                if has_val:
                    scores = self.evaluate(X_val, y_val)
                    if not math.isfinite(scores["loss"]):
                        raise DivergenceError(
                            f"training diverged: validation loss is {scores['loss']} after "
                            f"epoch {epoch + 1} (learning rate {lr:g} too high?)")
                    record["val_loss"] = scores.pop("loss")
                    record.update(scores)
                    stop = stopper.update(epoch + 1, record["val_loss"], net.arrays())
                else:
                    record["val_loss"] = None
                    stopper.update(epoch + 1, train_loss, net.arrays())
                # reduce-on-plateau watches the same loss as early stopping (no-op otherwise)
                schedule.observe(record["val_loss"] if has_val else train_loss, epoch)
                record["lr"] = lr
                record["seconds"] = time.perf_counter() - t0
                history.records.append(record)
                for cb in callbacks:
                    cb.on_evaluate(self, record)
            self._position = {"epoch": epoch + 1, "batch": 0, "perm": None, "loss_sum": 0.0,
                              "elapsed": time.perf_counter() - t0}
            for cb in callbacks:
                cb.on_epoch_end(self, epoch)
            if stop:
                history.stopped_early = True
                break
            if self.stop_requested:
                history.interrupted = epoch + 1 < epochs
                break
        history.epochs_run = epoch + 1
        if stopper.restore_best and not history.interrupted:
            stopper.restore(net.arrays())
        self._sync_history(history, stopper)
        for cb in callbacks:
            cb.on_fit_end(self, history)
        return history

    @staticmethod
    def _sync_history(history: History, stopper: EarlyStopping) -> None:
        history.best_epoch = stopper.best_epoch
        history.best_loss = stopper.best_loss if math.isfinite(stopper.best_loss) else None

    def _check_finite(self, epoch: int) -> None:
        for p in self.net.params():
            if not np.isfinite(p.value).all():
                raise DivergenceError(
                    f"training diverged: {p.name} has NaN or infinite values after epoch "
                    f"{epoch + 1} (learning rate too high?)")

    # -- evaluation ----------------------------------------------------------------
    def evaluate(self, X: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> dict:
        """Loss and the task's metrics on (X, y), in inference mode and in batches."""
        return evaluate(self.net, X, y, batch_size)

    # -- checkpoints ---------------------------------------------------------------
    def checkpoint(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything needed to resume exactly: ``(meta, arrays)``.

        ``meta`` is JSON-serialisable (position, schedule arguments, random generator
        states, early-stopping state, history); ``arrays`` maps names to arrays
        (weights, optimizer slots, best weights, the epoch's permutation)."""
        if self._position is None:
            raise ConfigError("nothing to checkpoint: fit has not run a batch yet")
        pos = self._position
        stop_meta, stop_arrays = self.early_stopping.state_dict()
        arrays = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        arrays.update({f"opt.{k}": v for k, v in self.optimizer.state_dict(self.net.params()).items()})
        arrays.update(stop_arrays)
        if pos["perm"] is not None:
            arrays["perm"] = np.asarray(pos["perm"], dtype=np.int64)
        meta = {
            "epoch": pos["epoch"], "batch": pos["batch"], "loss_sum": pos["loss_sum"],
            "elapsed": pos["elapsed"], **self._fit_args,
            "shuffle_rng": self._rng.bit_generator.state, "dropout_rng": self.net.dropout_rng.bit_generator.state,
            "early_stopping": stop_meta, "history": self.history.to_dict(),
            "schedule": self._schedule.state_dict(),
        }
        return meta, arrays

    def _load_checkpoint(self, resume, rng, epochs, batch_size) -> dict:
        meta, arrays = resume
        if meta.get("batch_size") != batch_size:
            raise ConfigError(f"cannot resume with batch_size {batch_size}: the checkpoint "
                              f"was trained with {meta.get('batch_size')}")
        if meta["epoch"] > epochs:
            raise ConfigError(f"cannot resume: the checkpoint is at epoch {meta['epoch']}, "
                              f"beyond the run's {epochs} epochs")
        self.net.load_state_dict({k[4:]: v for k, v in arrays.items() if k.startswith("net.")})
        self.optimizer.load_state_dict(
            self.net.params(), {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")})
        self.early_stopping.load_state_dict(meta["early_stopping"], arrays)
        self._schedule.load_state_dict(meta.get("schedule") or {})
        rng.bit_generator.state = meta["shuffle_rng"]
        self.net.dropout_rng.bit_generator.state = meta["dropout_rng"]
        hist = meta.get("history") or {}
        self.history.records = list(hist.get("records", []))
        return {"epoch": meta["epoch"], "batch": meta["batch"],
                "perm": arrays.get("perm"), "loss_sum": meta["loss_sum"],
                "elapsed": meta.get("elapsed", 0.0)}


def evaluate(net: NeuralNetwork, X: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> dict:
    """``{"loss": ..., metric: ...}`` for the network on (X, y), in batches."""
    X = np.asarray(X, dtype=net.dtype)
    y = np.asarray(y, dtype=net.dtype)
    _check_xy(X, y, "evaluation data")
    total, outputs = 0.0, []
    for i in range(0, len(X), batch_size):
        out = net.forward(X[i:i + batch_size], inference=True)
        total += net.loss.forward(out, y[i:i + batch_size]) * len(out)
        outputs.append(out)
    prediction = np.concatenate(outputs) if outputs else np.empty((0, y.shape[1]))
    scores = {"loss": total / max(len(X), 1)}
    for name in TASK_METRICS[infer_task(net.loss, y)]:
        scores[name] = METRICS[name](prediction, y)
    return scores
