"""ONNX export, checked by the real onnxruntime: for every kind of run the exported model
gives on the raw test split what scratchnet's network gives on the scaled one."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import digits_config, run_cli, run_main
import scratchnet as sn
from scratchnet import (ACTIVATIONS, ConfigError, Dense, Loss, NeuralNetwork, Operation,
                        ShapeError, Tanh)
from scratchnet.config import validate
from scratchnet.data import SCALERS, Scaler, TextOptions, load_dataset, load_text
from scratchnet.experiment import as_samples, load_data, load_run, train_experiment
from scratchnet.onnx_export import (INPUT, OPERATIONS, OPSET, OUTPUT, export_network, export_run,
                                    to_onnx)
from scratchnet.predict import Inputs, predict_rows

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: options other than the defaults, so that they are seen to reach the graph
ACTIVATION_OPTIONS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.6}}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _train(folder: Path, **sections) -> Path:
    """A tiny run of :func:`conftest.digits_config` with ``sections`` merged in."""
    return train_experiment(validate(digits_config(**sections), "test"), out=folder).run_dir


def _onnx_outputs(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: X.astype(np.float32)})[0]


def _check_export(run_dir: Path, tmp_path: Path) -> onnx.ModelProto:
    """Export ``run_dir``; onnx.checker passes and onnxruntime on the raw test split (what
    ``scratchnet predict`` reads) equals ``net.predict`` on the scaled split."""
    path = export_run(run_dir, tmp_path / "model.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    cfg, net, info, _ = load_run(run_dir)
    raw = load_data(cfg).X_test
    scaled = Scaler.from_dict(info["scaler"]).transform(raw, dtype=net.dtype)
    expected = net.predict(as_samples(scaled, net.input_shape))  # images for a CNN
    got = _onnx_outputs(path, raw)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    return model


def _op_types(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_exports(name, tmp_path):
    spec = {"name": name, **ACTIVATION_OPTIONS.get(name, {})}
    run = _train(tmp_path, model={"layers": [{"neurons": 16, "activation": spec},
                                             {"neurons": 10, "activation": "linear"}]})
    model = _check_export(run, tmp_path)
    assert _op_types(model)[-1] == "Softmax"


@pytest.mark.parametrize("scale", sorted(SCALERS))
def test_every_scaler_is_the_first_nodes(scale, tmp_path):
    model = _check_export(_train(tmp_path, data={"scale": scale}), tmp_path)
    first = _op_types(model)[:2]
    assert first == (["MatMul", "Add"] if scale == "none" else ["Sub", "Div"])


@pytest.mark.parametrize("loss", ["mse", {"name": "huber", "delta": 20.0}, "mae"],
                         ids=["mse", "huber", "mae"])
def test_regression_runs_export_their_raw_output(loss, tmp_path):
    run = _train(tmp_path, data={"dataset": "diabetes"}, optimizer={"lr": 0.001},
                 model={"layers": [{"neurons": 8, "activation": "tanh"},
                                   {"neurons": 1, "activation": "linear"}], "loss": loss})
    model = _check_export(run, tmp_path)
    assert _op_types(model)[-1] == "Add"  # no softmax, no sigmoid


def test_scaled_targets_end_in_their_inverse(tmp_path):
    """``data.target_scale: standard``: the graph's last nodes put the output back in the
    data's units, ``z * std + mean``, so it gives what ``scratchnet predict`` prints."""
    run = _train(tmp_path, data={"dataset": "diabetes", "target_scale": "standard"},
                 model={"layers": [{"neurons": 8, "activation": "tanh"},
                                   {"neurons": 1, "activation": "linear"}], "loss": "mse"})
    path = export_run(run, tmp_path / "model.onnx")
    assert _op_types(onnx.load(path))[-2:] == ["Mul", "Add"]
    cfg, net, info, _ = load_run(run)
    raw = load_data(cfg).X_test
    predicted = predict_rows(net, info, Inputs(raw, [str(i) for i in range(len(raw))]))
    expected = np.array([[row["prediction"]] for row in predicted])
    assert 25 <= expected.mean() <= 346  # disease progression scores, not standardised ones
    np.testing.assert_allclose(_onnx_outputs(path, raw), expected, rtol=1e-5, atol=1e-3)


