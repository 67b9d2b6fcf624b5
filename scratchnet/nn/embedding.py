"""The embedding: integer ids (time,) -> (time, dim), a row of its weight per id. Its input
is ids, so it is a network's first layer (it passes no gradient back). A network over a
text's characters starts with one (:mod:`~scratchnet.nn.recurrent` holds the layers that
follow, and the registry of the sequence layers)."""

from __future__ import annotations

from typing import Annotated

import numpy as np

from ..errors import ShapeError
from ..options import Doc, FromData, Named, Size, checked
from .core import Operation, Param, ParamOperation
from .initializers import INITIALIZERS, get_initializer
from .layer_base import PlannedOperation
from .layers import Layer, sample_shape
from .losses import integer_ids


class EmbeddingOp(ParamOperation):
    """ids (batch, time) -> ``W[ids]`` (batch, time, dim) for ``W`` (vocab_size, dim).

    The gradient of row v is the sum of the output gradients at the positions holding id
    v: the ids are sorted and the gradient rows summed per run of equal ids with
    ``np.add.reduceat`` (``np.add.at``, the obvious way, is several times slower at a
    character vocabulary: benchmarks/README.md). Ids have no gradient: the operation must
    be a network's first (whose input gradient nobody asks for), or ``backward`` raises.
    """

    CACHES = ParamOperation.CACHES + ("_ids",)

    def __init__(self, W: Param):
        super().__init__(W)
        self._ids: np.ndarray | None = None

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        if input_.ndim != 2:
            raise ShapeError(f"an Embedding expects ids of shape (batch, time), got "
                             f"{input_.shape}")
        vocab = self.param.value.shape[0]
        self._ids = integer_ids(input_, vocab, f"Embedding(vocab_size={vocab})")
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        return np.take(self.param.value, self._ids, axis=0)

    def _param_grad(self, output_grad: np.ndarray) -> None:
        ids = self._ids.ravel()
        rows = output_grad.reshape(len(ids), -1)
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
        grad = self.param.grad
        grad.fill(0)
        grad[ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise ShapeError("an Embedding takes integer ids and passes no gradient back: it "
                         "must be a network's first layer (alone: set_needs_input_grad(False))")


class Embedding(Layer):
    """A table of ``vocab_size`` learned vectors of length ``dim``: integer ids (time,) ->
    (time, dim), as ``torch.nn.Embedding``. Its weight ``W`` is (vocab_size, dim).

    Samples are sequences of ids (floats holding whole numbers are accepted, as a network
    casts its input to its dtype); an id outside 0..vocab_size-1 is a DataError."""

    #: it reads integer ids, so it can only be a network's first layer
    takes_ids = True
    width_option = "dim"

    @checked
    def __init__(self, vocab_size: Annotated[Size, Doc(
                     "how many ids there are (ids run from 0 to vocab_size - 1)"), FromData(
                     "vocabulary", "the text's vocabulary", implied=True)],
                 dim: Annotated[Size, Doc("the length of each id's vector")],
                 weight_init: Annotated[str, Named(INITIALIZERS, "weight_init"), Doc(
                     "how the vectors start (fan_in = vocab_size, fan_out = dim)")] = "glorot"):
        super().__init__()
        self.vocab_size, self.dim = vocab_size, dim
        self.weight_init = weight_init
        self.initializer = get_initializer(weight_init)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if len(shape) != 1:
            raise ShapeError(f"an Embedding takes sequences of ids, samples of shape (time,); "
                             f"got samples of shape {shape}")
        return shape + (self.dim,)

    def param_count(self, input_shape) -> int:
        self.output_shape(input_shape)
        return self.vocab_size * self.dim

    def chain(self, input_shape) -> list[PlannedOperation]:
        return [PlannedOperation(EmbeddingOp, self.output_shape(input_shape),
                                 {"W": (self.vocab_size, self.dim)})]

    def _make_operations(self, input_shape, rng, dtype, dropout_rng) -> list[Operation]:
        W = self.initializer((self.vocab_size, self.dim), rng, dtype)
        return [EmbeddingOp(Param(W, "W"))]

    def describe(self) -> str:
        return f"Embedding({self.vocab_size}, {self.dim})"

    def __repr__(self) -> str:
        return (f"Embedding(vocab_size={self.vocab_size}, dim={self.dim}, "
                f"weight_init={self.weight_init!r})")
