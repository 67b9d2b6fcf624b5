"""Parameters and the Operation contract from *Deep Learning from Scratch*.

An :class:`Operation` caches what its backward pass needs during ``forward`` and, in
``backward``, returns the gradient with respect to its input. A :class:`ParamOperation`
also owns one :class:`Param` and fills that parameter's gradient. Every gradient is
checked against the shape of the array it belongs to, and a mismatch raises
:class:`~scratchnet.errors.ShapeError` (never a bare ``assert``).
"""

from __future__ import annotations

import numpy as np

from .errors import ShapeError


class Param:
    """A parameter and its gradient, kept together as one object.

    ``value`` and ``grad`` have the same shape and dtype; ``grad`` is allocated once and
    overwritten in place by each backward pass, so optimizers can hold on to it.
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value: np.ndarray, name: str = ""):
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __repr__(self) -> str:
        return f"Param({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


def check_same_shape(array: np.ndarray, reference: np.ndarray, what: str) -> None:
    if array.shape != reference.shape:
        raise ShapeError(f"{what}: expected shape {reference.shape}, got {array.shape}")


class Operation:
    """One step of a network: ``forward`` caches, ``backward`` returns the input gradient.

    Subclasses implement ``_output(inference)`` (reading ``self.input_``) and
    ``_input_grad(output_grad)``.
    """

    #: False for the first operation of a network, whose input gradient nobody reads;
    #: ``backward`` then returns ``None`` and skips the work (PyTorch does the same).
    needs_input_grad: bool = True

    def __init__(self) -> None:
        self.input_: np.ndarray | None = None
        self.output: np.ndarray | None = None

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        if self.output is None:
            raise ShapeError(f"{type(self).__name__}.backward called before forward")
        check_same_shape(output_grad, self.output, f"{type(self).__name__} output gradient")
        self._param_grad(output_grad)
        if not self.needs_input_grad:
            return None
        input_grad = self._input_grad(output_grad)
        check_same_shape(input_grad, self.input_, f"{type(self).__name__} input gradient")
        return input_grad

    def params(self) -> list[Param]:
        return []

    def _output(self, inference: bool) -> np.ndarray:
        raise NotImplementedError

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _param_grad(self, output_grad: np.ndarray) -> None:
        """Fill parameter gradients in place (operations with parameters only)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ParamOperation(Operation):
    """An operation with one parameter, whose gradient ``backward`` fills in place."""

    def __init__(self, param: Param):
        super().__init__()
        self.param = param

    def params(self) -> list[Param]:
        return [self.param]


class WeightMultiply(ParamOperation):
    """``x @ W`` for ``x`` of shape (batch, fan_in) and ``W`` of shape (fan_in, fan_out)."""

    def __init__(self, W: Param | np.ndarray):
        super().__init__(W if isinstance(W, Param) else Param(W, "W"))

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        W = self.param.value
        if input_.ndim != 2 or input_.shape[1] != W.shape[0]:
            raise ShapeError(
                f"WeightMultiply expects input of shape (batch, {W.shape[0]}), got {input_.shape}"
            )
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        return np.matmul(self.input_, self.param.value)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return np.matmul(output_grad, self.param.value.T)

    def _param_grad(self, output_grad: np.ndarray) -> None:
        np.matmul(self.input_.T, output_grad, out=self.param.grad)


class BiasAdd(ParamOperation):
    """``x + b`` for ``b`` of shape (1, n), broadcast over the batch."""

    def __init__(self, B: Param | np.ndarray):
        param = B if isinstance(B, Param) else Param(B, "B")
        if param.value.ndim != 2 or param.value.shape[0] != 1:
            raise ShapeError(f"BiasAdd expects a bias of shape (1, n), got {param.value.shape}")
        super().__init__(param)

    def _output(self, inference: bool) -> np.ndarray:
        return np.add(self.input_, self.param.value)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad

    def _param_grad(self, output_grad: np.ndarray) -> None:
        # The sum over the batch, not a product with an array of ones (the method skips
        # np.sum's dispatch, which costs as much as the sum itself at batch 60).
        output_grad.sum(axis=0, keepdims=True, out=self.param.grad)


