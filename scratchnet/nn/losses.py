"""Losses: ``forward(prediction, target)`` returns a float, ``backward()`` its gradient
with respect to the prediction."""

from __future__ import annotations

from typing import Annotated

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from ..options import Doc, Named, PositiveFloat, build, check_value, checked, options
from ..registry import Registry
from .core import Cached, check_same_shape


class Loss(Cached):
    """``forward`` keeps the prediction and target (``CACHES``) for ``backward``."""

    CACHES = ("prediction", "target")
    name: str = ""
    #: "classification" when the loss only makes sense for classes; None when the targets
    #: decide (mean squared error on one-hot labels is still classification)
    task: str | None = None
    #: how class labels must be encoded for it: "one_hot" rows, or "binary" (one 0/1
    #: column); None: whatever the data is (one-hot classes, or values)
    targets: str | None = None

    def __init__(self) -> None:
        self.prediction: np.ndarray | None = None
        self.target: np.ndarray | None = None

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        check_same_shape(target, prediction, f"{type(self).__name__} target")
        self.prediction = prediction
        self.target = target
        return float(self._output())

    def backward(self) -> np.ndarray:
        grad = self._input_grad()
        check_same_shape(grad, self.prediction, f"{type(self).__name__} gradient")
        return grad

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """What the network's raw output means to a user (probabilities for softmax)."""
        return output

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities from the raw output (classification losses)."""
        raise ConfigError(f"{self.name or type(self).__name__} is not a classification loss: "
                          f"class probabilities need softmax_cross_entropy or "
                          f"binary_cross_entropy")

    def config(self) -> dict:
        """The keyword arguments that rebuild this loss (its declared options, kept as
        attributes of the same names)."""
        return {o.name: getattr(self, o.name) for o in options(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def _output(self) -> float:
        raise NotImplementedError

    def _input_grad(self) -> np.ndarray:
        raise NotImplementedError


class MeanSquaredError(Loss):
    """``sum((p - y)^2) / batch``: summed over outputs, averaged over the batch."""

    name = "mse"

    def _output(self) -> float:
        diff = self.prediction - self.target
        return np.vdot(diff, diff) / self.prediction.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = self.prediction - self.target
        grad *= 2.0 / self.prediction.shape[0]
        return grad


def softmax(z: np.ndarray) -> np.ndarray:
    """Over the last axis (the classes), for (batch, classes) or (batch, time, classes)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class SoftmaxCrossEntropy(Loss):
    """Categorical cross entropy of ``softmax(logits)`` against one-hot targets, or class ids.

    Loss: ``-sum(y * log_softmax(z)) / n``; gradient: ``(softmax(z) - y) / n``, where n is
    the number of predictions: the batch for (batch, classes) logits, batch * time for a
    sequence's (batch, time, classes), with a target at every step (the mean over batch
    and time, in nats). The network's last layer stays linear: the softmax lives here.

    The target may also be the class ids themselves, one axis fewer than the logits
    ((batch,) or (batch, time); floats holding whole numbers, as a network casts its
    data): the same numbers, without a one-hot array of classes times the data's size (a
    character model's windows over a text at stride 1 would need seq_len * vocabulary
    numbers per character).
    """

    CACHES = Loss.CACHES + ("_softmax", "_ids")
    name = "softmax_cross_entropy"
    task = "classification"
    targets = "one_hot"

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        self._ids = None
        if target.ndim == prediction.ndim - 1 and target.shape == prediction.shape[:-1]:
            self._ids = integer_ids(target, prediction.shape[-1],
                                    "softmax_cross_entropy's target").ravel()
            self.prediction, self.target = prediction, target
            return float(self._output())
        return super().forward(prediction, target)

    def _output(self) -> float:
        # The ufuncs' own reductions and in-place steps: the same numbers as z.max(...),
        # exp.sum(...) and new arrays, without their wrappers (on a small batch the calls
        # are most of the cost).
        z = self.prediction
        shifted = np.subtract(z, np.maximum.reduce(z, axis=-1, keepdims=True))
        exp = np.exp(shifted)
        total = np.add.reduce(exp, axis=-1, keepdims=True)
        self._softmax = np.divide(exp, total, out=exp)
        shifted -= np.log(total, out=total)  # now log-softmax
        if self._ids is not None:
            picked = shifted.reshape(-1, z.shape[-1])[np.arange(len(self._ids)), self._ids]
            return -float(np.sum(picked, dtype=np.float64)) / self._rows()
        return -np.vdot(self.target, shifted) / self._rows()

    def _rows(self) -> int:
        """How many predictions the mean is over: batch, or batch * time."""
        return self.prediction.size // max(self.prediction.shape[-1], 1)

    def _input_grad(self) -> np.ndarray:
        if self._ids is None:
            grad = self._softmax - self.target
        else:
            grad = self._softmax.copy()
            grad.reshape(-1, grad.shape[-1])[np.arange(len(self._ids)), self._ids] -= 1
        grad *= 1.0 / self._rows()
        return grad

    def predictions(self, output: np.ndarray) -> np.ndarray:
        return softmax(output)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        return softmax(output)


