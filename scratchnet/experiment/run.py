"""Training one experiment into a run folder, and resuming one."""

from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, environment, files, runs
from ..config import ExperimentConfig, config_digest, differing_keys, validate
from ..data import Prepared, TextData
from ..errors import (CheckpointError, ConfigError, DataError, DivergenceError,
                      ScratchnetWarning, WriteError)
from ..data.download import Progress
from ..nn import Callback, HealthMonitor, History, NeuralNetwork, Trainer
from ..nn.checkpoints import check_meta
from ..options import Epochs, check_value
from .build import (as_samples, build_network, build_optimizer, data_info, early_stopping_of,
                    prepare_data)
from .evaluation import evaluate_split
from .plan import Plan, plan_experiment


class RunRecorder(Callback):
    """Writes metrics, the run's weights and checkpoints into the run folder as training
    goes: the weights of each best evaluation as it comes; a run that keeps its last
    weights (no ``restore_best``) replaces them with those when it completes."""

    def __init__(self, run_dir: Path, cfg: ExperimentConfig):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        # of config.yaml as it is in the folder (a run resumed in place keeps the one an
        # earlier release may have written), so that an edit to it can be told
        self.digest = config_digest(runs.read_run_config(run_dir))
        self._evaluated_this_epoch = False

    def on_evaluate(self, trainer, record):
        self._evaluated_this_epoch = True
        if trainer.early_stopping.best_epoch == record["epoch"]:
            self.save_weights(trainer.net.state_dict(), record["epoch"], record.get("val_loss"))

    def save_weights(self, state: dict, epoch, val_loss) -> None:
        runs.save_arrays(self.run_dir / runs.WEIGHTS, state,
                         {"epoch": epoch, "val_loss": val_loss, "config_hash": self.digest})

    def on_epoch_end(self, trainer, epoch):
        # every epoch's training loss, the evaluations' columns where it was evaluated
        runs.write_metrics(self.run_dir, trainer.history.per_epoch())
        every = self.cfg.train.checkpoint_every
        due = (epoch + 1) % every == 0 if every else self._evaluated_this_epoch
        self._evaluated_this_epoch = False
        if due:
            self.save_checkpoint(trainer)

    def save_checkpoint(self, trainer) -> None:
        meta, arrays = trainer.checkpoint()
        meta["config_hash"] = self.digest
        meta["environment"] = environment.describe(trainer.blas_threads)  # a resume compares
        runs.save_arrays(self.run_dir / runs.CHECKPOINT, arrays, meta)


@dataclass
class RunResult:
    """What :func:`train_experiment` returns: the summary written to ``summary.json`` plus
    the live objects for Python users."""

    summary: dict
    run_dir: Path
    history: History | None = None
    net: NeuralNetwork | None = None
    data: Prepared | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return self.summary["status"]


def _rounded(scores: dict) -> dict:
    return {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in scores.items()}


def train_experiment(cfg: ExperimentConfig, *, out: str | Path = "runs", data_dir: str | None = None,
                     callbacks: list[Callback] | None = None, resume: str | Path | None = None,
                     on_start=None, progress: Progress | None = None,
                     plan: Plan | None = None) -> RunResult:
    """Train one experiment into a new run folder, or continue ``resume`` (a run folder).

    Resuming with the run's own config continues it in place, exactly where it stopped.
    Resuming with more ``train.epochs`` than the run had *extends* it: a new run folder
    starts from the old one's latest state, keeps its learning-rate schedule (the decay
    stays at its end over the extra epochs) and records which run it extends and that
    schedule in ``extends.json``; the old folder is left as it was.

    The experiment is planned first (:func:`~scratchnet.experiment.plan.plan_experiment`,
    or ``plan`` when the caller has done it), so a mistake stops it before any folder is
    made. ``on_start(trainer, run_dir)`` is called before training (the CLI uses it to
    connect Ctrl-C to ``trainer.stop_requested``); ``progress(file, done, total)`` hears
    about a dataset download. Returns a :class:`RunResult` whose ``status`` is
    "completed" or "interrupted"; divergence raises :class:`DivergenceError` after the
    summary is written (the best weights so far stay in the folder).

    With ``tracking: {mlflow: true}`` in the config the run is also logged to MLflow
    (:mod:`scratchnet.tracking`); a tracking failure is a warning, never the run's end.
    """
    args = dict(out=out, data_dir=data_dir, callbacks=callbacks, resume=resume,
                on_start=on_start, progress=progress, plan=plan)
    if cfg.tracking is None or not cfg.tracking.mlflow:
        return _run(cfg, **args)
    from ..tracking import RunTracker, Tracker

    runs_folder = Path(resume).parent if resume is not None else Path(out)
    tracker = RunTracker(Tracker.of(cfg.tracking.model_dump(), runs_folder, cfg.name or "run"))

    def start(trainer, run_dir):
        tracker.start(run_dir, cfg.to_dict())
        if on_start is not None:
            on_start(trainer, run_dir)

    try:
        return _run(cfg, **{**args, "callbacks": [*(callbacks or []), tracker],
                            "on_start": start})
    finally:
        tracker.finish()


