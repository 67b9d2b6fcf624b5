"""Gradient checks, float64 central differences, over every registry entry.

The parameter lists are read from the registries at collection time, so an activation,
loss, layer or initialiser added to ``scratchnet.ACTIVATIONS`` / ``LOSSES`` / ``LAYERS`` /
``INITIALIZERS`` is checked here without editing this file.
"""

from __future__ import annotations

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.nn.gradcheck import (TOLERANCE, check_loss, check_network, check_operation,
                                  numerical_grad, relative_error)
from scratchnet.options import options

ACTIVATION_NAMES = sorted(sn.ACTIVATIONS)
LOSS_NAMES = sorted(sn.LOSSES)
LAYER_NAMES = sorted(sn.LAYERS)
INIT_NAMES = sorted(sn.INITIALIZERS)


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Values with |x| in [low, high] and random signs: no kinks (ReLU at 0) in reach of
    the finite-difference step."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def build_default(cls, **required):
    """An instance of a registry class from its default arguments, filling in only the
    required ones this test knows how to supply (``neurons``, a convolution's
    ``out_channels`` and ``kernel_size``, a pool's ``size``), as its declaration says."""
    known = {"neurons": 3, "out_channels": 3, "kernel_size": 3, "size": 2, "hidden_size": 3,
             "vocab_size": 7, "dim": 3, **required}
    kwargs = {}
    for o in options(cls):
        if o.required:
            if o.name not in known:
                pytest.fail(f"{cls.__name__} needs argument {o.name!r} that has no default; "
                            f"teach build_default in {__file__} a sensible value for it")
            kwargs[o.name] = known[o.name]
    return cls(**kwargs)


def targets_for(loss, name: str, rng, n: int, k: int) -> np.ndarray:
    """Targets a loss accepts: one-hot rows for classification, a 0/1 column for a binary
    loss, real values otherwise."""
    if "binary" in name:
        return rng.integers(0, 2, size=(n, 1)).astype(np.float64)
    if getattr(loss, "task", None) == "classification" or "cross_entropy" in name:
        return np.eye(k)[rng.integers(0, k, size=n)]
    return rng.standard_normal((n, k))


# -- the checker itself can fail ----------------------------------------------------------
class _NotebookReLU(sn.ReLU):
    """The notebook's bug: masks on the clipped output being >= 0 (always true)."""

    def _input_grad(self, output_grad):
        return output_grad * (self.output >= 0)


def test_check_operation_catches_a_wrong_gradient():
    x = away_from_zero(np.random.default_rng(0), (5, 4))
    result = check_operation(_NotebookReLU(), x)
    assert not result["passed"]
    assert result["input"] > 0.1


def test_check_network_catches_a_wrong_gradient():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    net = sn.NeuralNetwork([sn.Dense(5, _NotebookReLU()), sn.Dense(3)], sn.SoftmaxCrossEntropy(),
                           seed=0, dtype="float64").build(4)
    rows = check_network(net, X, y)
    assert not rows[0]["passed"]  # the first layer's gradient goes through the broken ReLU
    assert rows[-1]["passed"]  # the last layer's does not


def test_numerical_grad_of_a_known_function():
    x = np.array([[0.5, -1.5], [2.0, 3.0]])
    grad = numerical_grad(lambda v: float(np.sum(v ** 3)), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    assert np.array_equal(x, [[0.5, -1.5], [2.0, 3.0]])  # put back exactly


def test_relative_error_definition():
    a = np.array([1.0, -2.0, 0.0])
    n = np.array([1.0, -2.5, 0.0])
    assert relative_error(a, n) == pytest.approx(0.5 / 4.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


# -- core operations ----------------------------------------------------------------------
def test_weight_multiply():
    rng = np.random.default_rng(1)
    op = sn.WeightMultiply(rng.standard_normal((4, 3)))  # not square: a transpose would show
    result = check_operation(op, rng.standard_normal((5, 4)))
    assert result["input"] < TOLERANCE and result["params"]["W"] < TOLERANCE, result


def test_bias_add():
    rng = np.random.default_rng(2)
    op = sn.BiasAdd(rng.standard_normal((1, 4)))
    result = check_operation(op, rng.standard_normal((5, 4)))
    assert result["input"] < TOLERANCE and result["params"]["B"] < TOLERANCE, result


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5])
def test_dropout_with_a_fixed_mask(rate):
    rng = np.random.default_rng(3)
    op = sn.Dropout(rate, np.random.default_rng(7))
    result = check_operation(op, rng.standard_normal((6, 5)))
    assert result["passed"], result
    if rate:  # the mask was really applied: some units dropped
        assert (op.forward(np.ones((6, 5))) == 0).any()


# -- registries ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation(name):
    rng = np.random.default_rng(4)
    act = build_default(sn.ACTIVATIONS[name])
    result = check_operation(act, away_from_zero(rng, (6, 5)))
    assert result["passed"], result
    assert result["input"] is not None


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss(name):
    rng = np.random.default_rng(5)
    loss = build_default(sn.LOSSES[name])
    target = targets_for(loss, name, rng, n=6, k=4)
    # In (0.05, 0.95): valid both as logits and as probabilities, away from 0 and 1.
    prediction = rng.uniform(0.05, 0.95, size=target.shape)
    assert check_loss(loss, prediction, target) < TOLERANCE


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_on_wide_logits(name):
    """Losses that take raw scores: checked also on large ones, where a softmax saturates."""
    rng = np.random.default_rng(6)
    loss = build_default(sn.LOSSES[name])
    target = targets_for(loss, name, rng, n=6, k=4)
    prediction = rng.normal(0.0, 4.0, size=target.shape)
    with np.errstate(all="ignore"):
        value = loss.forward(prediction, target)
    if not np.isfinite(value):
        pytest.skip(f"{name} is not defined for predictions outside (0, 1)")
    assert check_loss(loss, prediction, target) < TOLERANCE