class Dropout(Operation):
    """Inverted dropout: zero a fraction ``rate`` of the units while training and scale the
    survivors by ``1 / (1 - rate)``, so inference is the identity.

    ``rate`` is the *drop* rate, as in PyTorch and Keras (the notebook's keep probability
    0.8 is ``rate=0.2``). The random generator is handed in explicitly.
    """

    def __init__(self, rate: float, rng: np.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            from .errors import ConfigError

            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask: np.ndarray | None = None

    def _output(self, inference: bool) -> np.ndarray:
        if inference or self.rate == 0.0:
            self.mask = None
            return self.input_
        x = self.input_
        keep = 1.0 - self.rate
        self.mask = self.rng.random(x.shape, dtype=x.dtype) < keep
        scaled = self.mask.astype(x.dtype)
        scaled *= x.dtype.type(1.0 / keep)
        self.mask = scaled
        return x * scaled

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return output_grad
        return output_grad * self.mask

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate})"


class BatchNorm(Operation):
    """Batch normalisation (Ioffe & Szegedy 2015) of (batch, n) inputs, feature by feature.

    Training: ``xhat = (x - mean) / sqrt(var + eps)`` with the batch's mean and biased
    variance, output ``gamma * xhat + beta``; the running averages are updated in place with
    PyTorch's convention, ``running = (1 - momentum) * running + momentum * batch`` with
    ``momentum=0.1`` (the weight of the *new* batch; Keras's 0.99 is the weight of the old
    average), the running variance from the unbiased batch variance, as PyTorch does.
    Inference: the running statistics instead of the batch's.

    ``gamma`` (ones) and ``beta`` (zeros) are :class:`Param` of shape (1, n) named
    "gamma" and "beta"; ``running_mean`` (zeros) and ``running_var`` (ones) are plain
    arrays of shape (1, n), live buffers that checkpoints save. Training needs at least two
    rows per batch (a single row has no variance), as in PyTorch.
    """

    def __init__(self, neurons: int, dtype="float32", momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        from .errors import ConfigError

        if isinstance(neurons, bool) or not isinstance(neurons, (int, np.integer)) or neurons < 1:
            raise ConfigError(f"BatchNorm needs a positive number of features, got {neurons!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0 < momentum <= 1:
            raise ConfigError(f"batch-norm momentum must be in (0, 1], got {momentum!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ConfigError(f"batch-norm eps must be > 0, got {eps!r}")
        dtype = np.dtype(dtype)
        shape = (1, int(neurons))
        self.gamma = Param(np.ones(shape, dtype), "gamma")
        self.beta = Param(np.zeros(shape, dtype), "beta")
        self.running_mean = np.zeros(shape, dtype)
        self.running_var = np.ones(shape, dtype)
        self.momentum = float(momentum)
        self.eps = float(eps)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._training = False

    def params(self) -> list[Param]:
        return [self.gamma, self.beta]

    def buffers(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        n = self.gamma.value.shape[1]
        if input_.ndim != 2 or input_.shape[1] != n:
            raise ShapeError(f"BatchNorm expects input of shape (batch, {n}), got {input_.shape}")
        if not inference and input_.shape[0] < 2:
            raise ShapeError(
                f"batch normalisation needs at least 2 rows per training batch, got "
                f"{input_.shape[0]} (pick a batch_size that does not leave a last batch of "
                f"one row)")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        self._training = not inference
        if inference:
            centred = x - self.running_mean
            var = self.running_var
        else:
            mean = x.mean(axis=0, keepdims=True)
            centred = x - mean
            var = np.mean(centred * centred, axis=0, keepdims=True)
            m, rows = self.momentum, x.shape[0]
            self.running_mean *= 1.0 - m
            self.running_mean += m * mean
            self.running_var *= 1.0 - m
            self.running_var += (m * rows / (rows - 1)) * var
        inv_std = var + x.dtype.type(self.eps)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1, inv_std, out=inv_std)
        centred *= inv_std  # now xhat
        self._xhat, self._inv_std = centred, inv_std
        out = centred * self.gamma.value
        out += self.beta.value
        return out

    def _param_grad(self, output_grad: np.ndarray) -> None:
        np.sum(output_grad * self._xhat, axis=0, keepdims=True, out=self.gamma.grad)
        output_grad.sum(axis=0, keepdims=True, out=self.beta.grad)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        # With the parameter gradients already summed (backward fills them first):
        # dx = gamma * inv_std * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)
        scale = self.gamma.value * self._inv_std
        if not self._training:
            return output_grad * scale
        rows = output_grad.shape[0]
        grad = self._xhat * (self.gamma.grad / rows)
        grad += self.beta.grad / rows
        np.subtract(output_grad, grad, out=grad)
        grad *= scale
        return grad

    def __repr__(self) -> str:
        return f"BatchNorm({self.gamma.value.shape[1]}, momentum={self.momentum}, eps={self.eps})"
