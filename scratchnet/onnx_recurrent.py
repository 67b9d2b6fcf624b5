"""The sequence layers in an ONNX graph (part of :mod:`scratchnet.onnx_export`).

* :class:`~scratchnet.nn.RNN`, :class:`~scratchnet.nn.LSTM` and :class:`~scratchnet.nn.GRU`
  become ONNX's ``RNN``, ``LSTM`` and ``GRU`` operators. Those read time-major input
  (time, batch, F) (their ``layout=1`` attribute, for batch-major input, is not one
  onnxruntime runs), so a ``Transpose`` comes before each, and after it one more with a
  ``Squeeze`` of the directions axis for the output at every step (``Y``, (time, 1,
  batch, H)), or a ``Squeeze`` of the last step's state (``Y_h``, (1, batch, H)) for
  ``return_sequences=False``.
* Weights: ONNX keeps ``W`` (1, G*H, F), ``R`` (1, G*H, H) and ``B`` (1, 2*G*H), the input
  side's biases then the recurrent side's, with the gates in its own order: LSTM ``i, o,
  f, c`` (ours, PyTorch's, ``i, f, g, o``), GRU ``z, r, h`` (ours ``r, z, n``). Our LSTM
  and RNN hold one bias, the sum of PyTorch's two: it goes on the input side, zeros on the
  recurrent side. The GRU's ``B_h`` is the recurrent side's, and ``linear_before_reset=1``
  is PyTorch's formula (the reset gate multiplies ``h W_hn + B_hn``).
* The RNN's activation is named in ONNX's ``activations`` attribute (with its
  ``activation_alpha``/``activation_beta`` where it has options); one ONNX has no name
  for (GELU) is refused by name.
* :class:`~scratchnet.nn.Embedding` is ``Gather`` of its table's rows, at the input's ids
  cast to integers (the graph's input is float32, as every exported graph's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError
from .nn import ELU, LeakyReLU, Linear, ReLU, Sigmoid, Softplus, Tanh
from .nn.embedding import EmbeddingOp
from .nn.recurrent_ops import GRUOp, LSTMOp, RecurrentOp, RNNOp

if TYPE_CHECKING:
    from .onnx_export import Graph

#: operation -> (ONNX operator, where each of ONNX's gates is among ours)
_OPERATORS = {RNNOp: ("RNN", [0]), LSTMOp: ("LSTM", [0, 3, 1, 2]), GRUOp: ("GRU", [1, 0, 2])}

#: activation class -> (its ONNX name for the RNN operator, its options as alpha, beta)
RNN_ACTIVATIONS = {
    Tanh: ("Tanh", None, None),
    Sigmoid: ("Sigmoid", None, None),
    ReLU: ("Relu", None, None),
    LeakyReLU: ("LeakyRelu", "negative_slope", None),
    ELU: ("Elu", "alpha", None),
    Softplus: ("Softplus", None, None),
    Linear: ("Affine", 1.0, 0.0),  # alpha * x + beta
}


def _onnx_gates(value: np.ndarray, order: list[int], hidden: int) -> np.ndarray:
    """``value`` (rows, G*H), its gate blocks of H columns in ONNX's ``order``, as (1,
    G*H, rows): ONNX's layout, one direction."""
    blocks = [value[:, g * hidden:(g + 1) * hidden] for g in order]
    return np.concatenate(blocks, axis=1).T[None]


def _rnn_activation(op: RNNOp) -> dict:
    """The RNN operator's activation attributes; ConfigError for one ONNX has no name for."""
    found = RNN_ACTIVATIONS.get(type(op.activation))
    if found is None:
        raise ConfigError(f"an RNN with activation {type(op.activation).__name__} cannot be "
                          f"exported to ONNX; exportable: "
                          f"{', '.join(cls.__name__ for cls in RNN_ACTIVATIONS)}")
    name, alpha, beta = found
    attributes = {"activations": [name]}
    if alpha is not None:
        value = getattr(op.activation, alpha) if isinstance(alpha, str) else alpha
        attributes["activation_alpha"] = [float(value)]
    if beta is not None:
        attributes["activation_beta"] = [float(beta)]
    return attributes


def _recurrent(g: Graph, op: RecurrentOp, prefix: str) -> None:
    """(batch, time, F) -> (batch, time, H), or (batch, H) for the last step only."""
    operator, order = _OPERATORS[type(op)]
    H, name = op.hidden, f"{prefix}.{operator.lower()}"
    attributes = {"hidden_size": H}
    if isinstance(op, RNNOp):
        attributes.update(_rnn_activation(op))
    recurrent_bias = np.zeros_like(op.B.value)
    if isinstance(op, GRUOp):
        attributes["linear_before_reset"] = 1
        recurrent_bias = op.B_h.value
    W = g.constant(f"{prefix}.W", _onnx_gates(op.W_x.value, order, H))
    R = g.constant(f"{prefix}.R", _onnx_gates(op.W_h.value, order, H))
    B = g.constant(f"{prefix}.B", np.concatenate(  # input side, then recurrent side
        [_onnx_gates(b, order, H)[..., 0] for b in (op.B.value, recurrent_bias)], axis=1))
    g.apply("Transpose", f"{prefix}.time_major", perm=[1, 0, 2])
    every_step, last_step = g.add(operator, name, [g.x, W, R, B], outputs=2, **attributes)
    if op.return_sequences:
        g.x = every_step  # (time, 1, batch, H)
        g.apply("Squeeze", f"{prefix}.squeeze", g.constant(f"{prefix}.axes", [1], np.int64))
        g.apply("Transpose", f"{prefix}.batch_major", perm=[1, 0, 2])
    else:
        g.x = last_step  # (1, batch, H)
        g.apply("Squeeze", f"{prefix}.squeeze", g.constant(f"{prefix}.axes", [0], np.int64))


def _embedding(g: Graph, op: EmbeddingOp, prefix: str) -> None:
    """ids (batch, time), as float32 -> (batch, time, dim)."""
    g.apply("Cast", f"{prefix}.ids", to=g.types.INT64)
    g.x = g.add("Gather", f"{prefix}.gather", [g.constant(op.param.name, op.param.value), g.x],
                axis=0)[0]


#: operation class -> its function, for :data:`scratchnet.onnx_export.OPERATIONS`
RECURRENT_OPERATIONS = {RNNOp: _recurrent, LSTMOp: _recurrent, GRUOp: _recurrent,
                        EmbeddingOp: _embedding}
