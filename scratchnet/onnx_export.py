"""A trained network as an ONNX graph, its input scaling included.

The library behind ``scratchnet export``::

    from scratchnet.onnx_export import export_run
    export_run("runs/digits_quickstart-...", "model.onnx")

The graph (opset :data:`OPSET`) takes the raw features a run's ``scratchnet predict``
takes, float32 of shape (batch, n_features) named :data:`INPUT`, and gives what
``net.predict`` gives, named :data:`OUTPUT`: the run's fitted scaling ``(x - offset) /
scale`` first, then each layer's operations (dropout removed: it is the identity at
inference; batch norm with its running statistics; the recurrent layers as ONNX's own
operators, :mod:`scratchnet.onnx_recurrent`), then the loss's meaning of the last
layer's output (softmax, sigmoid, or nothing for a regression loss), and for a run
trained on scaled targets (``data.target_scale``) their inverse ``z * scale + offset``
last. All tensors are
float32, whatever dtype the run trained in.

Each operation and loss has one small function in :data:`OPERATIONS` or :data:`OUTPUTS`,
keyed by its class; anything without one is refused by name, before a file is written.
``onnx`` is an optional extra, imported only here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import __version__, runs
from .data import Scaler, saved_target_scaler
from .errors import ConfigError, ShapeError
from .experiment import load_run
from .constants import ONNX_OPSET
from .extras import require
from .nn import (ELU, GELU, BatchNorm, BiasAdd, BinaryCrossEntropy, Dropout, Huber, Layer,
                 LeakyReLU, Linear, MeanAbsoluteError, MeanSquaredError, NeuralNetwork, ReLU,
                 Sigmoid, SoftmaxCrossEntropy, Softplus, Tanh, WeightMultiply)
from .nn.conv import (AvgPool2DOp, ChannelBiasAdd, Conv2DOp, FlattenOp, MaxPool2DOp,
                      resolve_padding)
from .nn.normalization import BatchNorm2D
from .onnx_recurrent import RECURRENT_OPERATIONS

#: the ONNX operator set the graph uses (ONNX 1.12, 2022; onnxruntime reads it since 1.12)
OPSET = ONNX_OPSET
#: ONNX 1.12's IR version (a newer onnx package would stamp its own, which older runtimes
#: refuse to read)
IR_VERSION = 8
INPUT, OUTPUT = "input", "output"


class Graph:
    """The graph being built: nodes, initializers, and ``x``, the tensor the next
    operation reads. Each node's output tensor takes the node's (unique) name."""

    def __init__(self, onnx):
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper  # the module, handed in
        self.types = onnx.TensorProto
        self.nodes: list = []
        self.initializers: list = []
        self.x = INPUT
        #: the sample shape the next operation reads, (features,), (C, H, W) or (time, F)
        self.sample_shape: tuple = ()
        self._names: set[str] = set()

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def constant(self, name: str, value, dtype=np.float32) -> str:
        """An initializer (float32 unless said); returns its name."""
        name = self._unique(name)
        array = np.asarray(value, dtype=dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def add(self, op_type: str, name: str, inputs: list[str], outputs: int = 1,
            **attributes) -> list[str]:
        """One node reading ``inputs``; returns its outputs' names (the first is the
        node's, the others ``name:1``, ...)."""
        name = self._unique(name)
        names = [name] + [f"{name}:{k}" for k in range(1, outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, name=name,
                                                **attributes))
        return names

    def apply(self, op_type: str, name: str, *operands: str, **attributes) -> None:
        """``x = op_type(x, *operands)``: one node, whose output becomes ``x``."""
        self.x = self.add(op_type, name, [self.x, *operands], **attributes)[0]


# -- one function per operation: (graph, operation, name prefix) -----------------------
def _matmul(g: Graph, op: WeightMultiply, prefix: str) -> None:
    g.apply("MatMul", f"{prefix}.matmul", g.constant(op.param.name, op.param.value))


def _bias_add(g: Graph, op: BiasAdd, prefix: str) -> None:
    g.apply("Add", f"{prefix}.add", g.constant(op.param.name, op.param.value))