def test_mse_on_classes_exports_scores_not_probabilities(tmp_path):
    run = _train(tmp_path, data={"dataset": "iris"},
                 model={"layers": [{"neurons": 8, "activation": "tanh"},
                                   {"neurons": 3, "activation": "sigmoid"}], "loss": "mse"})
    assert _op_types(_check_export(run, tmp_path))[-1] == "Sigmoid"


def test_batch_norm_in_inference_form_with_dropouts_removed(tmp_path):
    run = _train(tmp_path, train={"epochs": 5},
                 model={"input_dropout": 0.2,
                        "layers": [{"neurons": 16, "activation": "relu", "batch_norm": True,
                                    "dropout": 0.3},
                                   {"neurons": 10, "activation": "linear", "batch_norm": True}]})
    _, net, _, _ = load_run(run)
    stats = net.layers[0].buffers()
    assert not np.allclose(stats["running_mean"], 0) and not np.allclose(stats["running_var"], 1)
    model = _check_export(run, tmp_path)
    assert _op_types(model) == ["Sub", "Div", "MatMul", "BatchNormalization", "Relu", "MatMul",
                                "BatchNormalization", "Softmax"]
    norm = model.graph.node[3]
    assert norm.input[1:] == ["layers.0.gamma", "layers.0.beta", "layers.0.running_mean",
                              "layers.0.running_var"]
    assert onnx.helper.get_attribute_value(norm.attribute[0]) == pytest.approx(1e-5)


def test_a_float64_run_exports_as_float32(tmp_path):
    run = _train(tmp_path, data={"dataset": "iris"}, train={"dtype": "float64"},
                 model={"layers": [{"neurons": 8, "activation": "elu"},
                                   {"neurons": 3, "activation": "linear"}]})
    model = _check_export(run, tmp_path)
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT}


def test_the_model_states_its_opset_names_and_classes(tmp_path):
    model = _check_export(_train(tmp_path), tmp_path)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    (inp,), (out,) = model.graph.input, model.graph.output
    dims = [(d.dim_param or d.dim_value) for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, dims, out.name) == (INPUT, ["batch", 64], OUTPUT)
    assert {i.name for i in model.graph.initializer} >= {"layers.0.W", "layers.0.B",
                                                        "layers.1.W", "layers.1.B"}
    props = {p.key: p.value for p in model.metadata_props}
    assert props["classes"] == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


def test_a_binary_cross_entropy_run_exports_its_sigmoid(tmp_path):
    run = _train(tmp_path, data={"dataset": "breast_cancer"}, optimizer={"lr": 0.01},
                 model={"layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 1}],
                        "loss": "binary_cross_entropy"})
    model = _check_export(run, tmp_path)
    assert _op_types(model)[-1] == "Sigmoid"
    cfg, net, info, _ = load_run(run)
    out = _onnx_outputs(tmp_path / "model.onnx", load_data(cfg).X_test)
    assert out.shape[1] == 1 and 0 < out.min() < out.max() < 1


# -- the command line and what is refused ------------------------------------------------
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("runs"))


def test_export_from_the_command_line(digits_run, tmp_path):
    rc, out, err = run_cli(["export", digits_run, "-o", "model.onnx"], cwd=tmp_path)
    assert (rc, out, err) == (0, "model.onnx\n", "")
    X = load_dataset("digits").X_test
    assert _onnx_outputs(tmp_path / "model.onnx", X).sum(axis=1) == pytest.approx(1, abs=1e-5)


class Square(Operation):
    def _output(self, inference):
        return self.input_ ** 2


class Doubled(Dense):
    def forward(self, x, inference=False):
        return 2 * super().forward(x, inference)


class Cube(Loss):
    name = "cube"


