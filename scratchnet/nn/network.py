"""The network: layers in order, a loss, and the generators its randomness comes from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import checks
from ..errors import ConfigError, ShapeError
from .core import Dropout, Param, get_dtype
from .layers import Layer
from .losses import Loss, get_loss


class NeuralNetwork:
    """A feed-forward network.

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

    def __init__(self, layers: Sequence[Layer], loss: Loss | str, seed: int | None = None,
                 dtype: str = "float32", input_dropout: float = 0.0):
        if not layers:
            raise ConfigError("a network needs at least one layer")
        self.dtype = get_dtype(dtype)
        self.input_dropout = checks.rate(input_dropout, "input_dropout")
        #: the Dropout operation on the inputs (built with the network; None without it)
        self.input_op: Dropout | None = None
        self.layers = list(layers)
        self.loss = get_loss(loss)
        self.seed = seed
        self.n_inputs: int | None = None
        self._params: list[Param] = []
        self._seed_generators()

    def _seed_generators(self) -> None:
        # Two independent streams, so that adding dropout does not change initial weights.
        init_seq, dropout_seq = np.random.SeedSequence(self.seed).spawn(2)
        self.init_rng = np.random.default_rng(init_seq)
        self.dropout_rng = np.random.default_rng(dropout_seq)

    def reset_parameters(self, n_inputs: int | None = None) -> "NeuralNetwork":
        """Draw the initial weights again from the seed (the same ones, for a fixed seed)."""
        width = n_inputs if n_inputs is not None else self.n_inputs
        if width is None:
            raise ShapeError("reset_parameters needs the input width of an unbuilt network")
        self._seed_generators()
        return self.build(width)

    # -- building ------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.n_inputs is not None

    def build(self, n_inputs: int) -> "NeuralNetwork":
        """Create every layer's parameters for inputs of width ``n_inputs``."""
        width = int(n_inputs)
        self.n_inputs = width
        # Built here, not in __init__: reset_parameters makes a new dropout generator.
        self.input_op = Dropout(self.input_dropout, self.dropout_rng) if self.input_dropout else None
        for i, layer in enumerate(self.layers):
            layer.build(width, self.init_rng, self.dtype, self.dropout_rng)
            for p in layer.params():
                p.name = f"layers.{i}.{p.name.rsplit('.', 1)[-1]}"
            width = layer.neurons
        self.layers[0].set_needs_input_grad(False)
        self._params = [p for layer in self.layers for p in layer.params()]
        return self

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].neurons

    # -- passes --------------------------------------------------------------------
    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        if x.ndim != 2:
            raise ShapeError(f"network input must be 2-D (batch, features), got shape {x.shape}")
        if not self.built:
            self.build(x.shape[1])
        elif x.shape[1] != self.n_inputs:
            raise ShapeError(f"network expects {self.n_inputs} input features, got {x.shape[1]}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if self.input_op is not None:
            # Nothing reads the inputs' gradient, so backward never visits this operation.
            x = self.input_op.forward(x, inference)
        for layer in self.layers:
            x = layer.forward(x, inference)
        return x

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

    def predict(self, x: np.ndarray, batch_size: int = 2048, raw: bool = False) -> np.ndarray:
        """Inference in batches (no giant allocation per layer for big inputs).

        Returns what the loss says predictions mean (softmax probabilities for
        :class:`SoftmaxCrossEntropy`), or the last layer's raw output with ``raw=True``.
        """
        outs = [self.forward(x[i:i + batch_size], inference=True)
                for i in range(0, max(len(x), 1), batch_size)]
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
    def params(self) -> list[Param]:
        """The parameter objects (value and grad together), input side first."""
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
            if first is None:
                raise ShapeError("state has no 'layers.0.W' to infer the input width from")
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

    @property
    def n_params(self) -> int:
        return sum(p.value.size for p in self.params())

    def summary(self) -> list[dict]:
        """One row per layer: description, input and output width, parameter count."""
        rows = []
        width = self.n_inputs
        for i, layer in enumerate(self.layers):
            rows.append({"layer": i, "type": layer.describe(), "inputs": width,
                         "outputs": layer.neurons,
                         "params": layer.n_params if layer.built else None})
            width = layer.neurons
        return rows