def _batch_norm(g: Graph, op: BatchNorm, prefix: str) -> None:
    # ONNX takes (C,) vectors for inputs (N, C, ...); scratchnet keeps them as (1, C).
    vectors = {op.gamma.name: op.gamma.value, op.beta.name: op.beta.value,
               f"{prefix}.running_mean": op.running_mean, f"{prefix}.running_var": op.running_var}
    inputs = [g.constant(name, value.reshape(-1)) for name, value in vectors.items()]
    sequence = len(g.sample_shape) == 2  # a dense layer's at every step: features to axis 1
    if sequence:
        g.apply("Transpose", f"{prefix}.features_first", perm=[0, 2, 1])
    g.apply("BatchNormalization", f"{prefix}.batch_norm", *inputs, epsilon=float(op.eps))
    if sequence:
        g.apply("Transpose", f"{prefix}.features_last", perm=[0, 2, 1])


def _conv(g: Graph, op: Conv2DOp, prefix: str) -> None:
    W = op.param.value
    (top, bottom), (left, right) = resolve_padding(op.padding, W.shape[2:], op.stride,
                                                   g.sample_shape[1:])
    g.apply("Conv", f"{prefix}.conv", g.constant(op.param.name, W),
            kernel_shape=list(W.shape[2:]), strides=list(op.stride),
            pads=[top, left, bottom, right])


def _channel_bias(g: Graph, op: ChannelBiasAdd, prefix: str) -> None:
    # (F,) broadcast over (N, F, H, W) as (F, 1, 1)
    g.apply("Add", f"{prefix}.add", g.constant(op.param.name, op.param.value.reshape(-1, 1, 1)))


def _pool(op_type: str):
    def export(g: Graph, op, prefix: str) -> None:
        g.apply(op_type, f"{prefix}.{op_type.lower()}", kernel_shape=list(op.size),
                strides=list(op.stride))
    return export


def _identity(g: Graph, op, prefix: str) -> None:
    """Dropout and the linear activation: nothing at inference."""


def _gelu(g: Graph, op: GELU, prefix: str) -> None:
    # 0.5 x (1 + tanh(c x (1 + a x^2))) in GELU._output's order, from its constants
    # (opset 17 has no Gelu operator; opset 20's would tie the file to newer runtimes)
    x, name = g.x, f"{prefix}.gelu"
    one = g.constant(f"{name}.one", 1.0)
    g.apply("Mul", name, x)
    g.apply("Mul", name, g.constant(f"{name}.a", GELU._A))
    g.apply("Add", name, one)
    g.apply("Mul", name, x)
    g.apply("Mul", name, g.constant(f"{name}.c", GELU._C))
    g.apply("Tanh", name)
    g.apply("Add", name, one)
    g.apply("Mul", name, x)
    g.apply("Mul", name, g.constant(f"{name}.half", 0.5))


def _elementwise(op_type: str, **attributes_of):
    """The function for an activation that is one ONNX operator; ``attributes_of`` maps an
    ONNX attribute to the activation's option (``alpha="negative_slope"``)."""
    def export(g: Graph, op, prefix: str) -> None:
        attributes = {key: float(getattr(op, option)) for key, option in attributes_of.items()}
        g.apply(op_type, f"{prefix}.{op_type.lower()}", **attributes)
    return export


#: operation class -> its function; the tests export every activation of ACTIVATIONS
OPERATIONS = {
    WeightMultiply: _matmul,
    BiasAdd: _bias_add,
    BatchNorm: _batch_norm,
    Dropout: _identity,
    Conv2DOp: _conv,
    ChannelBiasAdd: _channel_bias,
    BatchNorm2D: _batch_norm,
    MaxPool2DOp: _pool("MaxPool"),
    AvgPool2DOp: _pool("AveragePool"),
    FlattenOp: _elementwise("Flatten"),
    Linear: _identity,
    Sigmoid: _elementwise("Sigmoid"),
    Tanh: _elementwise("Tanh"),
    ReLU: _elementwise("Relu"),
    LeakyReLU: _elementwise("LeakyRelu", alpha="negative_slope"),
    ELU: _elementwise("Elu", alpha="alpha"),
    GELU: _gelu,
    Softplus: _elementwise("Softplus"),
    **RECURRENT_OPERATIONS,
}

#: loss class -> what ``net.predict`` makes of the last layer's output
OUTPUTS = {
    SoftmaxCrossEntropy: _elementwise("Softmax"),
    BinaryCrossEntropy: _elementwise("Sigmoid"),
    MeanSquaredError: _identity,
    MeanAbsoluteError: _identity,
    Huber: _identity,
}


def _refuse(thing: str, registry: dict) -> ConfigError:
    return ConfigError(f"{thing} cannot be exported to ONNX; exportable: "
                       f"{', '.join(cls.__name__ for cls in registry)}")


