"""Recurrent layers: networks over sequences (the book's chapter 6).

A sample is a sequence, shape (time, features); a batch is (batch, time, features), as
PyTorch's ``batch_first=True`` and Keras. The operations and their maths are in
:mod:`~scratchnet.nn.recurrent_ops`; here are the layers that build them.

* :class:`RNN`, :class:`LSTM`, :class:`GRU`: (time, features) -> (time, H), or (H,) (the
  last step) with ``return_sequences=False``. Options they share: ``weight_init`` (the
  input weights ``W_x``; any initialiser of the registry, Glorot by default, with
  fan_in = F and fan_out = G*H) and ``dropout`` (inverted dropout on the layer's output
  while training, as :class:`~scratchnet.layers.Dense` drops its output; there is no
  dropout inside the recurrence). The recurrent weights ``W_h`` start orthogonal, one
  orthogonal (H, H) block per gate, so that early on a step neither grows nor shrinks the
  state it passes on (Saxe et al. 2014); biases start at zero, except the LSTM's forget
  gate at 1, so that it remembers by default (Jozefowicz et al. 2015, Keras's
  ``unit_forget_bias``).
* :class:`~scratchnet.nn.embedding.Embedding` (:mod:`~scratchnet.nn.embedding`, in the
  registry below beside them): integer ids (time,) -> (time, dim).

``stateful=True`` carries each row's final state into the same row of the next training
batch (see :mod:`~scratchnet.nn.recurrent_ops`); :meth:`reset_state` forgets it, and
:meth:`state_dict` / :meth:`load_state_dict` read and restore it for checkpoints.
:meth:`~_Recurrent.infer` is inference from a state the caller holds (generation).
"""

from __future__ import annotations

import copy
import math
from typing import Annotated

import numpy as np

from ..errors import ShapeError
from ..options import Doc, Named, Rate, Size, checked
from .activations import ACTIVATIONS, Activation, get_activation
from .core import Dropout, Operation, Param
from .embedding import Embedding
from .initializers import INITIALIZERS, get_initializer
from .layer_base import PlannedOperation
from .layers import LAYERS, Layer, sample_shape
from .recurrent_ops import GRUOp, LSTMOp, RecurrentOp, RNNOp

HiddenSize = Annotated[Size, Doc("units of the hidden state (H)")]


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random (n, n) orthogonal matrix, uniform over the orthogonal group: the Q of a
    Gaussian matrix's QR, its columns' signs fixed by R's diagonal (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


