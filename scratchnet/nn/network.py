"""The network: layers in order, a loss, and the generators its randomness comes from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np

from ..errors import ConfigError, ShapeError
from ..options import Doc, Len, Named, Rate, Seed, checked
from .core import DTYPES, Dropout, FlatParams, get_dtype
from .layers import Dense, Layer, sample_shape
from .losses import LossSpec, get_loss

#: the most layers a network may have: plain stacks (no residual connections, which
#: scratchnet does not have) stop training well long before, and checking and building
#: a network costs time per layer
MAX_LAYERS = 1000


def _width(shape: tuple[int, ...]):
    """A flat sample shape as its width (784), any other as the shape itself."""
    return shape[0] if len(shape) == 1 else shape


class NeuralNetwork:
    """A feed-forward network.

    Its input samples have a shape fixed when it is built (:meth:`build`, or the first
    forward pass): (features,) rows for dense layers, (channels, height, width) images for
    a network that starts with a convolution; a batch is (N, *sample_shape).

    Args:
        layers: the layers, input side first.
        loss: a :class:`~scratchnet.losses.Loss` (or its config name).
        seed: seeds every random draw the network makes (initial weights, dropout masks).
            The same seed gives bit-identical weights on the same machine.
        dtype: "float32" (default) or "float64"; parameters, gradients and activations all
            stay in it.
        input_dropout: drop rate in [0, 1) applied to the *inputs* while training (inverted
            dropout on the pixels, Hinton et al. 2012 used 0.2); drawn from the dropout
            generator, so checkpoints resume it exactly. Identity at inference.
    """

    @checked
    def __init__(self, layers: Annotated[Sequence[Layer], Len(1, MAX_LAYERS)], loss: LossSpec,
                 seed: Annotated[Seed | None, Doc(
                     "seeds the initial weights and the dropout masks")] = None,
                 dtype: Annotated[str | np.dtype | type, Named(DTYPES, "dtype"),
                                  Doc("float32 or float64")] = "float32",
                 input_dropout: Annotated[Rate, Doc(
                     "drop rate on the input features while training (e.g. 0.2 on MNIST "
                     "pixels)")] = 0.0):
        self.dtype = get_dtype(dtype)
        self.input_dropout = input_dropout
        #: the Dropout operation on the inputs (built with the network; None without it)
        self.input_op: Dropout | None = None
        self.layers = list(layers)
        self.loss = get_loss(loss)
        self.seed = seed
        #: the sample shape the network was built for (None before it is built), and the
        #: sample shape it outputs
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self._params = FlatParams()
        self._seed_generators()

    def _seed_generators(self) -> None:
        # Two independent streams, so that adding dropout does not change initial weights.
        init_seq, dropout_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.init_rng = np.random.default_rng(init_seq)
        self.dropout_rng = np.random.default_rng(dropout_seq)

    def reset_parameters(self, input_shape=None) -> "NeuralNetwork":
        """Draw the initial weights again from the seed (the same ones, for a fixed seed)."""
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise ShapeError("reset_parameters needs the input shape of an unbuilt network")
        self._seed_generators()
        return self.build(shape)

    # -- shapes, without building ------------------------------------------------------
    def shapes(self, input_shape) -> list[dict]:
        """What every layer makes of samples of ``input_shape``, without building anything
        or allocating a single weight: one row per layer with ``layer`` (its index),
        ``type`` (its description), ``input_shape``, ``output_shape`` (sample shapes, the
        batch left out), ``params`` (its parameter count) and ``activation_bytes`` (an
        estimate of the bytes per sample a training pass keeps for the backward pass; see
        :meth:`Layer.activation_size`).

        A shape that cannot work is a ShapeError naming the layer:
        ``layer 4 (Dense(10, linear)): a dense layer takes flat samples ...``.
        """
        shape = sample_shape(input_shape)
        rows = []
        for i, layer in enumerate(self.layers):
            try:
                row = {"layer": i, "type": layer.describe(), "input_shape": shape,
                       "output_shape": layer.output_shape(shape),
                       "params": layer.param_count(shape),
                       "activation_bytes": layer.activation_size(shape) * self.dtype.itemsize}
            except ShapeError as e:
                raise ShapeError(f"layer {i} ({layer.describe()}): {e}") from None
            rows.append(row)
            shape = row["output_shape"]
        return rows

    # -- building ------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    @property
    def n_inputs(self) -> int | None:
        """Numbers per input sample (784 for (784,) rows and for (1, 28, 28) images)."""
        return None if self.input_shape is None else math.prod(self.input_shape)

    def build(self, input_shape) -> "NeuralNetwork":
        """Create every layer's parameters for samples of ``input_shape``: an int (the
        width of flat rows, ``build(784)``) or a tuple (``build((1, 28, 28))``). Every
        ShapeError of :meth:`shapes` comes before anything is allocated."""
        rows = self.shapes(input_shape)
        # Built here, not in __init__: reset_parameters makes a new dropout generator.
        self.input_op = Dropout(self.input_dropout, self.dropout_rng) if self.input_dropout else None
        for layer, row in zip(self.layers, rows):
            layer.build(row["input_shape"], self.init_rng, self.dtype, self.dropout_rng)
            for p in layer.params():
                p.name = f"layers.{row['layer']}.{p.name.rsplit('.', 1)[-1]}"
        self.layers[0].set_needs_input_grad(False)
        self._params = FlatParams(p for layer in self.layers for p in layer.params())
        self.input_shape, self.output_shape = rows[0]["input_shape"], rows[-1]["output_shape"]
        return self

    @property
    def n_outputs(self) -> int:
        if self.built:
            return math.prod(self.output_shape)
        if isinstance(self.layers[-1], Dense):
            return self.layers[-1].neurons
        raise ShapeError("the output width of a network that does not end in a dense layer "
                         "is known once it is built")

    # -- passes --------------------------------------------------------------------
    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """(N, *input_shape) -> the last layer's output (N, *output_shape)."""
        if not self.built:
            if x.ndim < 2:
                raise ShapeError(f"network input must be (batch, features) rows or (batch, "
                                 f"channels, height, width) images, got shape {x.shape}")
            self.build(x.shape[1:])
        elif x.shape[1:] != self.input_shape:
            raise ShapeError(self._wrong_input(x.shape))
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if self.input_op is not None:
            # Nothing reads the inputs' gradient, so backward never visits this operation.
            x = self.input_op.forward(x, inference)
        for layer in self.layers:
            x = layer.forward(x, inference)
        return x

    def _wrong_input(self, shape: tuple[int, ...]) -> str:
        if len(self.input_shape) > 1:
            return (f"network expects samples of shape {self.input_shape}, a batch of "
                    f"shape (N, {', '.join(map(str, self.input_shape))}); got {shape}")
        if len(shape) != 2:
            return f"network input must be 2-D (batch, features), got shape {shape}"
        return f"network expects {self.input_shape[0]} input features, got {shape[1]}"

    def backward(self, loss_grad: np.ndarray) -> None:
        grad = loss_grad
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def train_batch(self, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        """Forward, loss and backward on one batch; fills every parameter's ``grad``.
        Returns the batch loss. The optimizer step is the trainer's."""
        predictions = self.forward(x_batch, inference=False)
        if y_batch.dtype != self.dtype:  # else float64 targets turn the backward pass float64
            y_batch = y_batch.astype(self.dtype)
        loss = self.loss.forward(predictions, y_batch)
        self.backward(self.loss.backward())
        return loss

    #: the most bytes of activations one inference pass should hold: :meth:`predict` and
    #: :func:`~scratchnet.trainer.evaluate` cut their batches to fit (the columns of one
    #: convolution alone would take 640 MB for 2048 MNIST images; dense networks keep
    #: their 2048 rows)
    INFERENCE_BYTES = 64 * 2**20

    def inference_batch_size(self, batch_size: int, input_shape=None) -> int:
        """``batch_size``, or fewer rows where that many would hold more activations than
        :data:`INFERENCE_BYTES`, for samples of ``input_shape`` (default: the built
        network's; an unbuilt network without one keeps ``batch_size``)."""
        shape = self.input_shape if input_shape is None else input_shape
        if shape is None:
            return batch_size
        per_sample = sum(row["activation_bytes"] for row in self.shapes(shape))
        return max(1, min(batch_size, self.INFERENCE_BYTES // per_sample))

    def predict(self, x: np.ndarray, batch_size: int = 2048, raw: bool = False) -> np.ndarray:
        """Inference in batches (no giant allocation per layer for big inputs).

        Returns what the loss says predictions mean (softmax probabilities for
        :class:`SoftmaxCrossEntropy`), or the last layer's raw output with ``raw=True``.
        """
        step = self.inference_batch_size(batch_size)
        outs = [self.forward(x[i:i + step], inference=True)
                for i in range(0, max(len(x), 1), step)]
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        return out if raw else self.loss.predictions(out)

    def predict_proba(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Class probabilities, shape (n, classes), for a classification loss: the softmax
        for :class:`~scratchnet.losses.SoftmaxCrossEntropy`, the two columns
        ``[1 - p, p]`` for :class:`~scratchnet.losses.BinaryCrossEntropy`. Raises
        :class:`~scratchnet.errors.ConfigError` for other losses."""
        if getattr(self.loss, "task", None) != "classification":
            raise ConfigError(f"class probabilities need a classification loss "
                              f"(softmax_cross_entropy or binary_cross_entropy), got "
                              f"{self.loss.name or type(self.loss).__name__!r}")
        return self.loss.probabilities(self.predict(x, batch_size, raw=True))

    # -- parameters and state ------------------------------------------------------
    def params(self) -> FlatParams:
        """The parameter objects (value and grad together), input side first, laid end to
        end in two flat arrays (see :class:`~scratchnet.nn.core.FlatParams`)."""
        if not self.built:
            raise ShapeError("the network has no parameters until it is built (call build "
                             "or run a forward pass)")
        return self._params

    def arrays(self) -> dict[str, np.ndarray]:
        """Name -> the live array (no copies) of every parameter and layer buffer."""
        live = {p.name: p.value for p in self.params()}
        for i, layer in enumerate(self.layers):
            for key, buf in layer.buffers().items():
                live[f"layers.{i}.{key}"] = buf
        return live

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> a copy of its value (plus layer buffers such as running
        statistics)."""
        return {name: a.copy() for name, a in self.arrays().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters (building the network first if needed)."""
        if not self.built:
            first = state.get("layers.0.W")
            if first is None or np.ndim(first) != 2 or not isinstance(self.layers[0], Dense):
                # A convolution's weight fixes its channels, not the size of its images; an
                # embedding's, its vocabulary, not the length of its sequences.
                raise ShapeError(f"cannot infer the input shape of an unbuilt network that "
                                 f"starts with {self.layers[0].describe()} from its state: "
                                 f"build it first, net.build(input_shape)")
            self.build(first.shape[0])
        live = self.arrays()
        missing, unexpected = set(live) - set(state), set(state) - set(live)
        if missing or unexpected:
            raise ShapeError(f"state does not match the network: missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)}")
        for name, target in live.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ShapeError(f"{name}: expected shape {target.shape}, got {value.shape}")
            target[...] = value

    # -- carried state (stateful recurrent layers) ------------------------------------
    def _stateful(self) -> list[tuple[int, Layer]]:
        return [(i, layer) for i, layer in enumerate(self.layers)
                if getattr(layer, "stateful", False) and layer.built]

    def carried_state(self) -> dict[str, np.ndarray]:
        """The state each stateful layer carries into the next training batch, copies by
        ``layers.<i>.<name>`` (``h``, an LSTM's also ``c``; (batch, H) each); {} when none
        carries any (:meth:`reset_state`)."""
        return {f"layers.{i}.{k}": v for i, layer in self._stateful()
                for k, v in layer.state_dict().items()}

    def load_carried_state(self, state: dict[str, np.ndarray]) -> None:
        """Carry ``state`` (as :meth:`carried_state` gives it) into the next training batch;
        a stateful layer it holds nothing for starts from zeros."""
        for i, layer in self._stateful():
            prefix = f"layers.{i}."
            layer.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                   if k.startswith(prefix)})
        known = {f"layers.{i}." for i, _ in self._stateful()}
        stray = sorted(k for k in state if k[:k.rfind(".") + 1] not in known)
        if stray:
            raise ShapeError(f"carried state for layers that carry none: {stray}")

    def reset_state(self) -> None:
        """Forget every carried state: the next training batch starts from zeros."""
        for _, layer in self._stateful():
            layer.reset_state()

    @property
    def n_params(self) -> int:
        return sum(p.value.size for p in self.params())

    def summary(self) -> list[dict]:
        """One row per layer: description, input and output width (a sample shape for
        images), parameter count; widths a network not yet built cannot know are None
        (:meth:`shapes` tells them for a given input shape)."""
        if self.built:
            return [{"layer": row["layer"], "type": row["type"],
                     "inputs": _width(row["input_shape"]), "outputs": _width(row["output_shape"]),
                     "params": row["params"]} for row in self.shapes(self.input_shape)]
        rows, width = [], None
        for i, layer in enumerate(self.layers):
            outputs = layer.neurons if isinstance(layer, Dense) else None
            rows.append({"layer": i, "type": layer.describe(), "inputs": width,
                         "outputs": outputs, "params": None})
            width = outputs
        return rows
