"""Edge values and contracts of the engine: numerics at extreme inputs, shape and config
errors, dropout, initialisers, dtypes, reproducibility, state round trips, golden values
for softmax cross entropy, and the ReLU mask."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import scratchnet as sn

EXTREMES = np.array([[-1000.0, -1.0, 0.0, 1.0, 1000.0]])


class strict_numerics:
    """Any overflow, invalid operation (NaN) or division by zero raises, and so does any
    warning. Underflow stays allowed: exp(-2000) rounding to 0 inside a softmax is the
    right answer, not an error."""

    def __enter__(self):
        self._errstate = np.errstate(over="raise", invalid="raise", divide="raise")
        self._errstate.__enter__()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        self._errstate.__exit__(*exc)


def tiny_net(**kwargs):
    return sn.NeuralNetwork([sn.Dense(5, "tanh", dropout=kwargs.pop("dropout", 0.0)),
                             sn.Dense(3, "linear")],
                            kwargs.pop("loss", sn.SoftmaxCrossEntropy()), **kwargs)


def tiny_data(n=12, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), np.eye(k)[rng.integers(0, k, n)]


# -- numerics at the edges ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(sn.ACTIVATIONS))
def test_activations_at_extremes(name, dtype):
    act = sn.ACTIVATIONS[name]()
    x = EXTREMES.astype(dtype)
    with strict_numerics():
        out = act.forward(x)
        grad = act.backward(np.ones_like(x))
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    assert out.dtype == x.dtype and grad.dtype == x.dtype


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_and_tanh_saturate_cleanly(dtype):
    x = EXTREMES.astype(dtype)
    with strict_numerics():
        s = sn.Sigmoid().forward(x)
        t = sn.Tanh().forward(x)
    np.testing.assert_allclose(s[0, [0, 2, 4]], [0.0, 0.5, 1.0], atol=0)
    np.testing.assert_allclose(t[0, [0, 2, 4]], [-1.0, 0.0, 1.0], atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_at_extremes(dtype):
    logits = np.array([[-1000.0, 0.0, 1000.0],
                       [1000.0, 1000.0, -1000.0],
                       [0.0, 0.0, 0.0]], dtype=dtype)
    target = np.eye(3, dtype=dtype)[[0, 1, 2]]
    loss = sn.SoftmaxCrossEntropy()
    with strict_numerics():
        value = loss.forward(logits, target)
        grad = loss.backward()
        probs = loss.predictions(logits)
    # row 0: the true class is 2000 below the top: -log p = 2000; row 1: a tie: log 2;
    # row 2: uniform: log 3
    assert value == pytest.approx((2000.0 + math.log(2) + math.log(3)) / 3, rel=1e-6)
    assert np.isfinite(grad).all() and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_mse_at_extremes():
    with strict_numerics():
        loss = sn.MeanSquaredError()
        value = loss.forward(EXTREMES, -EXTREMES)
        grad = loss.backward()
    assert value == pytest.approx(2 * 2000.0 ** 2 + 2 * 2.0 ** 2)
    assert np.isfinite(grad).all()


# -- shape errors -------------------------------------------------------------------------
def test_backward_with_wrong_gradient_shape():
    op = sn.Tanh()
    op.forward(np.ones((2, 3)))
    with pytest.raises(sn.ShapeError, match=r"\(2, 3\).*\(3, 2\)"):
        op.backward(np.ones((3, 2)))


def test_param_operation_backward_with_wrong_gradient_shape():
    op = sn.WeightMultiply(np.ones((3, 4)))
    op.forward(np.ones((2, 3)))
    with pytest.raises(sn.ShapeError):
        op.backward(np.ones((2, 5)))


def test_network_input_of_wrong_width():
    net = tiny_net(seed=0).build(4)
    with pytest.raises(sn.ShapeError, match="expects 4 input features, got 5"):
        net.forward(np.zeros((2, 5)))
    with pytest.raises(sn.ShapeError, match="2-D"):
        net.forward(np.zeros(4))


def test_loss_target_of_wrong_shape():
    with pytest.raises(sn.ShapeError, match=r"\(2, 3\).*\(2, 4\)"):
        sn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.zeros((2, 4)))
    net = tiny_net(seed=0)
    with pytest.raises(sn.ShapeError):
        net.train_batch(np.zeros((2, 4)), np.zeros((2, 2)))


# -- config errors quote the bad value ----------------------------------------------------
@pytest.mark.parametrize("make, quoted", [
    (lambda: sn.SGD(-0.1), "-0.1"),
    (lambda: sn.SGDMomentum(-0.5, momentum=0.9), "-0.5"),
    (lambda: sn.SGDMomentum(0.1, momentum=1.0), "1.0"),
    (lambda: sn.SGDMomentum(0.1, momentum=1.5), "1.5"),
    (lambda: sn.Dense(3, dropout=1.0), "1.0"),
    (lambda: sn.Dense(3, dropout=-0.1), "-0.1"),
    (lambda: sn.Dropout(1.0), "1.0"),
    (lambda: sn.Dropout(-0.1), "-0.1"),
    (lambda: sn.Dense(0), "0"),
    (lambda: sn.Dense(-3), "-3"),
])
def test_bad_values_raise_config_error(make, quoted):
    with pytest.raises(sn.ConfigError) as info:
        make()
    assert quoted in str(info.value)


@pytest.mark.parametrize("make, registry", [
    (lambda: sn.Dense(3, "swishy"), sn.ACTIVATIONS),
    (lambda: sn.get_activation("swishy"), sn.ACTIVATIONS),
    (lambda: sn.Dense(3, weight_init="swishy"), sn.INITIALIZERS),
    (lambda: sn.get_initializer("swishy"), sn.INITIALIZERS),
    (lambda: sn.NeuralNetwork([sn.Dense(2)], "swishy"), sn.LOSSES),
    (lambda: sn.get_loss("swishy"), sn.LOSSES),
    (lambda: sn.get_optimizer("swishy"), sn.OPTIMIZERS),
])
def test_unknown_names_list_the_valid_ones(make, registry):
    with pytest.raises(sn.ConfigError) as info:
        make()
    message = str(info.value)
    assert "swishy" in message
    for valid in registry:
        assert valid in message


# -- dropout ------------------------------------------------------------------------------
def test_dropout_is_identity_at_inference():
    x = np.random.default_rng(0).standard_normal((50, 40))
    op = sn.Dropout(0.5, np.random.default_rng(1))
    out = op.forward(x, inference=True)
    assert np.array_equal(out, x)
    assert np.array_equal(op.backward(np.ones_like(x)), np.ones_like(x))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_is_inverted_and_rate_is_the_drop_rate(rate):
    x = np.ones((400, 500))
    op = sn.Dropout(rate, np.random.default_rng(2))
    out = op.forward(x, inference=False)
    dropped = np.mean(out == 0)
    assert dropped == pytest.approx(rate, abs=0.01)  # 200,000 draws: sd ~ 0.001
    survivors = out[out != 0]
    np.testing.assert_allclose(survivors, 1.0 / (1.0 - rate))
    assert out.mean() == pytest.approx(1.0, abs=0.02)  # the expected activation is kept
    # the backward pass routes the gradient through the same mask and scale
    np.testing.assert_array_equal(op.backward(np.ones_like(x)), out)


def test_dense_dropout_only_while_training():
    net = sn.NeuralNetwork([sn.Dense(200, "linear", dropout=0.5)], "mse", seed=0,
                           dtype="float64")
    x = np.ones((3, 4))
    a, b = net.forward(x, inference=True), net.forward(x, inference=True)
    assert np.array_equal(a, b)
    train = net.forward(x, inference=False)
    assert (train == 0).mean() == pytest.approx(0.5, abs=0.1)


# -- initialisers -------------------------------------------------------------------------
FAN_IN, FAN_OUT = 800, 400


@pytest.mark.parametrize("name, expected_std", [
    ("glorot", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("glorot_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he", math.sqrt(2 / FAN_IN)),
    ("he_uniform", math.sqrt(2 / FAN_IN)),
    ("standard", 1.0),
])
def test_initializer_std(name, expected_std):
    if name not in sn.INITIALIZERS:
        pytest.skip(f"{name} is not registered")
    W = sn.INITIALIZERS[name]((FAN_IN, FAN_OUT), np.random.default_rng(0), np.float64)
    assert W.shape == (FAN_IN, FAN_OUT)
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(W.mean()) < 0.02 * expected_std * 3


@pytest.mark.parametrize("name", sorted(sn.INITIALIZERS))
def test_every_initializer_draws_with_its_stated_std(name):
    init = sn.INITIALIZERS[name]
    W = init((FAN_IN, FAN_OUT), np.random.default_rng(1), np.float32)
    assert W.dtype == np.float32 and np.isfinite(W).all()
    if hasattr(init, "std"):
        assert W.std() == pytest.approx(init.std(FAN_IN, FAN_OUT), rel=0.02)


def test_dense_uses_glorot_for_its_weights():
    layer = sn.Dense(FAN_OUT, weight_init="glorot")
    layer.build(FAN_IN, np.random.default_rng(3), np.float64)
    W, B = (p.value for p in layer.params())
    assert W.std() == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)
    assert np.array_equal(B, np.zeros((1, FAN_OUT)))


# -- dtypes -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, kwargs", [("float32", {}), ("float64", {"dtype": "float64"})])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_dtype_is_kept_through_a_training_step(dtype, kwargs, loss):
    X, y = tiny_data()  # float64 data, whatever the network's dtype
    net = tiny_net(seed=0, dropout=0.2, loss=loss, **kwargs)
    assert net.dtype == np.dtype(dtype)
    opt = sn.SGDMomentum(0.1, momentum=0.9)
    sn.Trainer(net, opt).fit(X, y, X, y, epochs=2, eval_every=1, batch_size=5)
    for p in net.params():
        assert p.value.dtype == dtype and p.grad.dtype == dtype, p
    assert opt.state and all(v.dtype == dtype for s in opt.state.values() for v in s.values())
    assert net.forward(X).dtype == dtype
    assert net.predict(X).dtype == dtype
    assert net.predict(X, raw=True).dtype == dtype
    # a training step called directly, with float64 targets: the loss gradient that the
    # backward pass starts from is in the network's dtype too
    net.train_batch(X, y)
    assert net.loss.backward().dtype == dtype
    assert all(p.grad.dtype == dtype for p in net.params())


def test_float32_is_the_default_and_other_dtypes_are_refused():
    assert tiny_net().dtype == np.float32
    with pytest.raises(sn.ConfigError, match="float16"):
        tiny_net(dtype="float16")


# -- reproducibility ----------------------------------------------------------------------
def _fit(seed, dropout=0.2):
    X, y = tiny_data(n=40)
    net = tiny_net(seed=seed, dropout=dropout)
    history = sn.Trainer(net, sn.SGDMomentum(0.05, momentum=0.9)).fit(
        X, y, X, y, epochs=4, eval_every=1, batch_size=8, seed=3)
    return net, history


def test_same_seed_gives_bit_identical_weights_and_losses():
    (net_a, hist_a), (net_b, hist_b) = _fit(7), _fit(7)
    for name, value in net_a.state_dict().items():
        assert np.array_equal(value, net_b.state_dict()[name]), name
    assert [r["train_loss"] for r in hist_a] == [r["train_loss"] for r in hist_b]
    assert [r["val_loss"] for r in hist_a] == [r["val_loss"] for r in hist_b]
    net_c, _ = _fit(8)
    assert not np.array_equal(net_a.state_dict()["layers.0.W"], net_c.state_dict()["layers.0.W"])


def test_dropout_does_not_change_initial_weights():
    a = tiny_net(seed=1).build(4).state_dict()
    b = tiny_net(seed=1, dropout=0.5).build(4).state_dict()
    for name in a:
        assert np.array_equal(a[name], b[name])


def test_two_layers_of_the_same_shape_get_different_weights():
    net = sn.NeuralNetwork([sn.Dense(6, "tanh"), sn.Dense(6, "tanh")], "mse", seed=0).build(6)
    W0, W1 = net.state_dict()["layers.0.W"], net.state_dict()["layers.1.W"]
    assert W0.shape == W1.shape
    assert not np.array_equal(W0, W1)


def test_one_activation_instance_shared_by_two_layers_keeps_two_caches():
    act = sn.Tanh()
    net = sn.NeuralNetwork([sn.Dense(4, act), sn.Dense(4, act), sn.Dense(2)], "mse",
                           seed=0, dtype="float64")
    from scratchnet.nn.gradcheck import check_network
    rng = np.random.default_rng(0)
    rows = check_network(net, rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    assert all(r["passed"] for r in rows), rows


# -- state round trip ---------------------------------------------------------------------
def test_state_dict_round_trip():
    X, y = tiny_data()
    net = tiny_net(seed=0)
    sn.Trainer(net, sn.SGD(0.1)).fit(X, y, epochs=2, batch_size=4)
    state = net.state_dict()
    assert set(state) == {"layers.0.W", "layers.0.B", "layers.1.W", "layers.1.B"}
    state["layers.0.W"] += 1  # a copy: the network is untouched
    assert not np.array_equal(state["layers.0.W"], net.state_dict()["layers.0.W"])
    state = net.state_dict()

    other = tiny_net(seed=99)  # unbuilt: load_state_dict builds it
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        assert np.array_equal(value, state[name])
    assert np.array_equal(other.predict(X), net.predict(X))


def test_load_state_dict_rejects_mismatches():
    net = tiny_net(seed=0).build(4)
    state = net.state_dict()
    with pytest.raises(sn.ShapeError, match="missing"):
        net.load_state_dict({k: v for k, v in state.items() if k != "layers.1.B"})
    state["layers.1.W"] = np.zeros((6, 3))
    with pytest.raises(sn.ShapeError, match=r"\(5, 3\)"):
        net.load_state_dict(state)


# -- golden values ------------------------------------------------------------------------
def test_softmax_cross_entropy_golden_value_and_gradient():
    logits = [[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]]
    target = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    # by hand: p = exp(z) / sum(exp(z)); loss = mean over rows of -log p[true class]
    probs = []
    for row in logits:
        exps = [math.exp(v) for v in row]
        probs.append([e / sum(exps) for e in exps])
    expected = (-math.log(probs[0][2]) - math.log(probs[1][1])) / 2
    # row 0 is the classic [1, 2, 3] example: p(3) = 0.66524..., -log = 0.40761...
    assert probs[0][2] == pytest.approx(0.6652409557748219)
    expected_grad = [[(probs[i][j] - target[i][j]) / 2 for j in range(3)] for i in range(2)]

    loss = sn.SoftmaxCrossEntropy()
    value = loss.forward(np.array(logits), np.array(target))
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), expected_grad, rtol=1e-12)
    # no (1 - y) log(1 - p) term (the notebook's bug): that would add to the loss
    assert value == pytest.approx((0.40760596444438 + 1.40760596444438) / 2, rel=1e-12)


def test_mse_golden_value():
    loss = sn.MeanSquaredError()
    value = loss.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 2.0], [3.0, 3.0]]))
    assert value == pytest.approx((1 + 0 + 0 + 4) / 2)
    np.testing.assert_allclose(loss.backward(), [[1.0, 0.0], [0.0, 2.0]])


def test_relu_gradient_is_masked_on_positive_input():
    """Regression test for the notebook: its mask (output >= 0) let every gradient through."""
    relu = sn.ReLU()
    x = np.array([[-2.0, 3.0, -0.5], [0.25, -1.0, 4.0]])
    relu.forward(x)
    grad = relu.backward(np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]))
    np.testing.assert_array_equal(grad, [[0.0, 20.0, 0.0], [40.0, 0.0, 60.0]])