class _Recurrent(Layer):
    """What :class:`RNN`, :class:`LSTM` and :class:`GRU` share; a subclass names its
    operation and may change how its biases start and what the operation is given."""

    operation: type[RecurrentOp]
    #: it reads (time, features) sequences, so a network that starts with it is fed them
    takes_sequences = True
    width_option = "hidden_size"
    #: how many (1, G*H) biases the layer has
    biases = 1
    #: numbers per step and sample its forward pass keeps beyond the input, the gates and
    #: the states, and its backward pass beyond the gates' gradients, in units of H
    extra_per_step = 0
    extra_grad_per_step = 0
    #: the gates' names, in the order of their columns (the RNN's one activation has none)
    gate_names: tuple[str, ...] = ()
    #: how a step computes its state, for people (``scratchnet explain``)
    equations: tuple[str, ...] = ()

    @checked
    def __init__(self, hidden_size: HiddenSize,
                 return_sequences: Annotated[bool, Doc(
                     "output every step, (time, H); false: the last step's state, (H,)")] = True,
                 stateful: Annotated[bool, Doc(
                     "start each training batch from the final state of the last one, row by "
                     "row (truncated back-propagation through time)")] = False,
                 weight_init: Annotated[str, Named(INITIALIZERS, "weight_init"), Doc(
                     "how the input weights W_x start (W_h starts orthogonal)")] = "glorot",
                 dropout: Annotated[Rate, Doc(
                     "drop rate on the layer's output while training")] = 0.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.return_sequences = return_sequences
        self.stateful = stateful
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)
        self.dropout = dropout

    # -- shapes, without building ------------------------------------------------------
    def _sequence(self, input_shape) -> tuple[int, int]:
        shape = sample_shape(input_shape)
        if len(shape) != 2:
            raise ShapeError(f"{type(self).__name__} takes sequences, samples of shape (time, "
                             f"features) (a batch (batch, time, features)); got samples of "
                             f"shape {shape}")
        return shape

    def output_shape(self, input_shape) -> tuple[int, ...]:
        steps, _ = self._sequence(input_shape)
        H = self.hidden_size
        return (steps, H) if self.return_sequences else (H,)

    def param_count(self, input_shape) -> int:
        _, features = self._sequence(input_shape)
        gh = self.operation.gates * self.hidden_size
        return (features + self.hidden_size + self.biases) * gh

    def activation_size(self, input_shape) -> int:
        """Per step: the input, the gates and their gradients, each state, what the
        operation keeps besides (:attr:`extra_per_step`, :attr:`extra_grad_per_step`);
        plus the output."""
        return self._size(input_shape, training=True)

    def inference_size(self, input_shape) -> int:
        """As :meth:`activation_size`, without what only the backward pass makes."""
        return self._size(input_shape, training=False)

    def _size(self, input_shape, training: bool) -> int:
        steps, features = self._sequence(input_shape)
        gh, H = self.operation.gates * self.hidden_size, self.hidden_size
        kept = len(self.operation.states) + self.extra_per_step
        per_step = features + gh + H * kept
        if training:
            per_step += gh + H * self.extra_grad_per_step
        output = math.prod(self.output_shape(input_shape))
        return steps * per_step + output * (1 + (self.dropout > 0 and training))

    def chain(self, input_shape) -> list[PlannedOperation]:
        _, features = self._sequence(input_shape)
        H, gh, out = self.hidden_size, self.operation.gates * self.hidden_size, \
            self.output_shape(input_shape)
        params = {"W_x": (features, gh), "W_h": (H, gh),
                  **{name: (1, gh) for name in ("B", "B_h")[:self.biases]}}
        chain = [PlannedOperation(self.operation, out, params, self.equations)]
        return chain + [PlannedOperation(Dropout, out)] if self.dropout > 0 else chain

    # -- building --------------------------------------------------------------------
    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        _, features = input_shape
        H, G = self.hidden_size, self.operation.gates
        W_x = self.initializer((features, G * H), rng, dtype)
        W_h = np.concatenate([orthogonal(H, rng) for _ in range(G)], axis=1).astype(dtype)
        B = np.zeros((1, G * H), dtype)
        ops: list[Operation] = [self._operation([Param(W_x, "W_x"), Param(W_h, "W_h"),
                                                 Param(self._start_bias(B), "B")])]
        if self.dropout > 0:
            ops.append(Dropout(self.dropout, dropout_rng))
        return ops

    def _start_bias(self, B: np.ndarray) -> np.ndarray:
        return B

    def _operation(self, params: list[Param]) -> RecurrentOp:
        return self.operation(*params, return_sequences=self.return_sequences,
                              stateful=self.stateful)

    # -- carried state ---------------------------------------------------------------
    @property
    def _op(self) -> RecurrentOp | None:
        return self.operations[0] if self.operations else None

    def last_pass(self) -> dict[str, np.ndarray]:
        """The arrays of the operation's last forward pass, time-major, for health
        (nn/health.py): ``"h"`` (T+1, B, H) the states, step 0 the initial one; ``"z"``
        (T, B, G*H) the gates' values (LSTM, GRU) or the pre-activations (RNN). Views,
        overwritten by the next pass."""
        return self._op._arrays

    def reset_state(self) -> None:
        """Forget the carried state: the next training batch starts from zeros."""
        if self._op is not None:
            self._op.carried = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """The carried state, a copy: ``{"h": (batch, H)}`` (the LSTM's also ``"c"``), or
        ``{}`` when there is none (not stateful, reset, or not yet trained)."""
        carried = self._op.carried if self._op is not None else None
        return {} if carried is None else {k: v.copy() for k, v in carried.items()}

    def infer(self, x: np.ndarray, state: dict[str, np.ndarray] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Inference over ``x`` (batch, time, F) from ``state`` (``{"h": (batch, H)}``, the
        LSTM's also ``"c"``; None: zeros): ``(output, final state)``. For generation: feed
        a prefix, then one step at a time, handing each call the state the last gave.
        The carried training state (:meth:`state_dict`) is left alone."""
        if self._op is None:
            raise ShapeError(f"{self.describe()} used before it was built")
        if state is not None:
            state = self._state_arrays(state)
            if state["h"].shape[0] != len(x):
                raise ShapeError(f"{self.describe()}: a state of {state['h'].shape[0]} rows "
                                 f"for a batch of {len(x)}")
        return self._op.infer(x, state)  # (its dropout is the identity at inference)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Carry ``state`` (as :meth:`state_dict` gives it; ``{}`` resets) into the next
        training batch. The layer must be built and stateful."""
        op = self._op
        if op is None or not self.stateful:
            raise ShapeError(f"{self.describe()}: only a built, stateful layer carries state")
        op.carried = self._state_arrays(state) if state else None

    def _state_arrays(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``state`` as the operation's arrays (copies in its dtype), once checked."""
        op = self._op
        if set(state) != set(op.states):
            raise ShapeError(f"{self.describe()}: a carried state has the arrays "
                             f"{sorted(op.states)}, got {sorted(state)}")
        arrays = {k: np.array(state[k], dtype=op.W_h.value.dtype) for k in op.states}
        shapes = {k: a.shape for k, a in arrays.items()}
        h = shapes["h"]
        if len(h) != 2 or h[1] != self.hidden_size or any(s != h for s in shapes.values()):
            raise ShapeError(f"{self.describe()}: carried state arrays are (batch, "
                             f"{self.hidden_size}), all alike; got shapes {shapes}")
        return arrays

    def describe(self) -> str:
        """``LSTM(256)``, ``RNN(64, relu, last step, stateful, dropout=0.2)``."""
        parts = [str(self.hidden_size), *self._described()]
        parts += [] if self.return_sequences else ["last step"]
        parts += ["stateful"] if self.stateful else []
        parts += [f"dropout={self.dropout:g}"] if self.dropout else []
        return f"{type(self).__name__}({', '.join(parts)})"

    def _described(self) -> list[str]:
        return []

    def _settings(self) -> dict:
        return {"hidden_size": self.hidden_size, "return_sequences": self.return_sequences,
                "stateful": self.stateful, "weight_init": self.weight_init,
                "dropout": self.dropout}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({settings})"


class RNN(_Recurrent):
    """The plain recurrent layer, ``h_t = activation(x_t W_x + h_{t-1} W_h + B)``; PyTorch's
    ``nn.RNN`` with ``B = b_ih + b_hh``."""

    operation = RNNOp

    @checked
    def __init__(self, hidden_size: HiddenSize,
                 activation: Annotated[Activation | str | dict, Named(
                     ACTIVATIONS, "activation", spec=True), Doc(
                     "the activation of the state (tanh, as the book and PyTorch)")] = "tanh",
                 **options):
        super().__init__(hidden_size, **options)
        if isinstance(activation, dict):  # {name: leaky_relu, negative_slope: 0.1}
            spec = dict(activation)
            activation = get_activation(spec.pop("name"), **spec)
        self.activation = get_activation(activation)

    def _operation(self, params: list[Param]) -> RecurrentOp:
        return RNNOp(*params, copy.copy(self.activation), return_sequences=self.return_sequences,
                     stateful=self.stateful)

    def _described(self) -> list[str]:
        return [self.activation.name or type(self.activation).__name__]

    @property
    def equations(self) -> tuple[str, ...]:
        return (f"h_t = {self._described()[0]}(x_t W_x + h_{{t-1}} W_h + B)",)

    def _settings(self) -> dict:
        return {**super()._settings(), "activation": self.activation}


class LSTM(_Recurrent):
    """The long short-term memory layer, gates ``i, f, g, o`` in PyTorch's order; its
    ``B`` is PyTorch's ``b_ih + b_hh``. The forget gate's bias starts at 1."""

    operation = LSTMOp
    extra_per_step = 1  # tanh(c)
    gate_names = ("i", "f", "g", "o")
    equations = ("i f g o = x_t W_x + h_{t-1} W_h + B (4 blocks of H)",
                 "i, f, o = sigmoid(.); g = tanh(.)",
                 "c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t)")

    def _start_bias(self, B: np.ndarray) -> np.ndarray:
        B[:, self.hidden_size:2 * self.hidden_size] = 1
        return B


class GRU(_Recurrent):
    """The gated recurrent unit, gates ``r, z, n``, in PyTorch's form: ``B`` is its
    ``b_ih`` and ``B_h`` (1, 3H) its ``b_hh`` (the reset gate multiplies ``h W_hn + B_hn``,
    so the two biases of n are not one)."""

    operation = GRUOp
    biases = 2
    gate_names = ("r", "z", "n")
    extra_per_step = 1  # h W_hn + B_hn
    extra_grad_per_step = 3  # the recurrent side's gate gradients
    equations = ("r z n = x_t W_x + B, and h_{t-1} W_h + B_h (3 blocks of H)",
                 "r, z = sigmoid(x side + h side); n = tanh(x side + r * h side)",
                 "h_t = (1 - z) * n + z * h_{t-1}")

    def _operation(self, params: list[Param]) -> RecurrentOp:
        B_h = Param(np.zeros_like(params[2].value), "B_h")
        return GRUOp(*params, B_h, return_sequences=self.return_sequences,
                     stateful=self.stateful)


#: the sequence layers by config name (the recurrent gradient tests run over these); the
#: registry of every layer type, :data:`~scratchnet.nn.layers.LAYERS`, holds them too
RECURRENT_LAYERS: dict[str, type[Layer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU,
                                            "embedding": Embedding}
LAYERS.update(RECURRENT_LAYERS)
