"""Parameters and the Operation contract from *Deep Learning from Scratch*.

An :class:`Operation` caches what its backward pass needs during ``forward`` and, in
``backward``, returns the gradient with respect to its input. A :class:`ParamOperation`
also owns one :class:`Param` and fills that parameter's gradient. Every gradient is
checked against the shape of the array it belongs to, and a mismatch raises
:class:`~scratchnet.errors.ShapeError` (never a bare ``assert``).
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import checks
from ..errors import ConfigError, ShapeError
from ..registry import lookup

#: the floating-point types parameters, gradients and activations can be kept in
DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def get_dtype(spec) -> np.dtype:
    """``"float32"``, ``np.float64``, ... as one of :data:`DTYPES` (ConfigError otherwise)."""
    try:
        name = np.dtype(spec).name
    except TypeError:
        name = spec
    return lookup(DTYPES, name, "dtype")


class Param:
    """A parameter and its gradient, kept together as one object.

    ``value`` and ``grad`` have the same shape and dtype; ``grad`` is allocated once (or
    handed in) and overwritten in place by each backward pass, so optimizers can hold on
    to it. Once the parameter lies in a :class:`FlatParams` (every parameter of a built
    network does), both are views into its flat arrays, and assigning to either copies
    into the view, so that the flat arrays stay the parameter's.
    """

    __slots__ = ("_value", "_grad", "name", "_flat")

    def __init__(self, value: np.ndarray, name: str = "", grad: np.ndarray | None = None):
        self._flat = False  # True once the arrays are views into a FlatParams
        self._value = value
        self._grad = np.zeros_like(value) if grad is None else grad
        self.name = name

    @property
    def value(self) -> np.ndarray:
        return self._value

    @value.setter
    def value(self, array: np.ndarray) -> None:
        self._value = self._assigned(self._value, array, "value")

    @property
    def grad(self) -> np.ndarray:
        return self._grad

    @grad.setter
    def grad(self, array: np.ndarray) -> None:
        self._grad = self._assigned(self._grad, array, "grad")

    def _assigned(self, old: np.ndarray, new: np.ndarray, what: str) -> np.ndarray:
        if not self._flat:
            return new
        new = np.asarray(new)
        if new.shape != old.shape:
            raise ShapeError(f"{self.name or 'parameter'} {what}: expected shape {old.shape}, "
                             f"got {new.shape}")
        old[...] = new
        return old

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def in_flat(self) -> bool:
        """Whether the arrays are views into a :class:`FlatParams`'s flat arrays."""
        return self._flat

    def __getstate__(self) -> tuple:
        # The arrays on their own: a copy or a pickle is laid end to end again by the
        # FlatParams that holds it (if any), never by this one's old flat arrays.
        return self._value, self._grad, self.name

    def __setstate__(self, state) -> None:
        if len(state) == 2:  # pickled before Param had __getstate__: (None, slot values)
            slots = state[1]
            state = slots["value"], slots["grad"], slots["name"]
        self._value, self._grad, self.name = state
        self._flat = False

    def __repr__(self) -> str:
        return f"Param({self.name!r}, shape={self.shape}, dtype={self._value.dtype})"


class FlatParams(tuple):
    """Parameters laid end to end: what a built network's ``params()`` returns.

    A tuple of :class:`Param` whose values lie in one flat array and whose gradients in
    another, ``flat.value`` and ``flat.grad`` (``flat`` is a Param over them): parameter
    ``i`` is ``flat.value[offsets[i]:offsets[i + 1]]`` in its own shape, and its ``value``
    and ``grad`` are those views. An element-wise optimizer then updates every parameter
    in one pass over each flat array instead of one short pass per parameter (on small
    batches the calls cost more than the arithmetic); the layers, which reach their
    arrays through their Params, see no difference.

    Made once, by :meth:`~scratchnet.nn.network.NeuralNetwork.build`, from parameters of
    one dtype that lie in no other FlatParams; their values and gradients are copied in.
    A pickle or a deep copy holds each parameter's arrays once, in its Param, and lays the
    copies end to end again when it is loaded.
    """

    flat: Param
    offsets: tuple[int, ...]

    def __new__(cls, params=()):
        params = tuple(params)
        dtypes = {p.value.dtype for p in params}
        if len(dtypes) > 1:
            raise ShapeError(f"parameters laid end to end share one dtype, got "
                             f"{sorted(d.name for d in dtypes)}")
        if len({id(p) for p in params}) < len(params):
            raise ConfigError("a parameter is listed twice")
        taken = [p.name for p in params if p._flat]
        if taken:
            raise ConfigError(f"parameter(s) {taken} already lie end to end with others "
                              f"(in a network's params())")
        self = super().__new__(cls, params)
        self.offsets = (0, *itertools.accumulate(p.value.size for p in params))
        values = np.empty(self.offsets[-1], dtypes.pop() if dtypes else np.float32)
        grads = np.empty_like(values)
        for p, (start, end) in zip(params, itertools.pairwise(self.offsets), strict=True):
            values[start:end] = p.value.ravel()
            grads[start:end] = p.grad.ravel()
            p._value = values[start:end].reshape(p.shape)
            p._grad = grads[start:end].reshape(p.shape)
            p._flat = True
        self.flat = Param(values, "flat", grads)
        self.flat._flat = True  # an assignment copies into these arrays, as for the others
        return self

    def __reduce__(self):
        return FlatParams, (tuple(self),)

    def __copy__(self) -> "FlatParams":
        return self  # like a tuple's: the same parameters