def _scaling(g: Graph, scaler: Scaler) -> None:
    if scaler.kind != "none":
        g.apply("Sub", "scaler.sub", g.constant("scaler.offset", scaler.offset))
        g.apply("Div", "scaler.div", g.constant("scaler.scale", scaler.scale))


def _target_scaling(g: Graph, target_scaler: Scaler | None) -> None:
    """A network trained on scaled regression values: its output back in their units."""
    if target_scaler is not None and target_scaler.kind != "none":
        g.apply("Mul", "target_scaler.mul", g.constant("target_scaler.scale", target_scaler.scale))
        g.apply("Add", "target_scaler.add",
                g.constant("target_scaler.offset", target_scaler.offset))


def _operations(net: NeuralNetwork):
    """``(name prefix, operation, sample shape of the layer's input)`` in the order the
    forward pass runs them."""
    if net.input_op is not None:
        yield "input_dropout", net.input_op, net.input_shape
    for i, layer in enumerate(net.layers):
        if type(layer).forward is not Layer.forward:
            raise ConfigError(f"layer {i} ({type(layer).__name__}) has a forward pass of its "
                              "own, which cannot be exported to ONNX; only layers that run "
                              "their operations in order can")
        for op in layer.operations:
            if type(op) not in OPERATIONS:
                raise _refuse(f"layer {i} ({type(layer).__name__}): operation "
                              f"{type(op).__name__}", OPERATIONS)
            yield f"layers.{i}", op, layer.input_shape


def to_onnx(net: NeuralNetwork, info: dict):
    """The ONNX model (an ``onnx.ModelProto``, checked by ``onnx.checker``) of a built
    network and its data description ``info`` (a run's ``data.json``: ``scaler``, and the
    ``task``, ``classes`` and ``feature_names`` stored as metadata).

    Input :data:`INPUT` (batch, n_features) raw features, float32 (a character model's
    ids among them, as floats); output :data:`OUTPUT` (batch, *output shape): class
    probabilities for softmax cross entropy (at every step of a sequence), the probability
    of class 1 for binary cross entropy, the raw output otherwise. A layer, operation or
    loss without an ONNX form raises ConfigError naming it.
    """
    if not net.built:
        raise ShapeError("export needs a built network (call build or load weights first)")
    scaler = Scaler.from_dict(info["scaler"])
    if scaler.n_features != net.n_inputs:
        raise ShapeError(f"the data description's scaler has {scaler.n_features} features, "
                         f"the network takes {net.n_inputs}")
    output = OUTPUTS.get(type(net.loss))
    if output is None:
        raise _refuse(f"loss {type(net.loss).__name__}", OUTPUTS)
    operations = list(_operations(net))  # refuses before anything is built
    onnx = require("onnx")

    g = Graph(onnx)
    _scaling(g, scaler)
    if len(net.input_shape) > 1:  # rows of raw features -> the images the network takes
        g.apply("Reshape", "images", g.constant("images.shape", [-1, *net.input_shape],
                                                np.int64))
    for prefix, op, shape in operations:
        g.sample_shape = shape
        OPERATIONS[type(op)](g, op, prefix)
    output(g, net.loss, "output")
    _target_scaling(g, saved_target_scaler(info))
    # Every layer multiplies by its weights, so there is a last node; nothing reads its tensor.
    g.nodes[-1].output[0] = OUTPUT

    helper, floats = onnx.helper, onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "scratchnet",
        [helper.make_tensor_value_info(INPUT, floats, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info(OUTPUT, floats, ["batch", *net.output_shape])],
        g.initializers)
    model = helper.make_model(graph, producer_name="scratchnet", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    helper.set_model_props(model, {key: json.dumps(info[key]) for key in
                                   ("task", "classes", "feature_names") if key in info})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_network(net: NeuralNetwork, info: dict, output: str | Path) -> Path:
    """Write :func:`to_onnx` of ``net`` to the file ``output`` (atomically); returns it."""
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"{output}: is a folder, expected an .onnx file to write")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: no folder {output.parent} to write it in")
    model = to_onnx(net, info)
    runs.atomic_write_bytes(output, model.SerializeToString())
    return output


def export_run(run_dir: str | Path, output: str | Path) -> Path:
    """A run folder's weights (``weights.safetensors``) and scaling as the ONNX file
    ``output``; returns its path."""
    _, net, info, _ = load_run(run_dir)
    return export_network(net, info, output)