def sample_shape_for(layer) -> tuple[int, ...]:
    """Small images (2 channels, 5 x 6: odd and not square) for a layer that takes images,
    sequences of 4 steps of 5 features for one that reads sequences, else flat rows of 5
    features (or, for one that reads ids, sequences of 5 ids)."""
    for shape in ((2, 5, 6), (4, 5), (5,)):
        try:
            layer.output_shape(shape)
            return shape
        except sn.ShapeError:
            continue
    pytest.fail(f"{layer!r} takes none of the sample shapes this test knows")


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_layer_with_default_arguments(name):
    layer = build_default(sn.LAYERS[name])
    shape = sample_shape_for(layer)
    layer.build(shape, np.random.default_rng(8), np.float64, np.random.default_rng(9))
    x = np.random.default_rng(10).standard_normal((7,) + shape)
    if layer.takes_ids:  # ids in 0..vocab_size-1; nothing is asked of their gradient
        x = np.random.default_rng(10).integers(0, layer.vocab_size, (7,) + shape) * 1.0
        layer.set_needs_input_grad(False)
    result = check_operation(layer, x)
    assert result["passed"], result
    assert len(result["params"]) == len(layer.params())  # every parameter was checked


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_dense_with_each_activation(activation, dropout):
    layer = sn.Dense(3, activation, dropout=dropout)
    layer.build(4, np.random.default_rng(11), np.float64, np.random.default_rng(12))
    x = np.random.default_rng(13).standard_normal((6, 4))
    result = check_operation(layer, x)
    assert result["passed"], result
    assert set(result["params"]) == {"W", "B"}


@pytest.mark.parametrize("init", INIT_NAMES)
def test_dense_with_each_initializer(init):
    """Gradients do not depend on where the weights started, but an initialiser must give
    weights (of the right shape and dtype) that a layer can train from."""
    layer = sn.Dense(3, "tanh", weight_init=init, bias_init="normal")
    layer.build(4, np.random.default_rng(14), np.float64)
    W = layer.params()[0].value
    assert W.shape == (4, 3) and W.dtype == np.float64 and np.isfinite(W).all()
    result = check_operation(layer, np.random.default_rng(15).standard_normal((6, 4)))
    assert result["passed"], result


# -- whole networks -----------------------------------------------------------------------
def test_network_tanh_linear_softmax_ce_with_dropout():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((8, 6))
    y = np.eye(4)[rng.integers(0, 4, size=8)]
    net = sn.NeuralNetwork([sn.Dense(7, sn.Tanh(), dropout=0.3), sn.Dense(4, sn.Linear())],
                           sn.SoftmaxCrossEntropy(), seed=3, dtype="float64").build(6)
    dropout_state = net.dropout_rng.bit_generator.state
    before = net.state_dict()
    rows = check_network(net, X, y)
    assert [r["param"] for r in rows] == ["layers.0.W", "layers.0.B", "layers.1.W", "layers.1.B"]
    assert [r["layer"] for r in rows] == [0, 0, 1, 1]
    assert all(r["passed"] for r in rows), rows
    assert max(r["max_rel_error"] for r in rows) < TOLERANCE
    # the check leaves the network as it found it
    assert net.dropout_rng.bit_generator.state == dropout_state
    for name, value in net.state_dict().items():
        assert np.array_equal(value, before[name])


def test_network_subset_of_entries():
    rng = np.random.default_rng(17)
    X = rng.standard_normal((5, 30))
    y = rng.standard_normal((5, 2))
    net = sn.NeuralNetwork([sn.Dense(20, "sigmoid"), sn.Dense(2)], sn.MeanSquaredError(),
                           seed=4, dtype="float64").build(30)
    rows = check_network(net, X, y, max_params_per_tensor=25)
    assert [r["entries"] for r in rows] == [25, 20, 25, 2]
    assert all(r["passed"] for r in rows), rows


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_network_with_each_loss(loss_name):
    rng = np.random.default_rng(18)
    loss = build_default(sn.LOSSES[loss_name])
    y = targets_for(loss, loss_name, rng, n=6, k=3)
    X = rng.standard_normal((6, 4))
    # A sigmoid output keeps predictions in (0, 1) for losses that take probabilities;
    # other losses get the raw linear output.
    probe = rng.normal(0.0, 3.0, size=y.shape)
    with np.errstate(all="ignore"):
        raw_ok = np.isfinite(loss.forward(probe, y))
    out = sn.Linear() if raw_ok else sn.Sigmoid()
    net = sn.NeuralNetwork([sn.Dense(5, "tanh"), sn.Dense(y.shape[1], out)], loss,
                           seed=5, dtype="float64").build(4)
    rows = check_network(net, X, y)
    assert all(r["passed"] for r in rows), rows


def test_check_network_refuses_float32():
    net = sn.NeuralNetwork([sn.Dense(2)], "mse", seed=0).build(3)
    with pytest.raises(sn.ConfigError, match="float32"):
        check_network(net, np.zeros((2, 3)), np.zeros((2, 2)))