def _run(cfg: ExperimentConfig, *, out, data_dir, callbacks, resume, on_start, progress,
         plan) -> RunResult:
    resume_dir = Path(resume) if resume is not None else None
    resume_state, extending, lineage = None, False, {}
    if resume_dir is not None:
        resume_state, extending, lineage = _continuing(cfg, resume_dir)
    if plan is None or resume_dir is not None:
        plan = plan_experiment(cfg, data_dir, schedule_epochs=lineage.get("schedule_epochs"))
    # before any folder is made; 8-bit images stay 8-bit, scaled as batches are gathered.
    # A resumed run looks first where it found its data (as eval does), so it needs no
    # --data-dir again.
    data = prepare_data(cfg, data_dir, progress, plan.targets, lazy=True,
                        found_at=_recorded_source(resume_dir))
    in_place = resume_dir is not None and not extending
    if in_place:
        run_dir = resume_dir
    else:
        run_dir = runs.new_run_dir(out if resume_dir is None else resume_dir.parent,
                                   cfg.name or "run")
    try:
        if not in_place:
            runs.write_config(run_dir, cfg.to_dict())
        if extending:
            runs.write_json(run_dir / runs.EXTENDS, lineage)
        with runs.locked(run_dir), _naming((resume_dir or run_dir) / runs.CHECKPOINT):
            if in_place:  # checked again now that no other process can be training it
                resume_state = _check_resume(run_dir, cfg)
                if resume_state is None:
                    warnings.warn(f"{run_dir} has no {runs.CHECKPOINT} (it stopped before its "
                                  "first one): training it from the start", ScratchnetWarning,
                                  stacklevel=3)
            if resume_state is not None:  # its checkpoint says where it was saved
                environment.warn_if_moved(resume_state[0].get("environment"), str(resume_dir))
            runs.write_json(run_dir / runs.DATA, data_info(data, plan.targets, plan.input_shape))
            return _train(cfg, run_dir, data, plan, resume_state, callbacks, on_start, lineage)
    except WriteError as e:  # a full disk: the files written before it are intact
        then = f"; once there is room: scratchnet train --resume {run_dir}" if e.full else ""
        raise WriteError(f"{e}; {run_dir} holds what was saved so far{then}",
                         full=e.full) from None


