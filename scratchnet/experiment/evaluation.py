"""A finished run, read back: its weights, and what they do on the test split."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import runs
from ..config import ExperimentConfig, check_data_files, config_digest, validate
from ..data import Scaler, TextData, saved_target_scaler
from ..data.prepare import encode_targets
from ..errors import ConfigError, DataError, ScratchnetWarning
from ..nn import NeuralNetwork, evaluate
from .build import as_samples, build_network, data_sizes, load_data, target_encoding
from .saved import read_data_info


def load_run(run_dir: str | Path):
    """A finished (or interrupted) run: ``(cfg, net, info, summary)`` with its weights
    loaded. ``info`` is ``data.json`` (scaler, classes, ...). Weights that are not finite
    numbers are a DataError naming the file; a ``config.yaml`` edited after training is a
    :class:`~scratchnet.errors.ScratchnetWarning` (``eval``, ``predict`` and ``export``
    all come through here, so all of them say it)."""
    run_dir = Path(run_dir)
    raw = runs.read_run_config(run_dir)
    cfg = validate(raw, str(run_dir / runs.CONFIG), saved=True)
    info = read_data_info(run_dir)
    path = run_dir / runs.WEIGHTS
    arrays, meta = runs.load_arrays(path)
    bad = runs.nonfinite(arrays)
    if bad is not None:  # every prediction would be NaN, or class 0
        raise DataError(f"{path}: {bad} holds NaN or infinite values; refusing to use "
                        "these weights")
    vocabulary = info.get("vocabulary")
    sizes = data_sizes(info["n_outputs"], len(vocabulary["chars"]) + 1 if vocabulary else None)
    net = build_network(cfg, info.get("input_shape") or info["n_features"], sizes=sizes)
    try:
        net.load_state_dict(arrays)
    except Exception as e:  # a shape/name mismatch between config and weights
        raise DataError(f"{path}: does not match the run's config ({e})") from None
    summary = runs.read_summary(run_dir)
    summary.setdefault("_weights_meta", meta)
    if _edited(raw, summary):
        warnings.warn(f"{run_dir / runs.CONFIG} was edited after training (its hash differs "
                      f"from the one stored in {runs.SUMMARY})", ScratchnetWarning,
                      stacklevel=2)
    return cfg, net, info, summary


def config_edited(run_dir: str | Path, summary: dict) -> bool:
    """True when config.yaml no longer matches the hash stored at training time."""
    return _edited(runs.read_run_config(run_dir), summary)


def _edited(raw: dict, summary: dict) -> bool:
    stored = summary.get("config_hash")
    if not stored:
        return False
    try:
        validate(raw, "config", saved=True)
    except ConfigError:
        return True
    # the hash is of config.yaml as training wrote it (whichever release wrote it)
    return config_digest(raw) != stored


@dataclass
class Evaluation:
    """What a network does on a test split.

    ``scores``: the loss and the task's metrics. For classification also ``y_true`` and
    ``predicted`` (class indices, shape (n,)) and, for a probabilistic loss,
    ``probabilities`` (n, classes); ``classes`` are the class labels in index order."""

    scores: dict
    task: str
    classes: list = field(default_factory=list)
    y_true: np.ndarray | None = None
    predicted: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    def confusion_matrix(self) -> np.ndarray:
        """Counts, rows: the true class, columns: the predicted class."""
        k = len(self.classes)
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (self.y_true, self.predicted), 1)
        return cm

    def per_class(self) -> list[dict]:
        """Precision, recall, F1 and support of each class (0 where undefined, as
        scikit-learn's ``zero_division=0``)."""
        cm = self.confusion_matrix()
        hits = np.diag(cm).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.nan_to_num(hits / cm.sum(axis=0))
            recall = np.nan_to_num(hits / cm.sum(axis=1))
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f),
                 "support": int(s)}
                for c, p, r, f, s in zip(self.classes, precision, recall, f1, cm.sum(axis=1))]


