"""Metrics on predictions and targets (both 2-D: (n, outputs))."""

from __future__ import annotations

import numpy as np


def _labels(a: np.ndarray, threshold: float) -> np.ndarray:
    """Class indices from one-hot rows / scores (argmax), or, for a single column, 1 where
    the value exceeds ``threshold`` and 0 elsewhere."""
    if a.ndim == 2 and a.shape[1] > 1:
        return a.argmax(axis=1)
    return (np.ravel(a) > threshold).astype(np.int64)


def accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose highest-scoring class is the target class.

    A single prediction column is the binary case: the raw network output of
    :class:`~scratchnet.losses.BinaryCrossEntropy`, a *logit*, so class 1 is predicted where
    it is > 0 (probability > 0.5); a single target column holds 0/1 labels (> 0.5 is 1).
    """
    if len(target) == 0:
        return float("nan")
    return float(np.mean(_labels(prediction, 0.0) == _labels(target, 0.5)))


def mae(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(prediction, np.float64) - target)))


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    diff = np.asarray(prediction, np.float64) - target
    return float(np.sqrt(np.mean(diff * diff)))


def r2(prediction: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination, ``1 - SS_res / SS_tot`` (averaged over outputs)."""
    target = np.asarray(target, np.float64)
    ss_res = np.sum((target - prediction) ** 2, axis=0)
    ss_tot = np.sum((target - target.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
    return float(np.mean(scores))


METRICS = {"accuracy": accuracy, "mae": mae, "rmse": rmse, "r2": r2}
TASK_METRICS = {"classification": ("accuracy",), "regression": ("mae", "rmse", "r2")}


def infer_task(loss, targets: np.ndarray) -> str:
    """Classification when the loss says so or the targets are one-hot rows."""
    if getattr(loss, "task", None):
        return loss.task
    return "classification" if targets.ndim == 2 and targets.shape[1] > 1 else "regression"