def _train(cfg: ExperimentConfig, run_dir: Path, data: Prepared | TextData, plan: Plan,
           resume_state, callbacks, on_start, lineage: dict) -> RunResult:
    input_shape = plan.input_shape
    net = build_network(cfg, input_shape, sizes=plan.sizes)
    X_train, X_val, X_test = (as_samples(X, input_shape)
                              for X in (data.X_train, data.X_val, data.X_test))
    schedule_epochs = lineage.get("schedule_epochs")
    optimizer = build_optimizer(cfg, schedule_epochs)
    recorder = RunRecorder(run_dir, cfg)
    scaler = getattr(data, "target_scaler", None)  # (a text has none)
    inverse = scaler.inverse_transform if scaler else None
    text = isinstance(data, TextData)
    # health first: the recorder writes the record it adds to
    health = [HealthMonitor(X_val)] if cfg.train.health else []
    trainer = Trainer(net, optimizer, [*health, recorder, *(callbacks or [])],
                      target_inverse=inverse, text=text)
    if on_start is not None:
        on_start(trainer, run_dir)
    t0 = time.perf_counter()
    stopper = early_stopping_of(cfg)
    base = {"name": cfg.name, "config": cfg.to_dict(), "config_hash": recorder.digest,
            "run_dir": str(run_dir), "dataset": cfg.data.dataset, "task": data.task,
            "n_params": net.n_params, "scratchnet_version": __version__,
            "environment": environment.describe(trainer.blas_threads), "weights": stopper.keeps,
            "best_metric": stopper.monitor,
            **({"extends": lineage["extends"]} if lineage.get("extends") else {})}
    try:
        history = trainer.fit(X_train, data.Y_train, X_val, data.Y_val,
                              epochs=cfg.train.epochs, eval_every=cfg.train.eval_every,
                              batch_size=cfg.train.batch_size, seed=cfg.seed,
                              early_stopping=stopper, resume=resume_state,
                              schedule_epochs=schedule_epochs,
                              # streams: row r of each batch goes on from row r of the last
                              shuffle=cfg.data.streams is None)
    except DivergenceError as err:
        if trainer.history.epochs:
            runs.write_metrics(run_dir, trainer.history.per_epoch())
        summary = {**base, "status": "diverged", "error": str(err),
                   "best_epoch": stopper.best_epoch,
                   "has_weights": (run_dir / runs.WEIGHTS).exists(),
                   "seconds": time.perf_counter() - t0}
        runs.write_json(run_dir / runs.SUMMARY, summary)
        if summary["has_weights"] and stopper.best_epoch is not None:
            kept = f"the best weights so far (epoch {stopper.best_epoch}) are kept in {run_dir}"
        elif summary["has_weights"]:  # resumed from a stop before the first evaluation
            kept = f"the weights of that stop, never evaluated, are kept in {run_dir}"
        else:
            kept = f"it diverged before the first evaluation, so no weights were saved ({run_dir})"
        raise DivergenceError(f"{err}; {kept}") from None
    seconds = history.records[-1]["seconds"] if history.records else time.perf_counter() - t0
    if history.interrupted:
        recorder.save_checkpoint(trainer)
        runs.write_metrics(run_dir, history.per_epoch())  # even when nothing was evaluated yet
        # (a run resumed in place may hold the unevaluated weights of an earlier stop)
        evaluated = history.best_epoch is not None
        state = net.state_dict()
        if not evaluated and all(np.isfinite(a).all() for a in state.values()):
            recorder.save_weights(state, None, None)  # nothing evaluated yet: keep what we have
        summary = {**base, "status": "interrupted", "epochs_run": history.epochs_run,
                   "best_epoch": history.best_epoch, "best_value": history.best_value,
                   "weights": "best so far" if evaluated else "unevaluated",
                   "weights_epoch": history.best_epoch, "stopped_early": False,
                   "seconds": seconds, "test": None}
        runs.write_json(run_dir / runs.SUMMARY, summary)
        return RunResult(summary, run_dir, history, net, data)

    recorder.save_checkpoint(trainer)
    if not stopper.restore_best:  # the weights it ended with are the run's: saved, then tested
        last = history.records[-1] if history.records else {}
        evaluated = last.get("epoch") == history.weights_epoch  # not the notebook's E - 1
        recorder.save_weights(net.state_dict(), history.weights_epoch,
                              last.get("val_loss") if evaluated else None)
    test = _rounded(evaluate_split(net, X_test, data.Y_test, data.task, data.classes,
                                   inverse, text=text).scores)
    epochs_run = history.epochs_run
    # early when the stopping rule ended the run before its last epoch, not at it
    early = history.stopped_early and epochs_run < cfg.train.epochs
    summary = {**base, "status": "completed", "epochs_run": epochs_run,
               "best_epoch": history.best_epoch, "best_value": history.best_value,
               "weights_epoch": history.weights_epoch, "stopped_early": early,
               "best_val_loss": history.best_loss, "test": test,
               "seconds": seconds, "seconds_per_epoch": seconds / max(epochs_run, 1)}
    runs.write_json(run_dir / runs.SUMMARY, summary)
    return RunResult(summary, run_dir, history, net, data)


def _recorded_source(run_dir: Path | None) -> str | None:
    """Where the run in ``run_dir`` found its data (``data.json``'s ``source``), if it
    recorded it."""
    if run_dir is None or not os.path.lexists(run_dir / runs.DATA):
        return None
    source = runs.read_json(run_dir / runs.DATA).get("source")
    return source if isinstance(source, str) else None