def evaluate_split(net: NeuralNetwork, X_test: np.ndarray, Y_test: np.ndarray, task: str,
                   classes: list, target_inverse=None, text: bool = False) -> Evaluation:
    """Evaluate ``net`` on a prepared test split (``Y_test`` as training encoded it; with
    scaled targets, ``target_inverse`` gives the metrics in the data's units). A character
    model (``text``) is scored at every step: bits per character and perplexity beside
    the loss, each step's true and predicted id in ``y_true`` and ``predicted``."""
    scores = {k: float(v) for k, v in evaluate(net, X_test, Y_test, text=text,
                                                target_inverse=target_inverse).items()}
    if task != "classification":
        return Evaluation(scores, task)
    if text:  # ids, (windows, time): a class at every step
        predicted = net.predict(X_test, raw=True).argmax(axis=-1)
        return Evaluation(scores, task, list(classes), Y_test.astype(np.int64).ravel(),
                          predicted.ravel())
    out = net.predict(X_test)  # probabilities for a probabilistic loss, else raw scores
    scores_2d = np.hstack([1 - out, out]) if out.shape[1] == 1 else out
    y_true = Y_test.argmax(axis=1) if Y_test.shape[1] > 1 else (Y_test[:, 0] > 0.5).astype(int)
    probs = scores_2d if getattr(net.loss, "task", None) == "classification" else None
    return Evaluation(scores, task, list(classes), y_true.astype(np.int64),
                      scores_2d.argmax(axis=1), probs)


def read_test_split(cfg: ExperimentConfig, net: NeuralNetwork, info: dict,
               data_dir: str | None = None, ds=None) -> tuple[np.ndarray, np.ndarray]:
    """A run's test split read again and prepared as training prepared it: the saved
    scaling on the inputs, the targets encoded for the network's output (``ds``: the
    run's data set, when the caller has read it). A data file that changed since training
    (its size or SHA-256 in ``data.json`` differ) is a
    :class:`~scratchnet.errors.ScratchnetWarning`."""
    if ds is None:
        ds = load_data(cfg, data_dir, found_at=info.get("source"))
    saved = info.get("source_file")
    if isinstance(ds, TextData):  # cut and encoded as training did: its own test windows
        if ds.vocabulary.to_dict() != info["vocabulary"]:
            raise DataError(f"{ds.source}: its vocabulary is not the one the run was trained "
                            "on (the text changed since): its test part cannot be scored")
        return ds.X_test, ds.Y_test
    if saved and ds.fingerprint and saved != ds.fingerprint:
        warnings.warn(f"{ds.source} changed since the run was trained (then {saved['bytes']:,} "
                      f"bytes, SHA-256 {saved['sha256'][:12]}...; now {ds.fingerprint['bytes']:,} "
                      f"bytes, {ds.fingerprint['sha256'][:12]}...): its test split is not the "
                      "one the run was tested on", ScratchnetWarning, stacklevel=2)
    return as_trained(cfg, net, info, ds.X_test, ds.y_test)


def as_trained(cfg: ExperimentConfig, net: NeuralNetwork, info: dict, X: np.ndarray,
               y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw feature rows ``X`` (n, features) and their labels ``y`` (n,: class indices, or
    values) prepared as the run's training prepared its data: the saved scaling on the
    inputs, the samples in the network's shape, the targets encoded for its output."""
    X = as_samples(Scaler.from_dict(info["scaler"]).transform(X, dtype=cfg.train.dtype),
                   net.input_shape)
    target_scaler = saved_target_scaler(info)
    if target_scaler is not None:  # the values scaled as the network learnt them
        return X, target_scaler.transform(y.reshape(-1, 1), cfg.train.dtype)
    targets = info.get("targets") or target_encoding(net.loss, info["task"])
    return X, encode_targets(y, info["task"], len(info["classes"]), targets, cfg.train.dtype)


def evaluate_run(run_dir: str | Path, data_dir: str | None = None,
                 loaded: tuple | None = None, data: str | Path | None = None,
                 target: str | None = None, labels: str | Path | None = None) -> Evaluation:
    """A run's weights on its test split (``loaded``: what :func:`load_run` gave for
    this run, when the caller has it already), or on the labelled file ``data``
    (:func:`~scratchnet.experiment.labelled.read_labelled`, with ``target`` and
    ``labels``)."""
    cfg, net, info, _ = loaded or load_run(run_dir)
    text = info.get("kind") == "text"
    if data is not None and text:
        raise ConfigError(f"{run_dir} is a text run: it is scored on its own test part; "
                          "eval --data reads labelled rows of numbers")
    if data is None:
        check_data_files(cfg)
        X_test, Y_test = read_test_split(cfg, net, info, data_dir)
    else:
        from .labelled import read_labelled

        X_test, Y_test = as_trained(cfg, net, info, *read_labelled(
            data, info, target=target or cfg.data.target, labels=labels))
    target_scaler = saved_target_scaler(info)
    return evaluate_split(net, X_test, Y_test, info["task"], info["classes"],
                          target_scaler.inverse_transform if target_scaler else None, text)