def _loaded(run_dir):
    _, net, info, _ = load_run(run_dir)
    return net, info


@pytest.mark.parametrize("change, named", [
    (lambda net: net.layers[1].operations.append(Square()),
     "layer 1 (Dense): operation Square cannot be exported to ONNX; exportable: WeightMultiply"),
    (lambda net: setattr(net, "layers", [Doubled(16, "tanh"), net.layers[1]]),
     "layer 0 (Doubled) has a forward pass of its own"),
    (lambda net: setattr(net, "loss", Cube()),
     "loss Cube cannot be exported to ONNX; exportable: SoftmaxCrossEntropy"),
], ids=["operation", "layer", "loss"])
def test_what_cannot_be_exported_is_refused_by_name_and_writes_nothing(digits_run, tmp_path,
                                                                       change, named):
    net, info = _loaded(digits_run)
    change(net)
    with pytest.raises(ConfigError) as exc:
        export_network(net, info, tmp_path / "x.onnx")
    assert str(exc.value).startswith(named) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unexportable_operation_exits_2_with_one_line(digits_run, tmp_path, monkeypatch,
                                                          capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(OPERATIONS, Tanh)  # as if tanh had no ONNX form
    rc, out, err = run_main(capsys, "export", digits_run, "-o", "x.onnx")
    assert (rc, out) == (2, "")
    assert err.startswith("error: layer 0 (Dense): operation Tanh cannot be exported to ONNX")
    assert err.count("\n") == 1 and not (tmp_path / "x.onnx").exists()


def test_without_onnx_the_error_is_the_install_line(digits_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails
    distribution = re.search(r'^\[project\]\s+name = "([^"]+)"', PYPROJECT.read_text(),
                             re.MULTILINE).group(1)
    rc, out, err = run_main(capsys, "export", digits_run, "-o", "x.onnx")
    assert (rc, out) == (2, "")
    assert err == f"error: ONNX export needs onnx: pip install '{distribution}[onnx]'\n"
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["."], "error: .: not a run folder (no config.yaml)"),
    (["missing"], "error: missing: not a run folder (no such folder)"),
])
def test_a_folder_that_is_no_run_is_a_clean_error(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(capsys, "export", *args, "-o", "x.onnx")
    assert (rc, err.strip()) == (2, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("output, message", [
    (".", ".: is a folder, expected an .onnx file to write"),
    ("nowhere/x.onnx", "nowhere/x.onnx: no folder nowhere to write it in"),
])
def test_an_output_that_cannot_be_written_is_refused(digits_run, output, message, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        export_run(digits_run, output)


def test_the_network_must_be_built_and_fit_the_scaler(digits_run):
    net, info = _loaded(digits_run)
    with pytest.raises(ShapeError, match="the data description's scaler has 64 features, "
                                         "the network takes 5"):
        to_onnx(net.build(5), info)
    unbuilt = NeuralNetwork([Dense(3)], "mse")
    with pytest.raises(ShapeError, match="export needs a built network"):
        to_onnx(unbuilt, info)


def test_a_convolutional_run_exports_its_images(tmp_path):
    """Raw rows in, reshaped to images; convolutions (strided, "same" and numeric
    padding), both poolings, per-channel batch norm, dropout and flatten."""
    layers = [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2,
               "padding": "same", "activation": "relu", "batch_norm": True, "dropout": 0.1},
              {"type": "conv2d", "out_channels": 6, "kernel_size": [2, 2], "padding": [1, 0],
               "activation": "tanh"},
              {"type": "max_pool2d", "size": 2, "stride": 1},
              {"type": "avg_pool2d", "size": 2},
              {"type": "flatten"},
              {"neurons": 10}]
    run = _train(tmp_path, model={"layers": layers}, train={"epochs": 3})
    model = _check_export(run, tmp_path)
    ops = _op_types(model)
    assert ops[:3] == ["Sub", "Div", "Reshape"]
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool", "Flatten"} <= set(ops)


# -- sequence layers ---------------------------------------------------------------------------
def _randomised(net: NeuralNetwork, seed: int = 3) -> NeuralNetwork:
    """Every weight and bias drawn at random (a fresh layer's zero biases would hide a
    wrong gate order), and batch norm's running statistics too."""
    rng = np.random.default_rng(seed)
    for p in net.params():
        p.value[...] = rng.standard_normal(p.value.shape) * 0.5
    for layer in net.layers:
        for name, buffer in layer.buffers().items():
            buffer[...] = rng.uniform(0.5, 2.0, buffer.shape) if "var" in name \
                else rng.standard_normal(buffer.shape)
    return net


def _check_sequences(net: NeuralNetwork, X: np.ndarray, info: dict | None = None
                     ) -> onnx.ModelProto:
    """onnxruntime on ``X`` as rows (what a run's inputs are) gives ``net.predict(X)``."""
    n = int(np.prod(net.input_shape))
    model = to_onnx(net, info or {"scaler": Scaler("none").fit(np.zeros((1, n))).to_dict()})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], {INPUT: X.reshape(len(X), -1).astype(np.float32)})[0]
    expected = net.predict(X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", *net.output_shape]
    return model


@pytest.mark.parametrize("return_sequences", [True, False], ids=["every-step", "last-step"])
@pytest.mark.parametrize("name, operator", [("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")])
def test_each_recurrent_layer_is_onnxs_operator(name, operator, return_sequences):
    """Raw outputs (mse: no softmax to flatten a difference) of random weights."""
    layer = sn.RECURRENT_LAYERS[name](6, return_sequences=return_sequences, dropout=0.2)
    net = _randomised(NeuralNetwork([layer, Dense(3)], "mse", seed=0).build((5, 4)))
    X = np.random.default_rng(4).standard_normal((7, 5, 4))
    ops = _op_types(_check_sequences(net, X))
    assert ops.count(operator) == 1 and ops[0] == "Reshape"  # rows -> (batch, time, F)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_an_rnn_with_each_activation(name, tmp_path):
    spec = {"name": name, **ACTIVATION_OPTIONS.get(name, {})}
    net = _randomised(NeuralNetwork([sn.RNN(5, spec), Dense(2)], "mse", seed=0).build((4, 3)))
    X = np.random.default_rng(5).standard_normal((6, 4, 3))
    if name != "gelu":
        _check_sequences(net, X)
        return
    with pytest.raises(ConfigError, match="an RNN with activation GELU cannot be exported to "
                                          "ONNX; exportable: Tanh"):
        export_network(net, {"scaler": Scaler("none").fit(np.zeros((1, 12))).to_dict()},
                       tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_stacked_character_model_from_ids(tmp_path):
    """A text's windows of ids in: Embedding as Gather of the ids, three recurrent layers,
    per-step dense layers with batch norm, and the softmax at every step."""
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 5)
    data = load_text(TextOptions(path=str(tmp_path / "t.txt"), seq_len=9))
    V = data.vocabulary.size
    net = _randomised(NeuralNetwork(
        [sn.Embedding(V, 4), sn.LSTM(8), sn.GRU(6), sn.RNN(5, "relu"),
         Dense(7, "tanh", batch_norm=True), Dense(V)], "softmax_cross_entropy",
        seed=0).build((9,)))
    model = _check_sequences(net, data.X_val, data.info())
    assert json.loads({p.key: p.value for p in model.metadata_props}["classes"]) == data.classes
    ops = _op_types(model)
    assert ops[:2] == ["Cast", "Gather"] and ops[-1] == "Softmax"
    assert [op for op in ops if op in ("LSTM", "GRU", "RNN")] == ["LSTM", "GRU", "RNN"]


def test_images_read_row_by_row_by_an_lstm():
    net = _randomised(NeuralNetwork([sn.LSTM(6, return_sequences=False), Dense(10)],
                                    "softmax_cross_entropy", seed=0).build((8, 8)))
    X = load_dataset("digits").X_test[:20].reshape(20, 8, 8) / 16
    _check_sequences(net, X)
