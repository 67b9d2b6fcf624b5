"""Metrics on predictions and targets (both (n, outputs), or (n, time, outputs) for a
target at every step of a sequence), and :func:`evaluate`: a network's loss and metrics on
a data set."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import ShapeError
from .rows import as_rows


def _labels(a: np.ndarray, threshold: float) -> np.ndarray:
    """Class indices from one-hot rows / scores (argmax over the last axis), or, for a
    single column, 1 where the value exceeds ``threshold`` and 0 elsewhere; flat."""
    if a.ndim >= 2 and a.shape[-1] > 1:
        return a.argmax(axis=-1).ravel()
    return (np.ravel(a) > threshold).astype(np.int64)


def accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose highest-scoring class is the target class; for sequences
    (n, time, classes), of all the steps. The target is one-hot (the prediction's shape)
    or the class ids, one axis fewer ((n,) or (n, time)).

    A single prediction column is the binary case: the raw network output of
    :class:`~scratchnet.nn.BinaryCrossEntropy`, a *logit*, so class 1 is predicted where
    it is > 0 (probability > 0.5); a single target column holds 0/1 labels (> 0.5 is 1).
    """
    if len(target) == 0:
        return float("nan")
    ids = target.ndim == prediction.ndim - 1 and prediction.shape[-1] > 1
    expected = np.ravel(target) if ids else _labels(target, 0.5)
    return float(np.mean(_labels(prediction, 0.0) == expected))


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
#: every value an evaluation records that training may watch, and which way it improves:
#: "max" where higher is better, "min" for losses and errors. The one table of directions:
#: early stopping's ``monitor`` and the plateau schedule take their mode from it, tune its
#: direction, sweeps and ``compare`` their best
METRIC_MODES = {"val_loss": "min", "accuracy": "max", "mae": "min", "rmse": "min", "r2": "max",
                "bits_per_char": "min", "perplexity": "min"}


def larger_is_better(metric: str) -> bool:
    """Whether a higher ``metric`` is better (:data:`METRIC_MODES`; a loss, an error, a
    count of epochs or seconds is better lower)."""
    return METRIC_MODES.get(metric, "min") == "max"


#: the metrics that improve upwards, in words (``accuracy and r2``)
HIGHER_IS_BETTER = " and ".join(m for m, mode in METRIC_MODES.items() if mode == "max")
#: the metrics an evaluation records beside the loss, by task
TASK_METRICS = {"classification": ("accuracy",), "regression": ("mae", "rmse", "r2")}
#: what a character model's evaluation adds: its loss in two other units (:func:`text_scores`)
TEXT_METRICS = ("bits_per_char", "perplexity")


def recorded_metrics(task: str, text: bool = False) -> tuple[str, ...]:
    """What every validation evaluation of a ``task`` run records (and a character
    model's, with ``text``): the values early stopping may monitor. Which way each
    improves is :data:`METRIC_MODES`."""
    return ("val_loss", *TASK_METRICS[task], *(TEXT_METRICS if text else ()))


def text_scores(nats: float) -> dict[str, float]:
    """A character model's loss, its mean cross entropy in nats per character, in the two
    other units it is quoted in: ``bits_per_char`` (nats / ln 2; 8 for a model that knows
    nothing of 256 byte values) and ``perplexity`` (e^nats: the number of characters the
    model is, on average, as unsure as a uniform choice among)."""
    try:
        perplexity = math.exp(nats)
    except OverflowError:  # a diverged model: e^710 and beyond
        perplexity = math.inf
    return dict(zip(TEXT_METRICS, (nats / math.log(2), perplexity), strict=True))


def infer_task(loss, targets: np.ndarray) -> str:
    """Classification when the loss says so or the targets are one-hot rows."""
    if getattr(loss, "task", None):
        return loss.task
    return "classification" if targets.ndim == 2 and targets.shape[1] > 1 else "regression"


def check_xy(X: np.ndarray, y: np.ndarray, what: str) -> None:
    """X holds one sample per row, (n, features), (n, channels, height, width) images or
    (n, time, ...) sequences; y is (n, outputs), or (n, time, outputs) (a target per step)."""
    if y.ndim == 1 and y.size and np.all(np.mod(y, 1) == 0):
        raise ShapeError(f"{what}: y has shape {y.shape}: class labels? The network learns "
                         "one-hot rows: y = scratchnet.data.one_hot(labels, n_classes)")
    if X.ndim < 2 or y.ndim not in (2, 3):
        raise ShapeError(f"{what}: X must be (samples, features) or (samples, channels, "
                         f"height, width) and y 2-D, or sequences (samples, time, features) "
                         f"with y (samples, outputs) or (samples, time, outputs); got shapes "
                         f"{X.shape} and {y.shape}")
    if len(X) != len(y):
        raise ShapeError(f"{what}: X has {len(X)} rows but y has {len(y)}")


def evaluate(net, X: np.ndarray, y: np.ndarray, batch_size: int = 2048,
             target_inverse: Callable[[np.ndarray], np.ndarray] | None = None,
             text: bool = False) -> dict:
    """``{"loss": ..., metric: ...}`` for the network on (X, y), in batches; with ``text``
    (a character model: a class per character at every step) also the loss in bits per
    character and the perplexity (:func:`text_scores`).

    ``target_inverse`` is for a network trained on transformed targets (standardised
    regression values): it maps the network's output and ``y`` back to the original units
    before the metrics are computed, as scikit-learn's ``TransformedTargetRegressor``
    scores its predictions. The loss stays in the units the network trains in: it is
    what the optimizer minimises and early stopping watches."""
    X = as_rows(X, net.dtype)  # an array, or a row source read a batch at a time
    y = np.asarray(y, dtype=net.dtype)
    check_xy(X, y, "evaluation data")
    batch_size = net.inference_batch_size(batch_size)
    total, outputs = 0.0, []
    for i in range(0, len(X), batch_size):
        out = net.forward(X[i:i + batch_size], inference=True)
        total += net.loss.forward(out, y[i:i + batch_size]) * len(out)
        outputs.append(out)
    prediction = np.concatenate(outputs) if outputs else np.empty((0,) + y.shape[1:])
    scores = {"loss": total / max(len(X), 1)}
    if target_inverse is not None:
        prediction, y = target_inverse(prediction), target_inverse(y)
    for name in TASK_METRICS[infer_task(net.loss, y)]:
        scores[name] = METRICS[name](prediction, y)
    if text:
        scores.update(text_scores(scores["loss"]))
    return scores