def check_same_shape(array: np.ndarray, reference: np.ndarray, what: str) -> None:
    if array.shape != reference.shape:
        raise ShapeError(f"{what}: expected shape {reference.shape}, got {array.shape}")


class Cached:
    """Something that keeps arrays of its last pass for the backward pass (``CACHES``
    names those attributes). A pickle or a copy leaves them behind, so it holds parameters
    and settings only: the arrays are working memory, often far larger than the weights
    (the last batch of a prediction over 100,000 rows), and the next pass makes them again."""

    CACHES: tuple[str, ...] = ()

    def __getstate__(self) -> dict:
        return {**self.__dict__, **{name: None for name in self.CACHES if name in self.__dict__}}


class Operation(Cached):
    """One step of a network: ``forward`` caches, ``backward`` returns the input gradient.

    Subclasses implement ``_output(inference)`` (reading ``self.input_``) and
    ``_input_grad(output_grad)``, and an operation with parameters ``_param_grad``; a
    subclass that caches more arrays adds their names to ``CACHES``.

    ``backward`` is the one caller of the two backward hooks, in this order:
    ``_param_grad(output_grad)`` first, then ``_input_grad(output_grad)`` (skipped when
    nobody reads the input gradient). ``_input_grad`` may read what ``_param_grad`` wrote,
    so that nothing is computed twice: batch normalisation's input gradient is made of its
    parameter gradients (the sums over the batch), a recurrent layer's of the step
    gradients its pass back through time made for the weight gradients.
    """

    CACHES = ("input_", "output")

    #: False for the first operation of a network, whose input gradient nobody reads;
    #: ``backward`` then returns ``None`` and skips the work (PyTorch does the same).
    needs_input_grad: bool = True
    #: the input and output of the last forward pass (None before the first)
    input_: np.ndarray | None = None
    output: np.ndarray | None = None

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
        # The sum over the batch, not a product with an array of ones; the method, not
        # np.sum, whose dispatch is a large share of so small a sum.
        output_grad.sum(axis=0, keepdims=True, out=self.param.grad)


class Dropout(Operation):
    """Inverted dropout: zero a fraction ``rate`` of the units while training and scale the
    survivors by ``1 / (1 - rate)``, so inference is the identity.

    ``rate`` is the *drop* rate, as in PyTorch and Keras (the notebook's keep probability
    0.8 is ``rate=0.2``). The random generator is handed in explicitly.
    """

    CACHES = Operation.CACHES + ("mask",)

    def __init__(self, rate: float, rng: np.random.Generator | None = None):
        super().__init__()
        self.rate = checks.rate(rate, "dropout")
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask: np.ndarray | None = None

    def _output(self, inference: bool) -> np.ndarray:
        if inference or self.rate == 0.0:
            self.mask = None
            return self.input_
        x = self.input_
        keep = 1.0 - self.rate
        # the kept units, scaled by 1 / keep: the mask the backward pass multiplies by
        self.mask = (self.rng.random(x.shape, dtype=x.dtype) < keep).astype(x.dtype)
        self.mask *= x.dtype.type(1.0 / keep)
        return x * self.mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return output_grad
        return output_grad * self.mask

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate})"