def _continuing(cfg: ExperimentConfig, run_dir: Path) -> tuple[tuple, bool, dict]:
    """What ``train --resume run_dir`` trains: ``(checkpoint, extending, lineage)``: the
    run itself, or an extension of it (more ``train.epochs``) into a new folder; the
    lineage (:func:`lineage`) is the run's own, or the extension's."""
    raw = runs.read_run_config(run_dir)
    # as this release writes it, whichever wrote it
    saved = validate(raw, str(run_dir / runs.CONFIG), saved=True).to_dict()
    saved_epochs = saved["train"]["epochs"]
    # how a run is driven or watched may change; what it learns may not
    differ = differing_keys([saved, cfg.to_dict()],
                            ignore=("name", "train.epochs", "train.health", "tracking", "tune"))
    if differ:
        raise ConfigError(f"--resume {run_dir}: the config differs from the run's saved "
                          f"config at {', '.join(differ[:5])}; only train.epochs may change "
                          "(to extend the run)")
    own = lineage(run_dir, raw)
    if cfg.train.epochs == saved_epochs:
        return _check_resume(run_dir, cfg), False, own
    if cfg.train.epochs < saved_epochs:
        raise ConfigError(f"--resume {run_dir}: train.epochs {cfg.train.epochs} is fewer than "
                          f"the run's {saved_epochs}; a run can be continued or extended, "
                          "not shortened")
    meta, arrays = _read_checkpoint(run_dir, saved_epochs)
    if (meta.get("history") or {}).get("stopped_early"):
        raise ConfigError(f"--resume {run_dir}: the run's early stopping ended it at epoch "
                          f"{meta['epoch']}; extending it would train past its own stopping "
                          "rule")
    return (meta, arrays), True, {"extends": str(run_dir.resolve()),
                                  "schedule_epochs": own.get("schedule_epochs") or saved_epochs}


def lineage(run_dir: Path, raw: dict | None = None) -> dict:
    """Which run ``run_dir`` extends and the epochs its schedule is laid out over
    (``{"extends": ..., "schedule_epochs": ...}``; {} for a run that extends none), from
    its ``extends.json``, or from ``train.extends`` and ``train.schedule_epochs`` in the
    ``config.yaml`` (``raw``) of a run folder written by an earlier release."""
    path = run_dir / runs.EXTENDS
    if os.path.lexists(path):
        found, where = runs.read_json(path), path
    else:
        found = (raw if raw is not None else runs.read_run_config(run_dir)).get("train") or {}
        where = run_dir / runs.CONFIG
    try:
        return {key: check_value(found[key], kind, key) for key, kind in _LINEAGE.items()
                if found.get(key) is not None}
    except ConfigError as e:
        raise DataError(f"{where}: {e}") from None


_LINEAGE = {"extends": str, "schedule_epochs": Epochs}


def _read_checkpoint(run_dir: Path, epochs) -> tuple[dict, dict]:
    """The checkpoint of ``run_dir``, a run of ``epochs`` epochs, its metadata checked."""
    path = run_dir / runs.CHECKPOINT
    if not os.path.lexists(path):
        raise ConfigError(f"--resume {run_dir}: no {runs.CHECKPOINT} to resume from")
    arrays, meta = runs.load_arrays(path, files.MAX_CHECKPOINT_BYTES)
    with _naming(path):
        check_meta(meta)
        if (bad := runs.nonfinite(arrays)) is not None:
            raise CheckpointError(f"{bad} holds NaN or infinite values")
        if isinstance(epochs, int) and meta["epoch"] > epochs:
            raise CheckpointError(f"epoch {meta['epoch']} is beyond the run's {epochs} epochs")
    return meta, arrays


@contextmanager
def _naming(path: Path):
    """A damaged checkpoint's error names its file."""
    try:
        yield
    except CheckpointError as e:
        raise CheckpointError(f"{path}: not a usable checkpoint: {e}") from None


def _check_resume(run_dir: Path, cfg: ExperimentConfig):
    """The checkpoint to continue ``run_dir`` in place from, or None to train it from the
    start: it stopped before its first checkpoint (a full disk, ``kill -9``) and has no
    summary. A run that trained to its end but was stopped before writing its summary is
    continued too: no batch is left, the summary is written. A completed run has nothing
    left to do."""
    summary = runs.read_summary(run_dir)
    if not summary and not os.path.lexists(run_dir / runs.CHECKPOINT):
        return None
    meta, arrays = _read_checkpoint(run_dir, cfg.train.epochs)
    if summary.get("status") != "completed":
        return meta, arrays
    # (the final checkpoint says so too, should the run be killed before its summary)
    if (meta.get("history") or {}).get("stopped_early") or summary.get("stopped_early"):
        raise ConfigError(f"--resume {run_dir}: the run already completed (its early "
                          f"stopping ended it at epoch {meta['epoch']}); nothing to resume")
    if not meta.get("batch") and meta["epoch"] >= cfg.train.epochs:
        raise ConfigError(f"--resume {run_dir}: the run already completed its "
                          f"{meta['epoch']} epochs; nothing to resume (to train it further "
                          "into a new run folder: --set train.epochs=N with N larger)")
    return meta, arrays