def integer_ids(x: np.ndarray, count: int, what: str) -> np.ndarray:
    """``x`` as an integer array of ids, each in 0..count-1 (integers, or floats holding
    whole numbers: a network casts its data to its dtype); a DataError naming ``what``
    (``"Embedding(vocab_size=7)"``) otherwise."""
    if x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.equal(np.mod(x, 1), 0)
        if not whole.all():
            raise DataError(f"{what} takes integer ids; got {float(x[~whole][0])!r}")
    elif x.dtype.kind not in "iu":
        raise DataError(f"{what} takes integer ids; got an array of {x.dtype}")
    low, high = (x.min(), x.max()) if x.size else (0, 0)
    if low < 0 or high >= count:
        raise DataError(f"{what} got id {int(low if low < 0 else high)}: ids must be in "
                        f"0..{count - 1}")
    return x.astype(np.intp)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` in the overflow-free form ``0.5 * (1 + tanh(z / 2))``."""
    s = np.multiply(z, z.dtype.type(0.5))
    np.tanh(s, out=s)
    s += 1
    s *= 0.5
    return s


class BinaryCrossEntropy(Loss):
    """Binary cross entropy of ``sigmoid(logit)`` against 0/1 targets, taking the logit.

    For one output unit (a single logit column, shape (batch, 1)) and a target column of
    0/1 labels (values in between are accepted as soft labels). The loss per row is
    ``max(z, 0) - z * y + log1p(exp(-|z|))``, which is ``-y log s - (1 - y) log(1 - s)``
    for ``s = sigmoid(z)`` written so that nothing overflows and no log sees 0 (PyTorch's
    ``BCEWithLogitsLoss``); it is averaged over the batch. Gradient: ``(s - y) / batch``.
    The network's last layer stays linear: the sigmoid lives here.
    """

    name = "binary_cross_entropy"
    task = "classification"
    targets = "binary"

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        if prediction.ndim != 2 or prediction.shape[1] != 1:
            raise ShapeError(
                f"binary_cross_entropy expects one output unit (a logit column of shape "
                f"(batch, 1)), got shape {prediction.shape}; for k classes use "
                f"softmax_cross_entropy")
        if target.size and (target.min() < 0 or target.max() > 1):
            raise DataError(f"binary_cross_entropy targets must lie in [0, 1] (0/1 labels), "
                            f"got values from {target.min()!r} to {target.max()!r}")
        return super().forward(prediction, target)

    def _output(self) -> float:
        z, y = self.prediction, self.target
        loss = np.abs(z)
        np.negative(loss, out=loss)
        np.exp(loss, out=loss)
        np.log1p(loss, out=loss)
        loss += np.maximum(z, 0)
        loss -= z * y
        return float(np.sum(loss, dtype=np.float64)) / z.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = _sigmoid(self.prediction)
        grad -= self.target
        grad *= 1.0 / self.prediction.shape[0]
        return grad

    def predictions(self, output: np.ndarray) -> np.ndarray:
        """The probability of class 1, ``sigmoid(logit)``, shape (n, 1)."""
        return _sigmoid(output)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        p = _sigmoid(output)
        return np.concatenate([1 - p, p], axis=1)


class MeanAbsoluteError(Loss):
    """``sum(|p - y|) / batch``: summed over outputs, averaged over the batch (the same
    reduction as :class:`MeanSquaredError`). The gradient ``sign(p - y) / batch`` is 0
    where ``p == y``."""

    name = "mae"

    def _output(self) -> float:
        diff = self.prediction - self.target
        return float(np.sum(np.abs(diff), dtype=np.float64)) / self.prediction.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = np.sign(self.prediction - self.target)
        grad *= 1.0 / self.prediction.shape[0]
        return grad


class Huber(Loss):
    """Huber loss: ``0.5 d^2`` where ``|d| <= delta``, ``delta * (|d| - 0.5 delta)``
    beyond, for ``d = p - y``; summed over outputs and averaged over the batch. Quadratic
    near the target, linear (robust to outliers) far from it; the gradient is
    ``clip(d, -delta, delta) / batch``. Equals PyTorch's ``HuberLoss(delta)`` with
    ``reduction="sum"`` divided by the batch size.
    """

    name = "huber"

    @checked
    def __init__(self, delta: Annotated[PositiveFloat, Doc(
            "where the loss turns from quadratic to linear")] = 1.0):
        super().__init__()
        self.delta = delta

    def _output(self) -> float:
        d = np.abs(self.prediction - self.target)
        delta = self.delta
        quadratic = np.minimum(d, delta)  # the part of |d| inside the quadratic zone
        linear = d - quadratic  # the part beyond it
        total = 0.5 * np.sum(quadratic * quadratic, dtype=np.float64) \
            + delta * np.sum(linear, dtype=np.float64)
        return float(total) / self.prediction.shape[0]

    def _input_grad(self) -> np.ndarray:
        grad = self.prediction - self.target
        delta = grad.dtype.type(self.delta)
        np.clip(grad, -delta, delta, out=grad)
        grad *= 1.0 / self.prediction.shape[0]
        return grad


LOSSES: dict[str, type[Loss]] = Registry(
    {cls.name: cls for cls in (MeanSquaredError, SoftmaxCrossEntropy, BinaryCrossEntropy,
                               MeanAbsoluteError, Huber)},
    aliases={"mean_squared_error": "mse"})  # the name experiment files once used

#: how a network's ``loss`` option is declared
LossSpec = Annotated[Loss | str, Named(LOSSES, "loss", spec=True),
                     Doc("loss name, or {name: ..., <options>}")]


def get_loss(spec: str | dict | Loss, **kwargs) -> Loss:
    """A loss from its config name (keyword options go to its constructor), a mapping
    ``{name: ..., <options>}``, or an instance, passed through."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        spec = dict(check_value(spec, LossSpec, "loss"))
        return build(LOSSES, spec.pop("name"), "loss", **spec, **kwargs)
    return build(LOSSES, spec, "loss", **kwargs)
