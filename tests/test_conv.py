"""Convolution, pooling, flatten and per-channel batch norm: float64 gradient checks,
forward values against a plain loop written here, the "same" padding rule, max-pool ties,
shape inference without allocation, and every shape and config error."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import scratchnet as sn
from golden_files import as_option, golden_cases
from scratchnet.nn.conv import resolve_padding
from scratchnet.nn.gradcheck import TOLERANCE, check_network, check_operation

RNG = np.random.default_rng


# -- an independent reference: the definitions, as loops ---------------------------------
def loop_conv(x, W, b, stride, pads):
    """Cross-correlation by its definition: out[n, f, i, j] = sum over c, u, v of
    x_padded[n, c, i*sh + u, j*sw + v] * W[f, c, u, v], plus b[f]."""
    (top, bottom), (left, right) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, _, H, Wd = xp.shape
    F, _, KH, KW = W.shape
    sh, sw = stride
    Ho, Wo = (H - KH) // sh + 1, (Wd - KW) // sw + 1
    out = np.empty((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    out[n, f, i, j] = np.sum(patch * W[f]) + b[f]
    return out


def loop_pool(x, size, stride, reduce):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = size, stride
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = reduce(x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


# (N, C, H, W), (F, KH, KW), stride, padding: batch > 1, several channels, kernels that are
# not symmetric (random) nor square, stride 2 and pairs, odd sizes, numbers, same, valid
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 2), 1, "same"),
    ((3, 2, 9, 8), (5, 3, 3), 2, 1),
    ((2, 2, 7, 7), (3, 2, 3), (2, 1), "same"),
    ((2, 1, 5, 5), (2, 3, 3), 1, "valid"),
    ((2, 3, 6, 5), (2, 4, 2), 2, "same"),  # even kernel: the odd row of padding at the bottom
    ((1, 2, 5, 7), (3, 3, 5), (1, 2), (2, 1)),
    ((4, 1, 8, 8), (2, 5, 5), 1, "same"),
]


def conv_case(case, seed=0):
    (N, C, H, W), (F, KH, KW), stride, padding = case
    rng = RNG(seed)
    return rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, KH, KW)), stride, padding


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_gradients(case):
    x, W, stride, padding = conv_case(case)
    result = check_operation(sn.Conv2DOp(W, stride, padding), x)
    assert result["passed"] and result["input"] < TOLERANCE, result
    assert set(result["params"]) == {"W"}


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_forward_equals_the_definition(case):
    x, W, stride, padding = conv_case(case, seed=1)
    op = sn.Conv2DOp(W, stride, padding)
    b = np.zeros(W.shape[0])
    pads = resolve_padding(op.padding, W.shape[2:], op.stride, x.shape[2:])
    np.testing.assert_allclose(op.forward(x), loop_conv(x, W, b, op.stride, pads), atol=1e-12)


def test_conv_by_hand():
    """One 3x3 image, one 2x2 kernel, no padding: the four products written out."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # 0 1 2 / 3 4 5 / 6 7 8
    W = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = sn.Conv2DOp(W, 1, "valid").forward(x)
    # top-left window 0 1 / 3 4: 0*1 + 1*2 + 3*3 + 4*4 = 27 (not flipped: cross-correlation)
    np.testing.assert_array_equal(out, [[[[27.0, 37.0], [57.0, 67.0]]]])


def test_conv_input_memory_layout_does_not_matter():
    """Batch-innermost views (what a convolution outputs) and plain C-order arrays give
    the same results."""
    x, W, stride, padding = conv_case(CONV_CASES[1], seed=2)
    views = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    a, b = sn.Conv2DOp(W, stride, padding), sn.Conv2DOp(W, stride, padding)
    np.testing.assert_array_equal(a.forward(x), b.forward(views))
    dy = RNG(3).standard_normal(a.output.shape)
    np.testing.assert_allclose(a.backward(dy), b.backward(np.asfortranarray(dy)), atol=1e-12)
    np.testing.assert_allclose(a.param.grad, b.param.grad, atol=1e-12)


def test_conv_first_layer_skips_the_input_gradient():
    x, W, stride, padding = conv_case(CONV_CASES[0])
    op = sn.Conv2DOp(W, stride, padding)
    op.needs_input_grad = False
    op.forward(x)
    assert op.backward(np.ones(op.output.shape)) is None
    assert np.abs(op.param.grad).sum() > 0  # the weight gradient is still filled


def test_channel_bias_gradients():
    rng = RNG(4)
    result = check_operation(sn.ChannelBiasAdd(rng.standard_normal(3)),
                             rng.standard_normal((2, 3, 4, 5)))
    assert result["passed"], result


# -- the "same" rule ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 4, 5, 6, 7, 28])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_gives_ceil_of_size_over_stride(size, kernel, stride):
    (top, bottom), _ = resolve_padding("same", (kernel, 1), (stride, 1), (size, 1))
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    assert (top, bottom) == (total // 2, total - total // 2)  # the odd one at the bottom
    layer = sn.Conv2D(2, (kernel, 1), stride=(stride, 1))
    assert layer.output_shape((1, size, 3)) == (2, math.ceil(size / stride), 3)


# -- pooling --------------------------------------------------------------------------------
# (N, C, H, W), size, stride: tiling, remainders, overlap (stride < size), gaps
# (stride > size), rectangles
POOL_CASES = [
    ((2, 3, 8, 6), 2, None),
    ((2, 2, 7, 5), 2, None),
    ((1, 3, 7, 7), 3, 2),
    ((2, 1, 6, 7), (2, 3), 1),
    ((3, 2, 9, 9), 2, 3),
    ((2, 2, 5, 6), (1, 2), (2, 1)),
]
POOLS = [(sn.MaxPool2DOp, np.max), (sn.AvgPool2DOp, np.mean)]


@pytest.mark.parametrize("op_class, reduce", POOLS, ids=["max", "avg"])
@pytest.mark.parametrize("shape, size, stride", POOL_CASES, ids=str)
def test_pool_gradients_and_values(op_class, reduce, shape, size, stride):
    x = RNG(5).standard_normal(shape)  # no two values equal: no ties
    op = op_class(size, stride)
    expected = loop_pool(x, op.size, op.stride, reduce)
    np.testing.assert_allclose(op.forward(x), expected, atol=1e-15)
    result = check_operation(op_class(size, stride), x)
    assert result["passed"] and result["input"] < TOLERANCE, result


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 0.0, 0.0],  # window (0, 0): 3 twice; window (0, 1): all 0
                    [3.0, 2.0, 0.0, 0.0],
                    [5.0, 5.0, -1.0, 4.0],  # window (1, 0): 5 four times
                    [5.0, 5.0, 4.0, 4.0]]]])  # window (1, 1): 4 three times
    op = sn.MaxPool2DOp(2)
    np.testing.assert_array_equal(op.forward(x), [[[[3.0, 0.0], [5.0, 4.0]]]])
    grad = op.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    # the first maximum in row-major order of each window takes all of its gradient
    np.testing.assert_array_equal(grad, [[[[0.0, 10.0, 20.0, 0.0],
                                           [0.0, 0.0, 0.0, 0.0],
                                           [30.0, 0.0, 0.0, 40.0],
                                           [0.0, 0.0, 0.0, 0.0]]]])


def test_max_pool_ties_in_overlapping_windows():
    """A constant image: every 2x2 window, stride 1, is one big tie; each window's gradient
    lands on its own top-left input, once."""
    op = sn.MaxPool2DOp(2, 1)
    op.forward(np.full((1, 1, 3, 3), 7.0))
    grad = op.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(grad, [[[[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_max_pool_gradient_check_next_to_ties():
    """Values a thousand steps of the finite difference apart: every window's maximum is
    unique but barely, and many non-maximal values repeat."""
    rng = RNG(6)
    x = np.round(rng.standard_normal((2, 3, 6, 6)), 1)  # many exact repeats
    x += rng.permutation(x.size).reshape(x.shape) * 1e-3  # ... then made unique
    result = check_operation(sn.MaxPool2DOp(2), x)
    assert result["passed"], result


def test_a_cnn_passes_its_gradient_check_with_tied_pool_windows():
    """Images with blank margins, as MNIST's: a convolution gives exactly its bias
    everywhere in the margins, so whole pool windows tie. The tied values are the same
    function of every weight, so the check over the parameters is exact there."""
    rng = RNG(7)
    X = np.zeros((3, 1, 10, 10))
    X[:, :, 3:7, 3:7] = rng.standard_normal((3, 1, 4, 4))
    Y = np.eye(3)[[0, 1, 2]]
    net = sn.NeuralNetwork([sn.Conv2D(2, 3, activation="tanh"), sn.MaxPool2D(2),
                            sn.Flatten(), sn.Dense(3)], "softmax_cross_entropy", seed=1,
                           dtype="float64").build((1, 10, 10))
    pool_input = net.layers[0].forward(X)
    windows = pool_input.reshape(3, 2, 5, 2, 5, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
    assert (np.sum(windows == windows.max(axis=1, keepdims=True), axis=1) > 1).sum() > 50
    rows = check_network(net, X, Y)
    assert all(r["passed"] for r in rows), rows


# -- flatten, per-channel batch norm -------------------------------------------------------
def test_flatten_is_c_order_and_its_gradient_checks():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    op = sn.FlattenOp()
    np.testing.assert_array_equal(op.forward(x), x.reshape(2, 12))  # torch's flatten(1)
    assert check_operation(sn.FlattenOp(), RNG(8).standard_normal((3, 2, 3, 4)))["passed"]


def test_batch_norm_2d_statistics_are_per_channel():
    rng = RNG(9)
    x = rng.normal(3.0, 2.0, (6, 4, 5, 3)) * np.array([1.0, 10.0, 0.1, 5.0])[:, None, None]
    bn = sn.BatchNorm2D(4, "float64")
    out = bn.forward(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, atol=1e-3)
    assert bn.gamma.shape == bn.running_mean.shape == (4,)
    count = 6 * 5 * 3  # the unbiased variance counts every value of a channel
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * count
                               / (count - 1))
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)))


def test_batch_norm_2d_gradients_with_scale_and_shift():
    rng = RNG(10)
    bn = sn.BatchNorm2D(3, "float64")
    bn.gamma.value[...] = rng.uniform(0.5, 2.0, 3)
    bn.beta.value[...] = rng.normal(size=3)
    result = check_operation(bn, rng.normal(1.0, 2.0, (4, 3, 3, 5)))
    assert result["passed"] and set(result["params"]) == {"gamma", "beta"}, result


def test_batch_norm_2d_at_inference_and_with_one_value():
    bn = sn.BatchNorm2D(2, "float64")
    bn.running_mean[...] = [1.0, -1.0]
    bn.running_var[...] = [4.0, 1.0]
    x = np.ones((1, 2, 1, 1))
    np.testing.assert_allclose(bn.forward(x, inference=True).ravel(),
                               [0.0, 2.0 / math.sqrt(1.0 + 1e-5)])
    with pytest.raises(sn.ShapeError, match="at least 2 rows"):
        bn.forward(x)  # one value per channel has no variance


# -- layers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {},
    {"batch_norm": True, "activation": "relu"},
    {"dropout": 0.3, "activation": "tanh"},
    {"flatten": True, "stride": 2, "padding": "valid", "activation": "sigmoid"},
    {"bias_init": "normal", "weight_init": "he"},
], ids=str)
def test_conv_layer_gradients(kwargs):
    layer = sn.Conv2D(3, (3, 2), **kwargs)
    layer.build((2, 7, 6), RNG(11), np.float64, RNG(12))
    result = check_operation(layer, RNG(13).normal(0.5, 1.0, (4, 2, 7, 6)))
    assert result["passed"], result
    assert len(result["params"]) == len(layer.params())
    if kwargs.get("batch_norm"):
        assert [p.name for p in layer.params()] == ["W", "gamma", "beta"]
        assert set(layer.buffers()) == {"running_mean", "running_var"}


def test_the_books_call_works_as_written():
    conv = sn.Conv2D(out_channels=16, param_size=5, activation=sn.Tanh(), flatten=True)
    assert conv.kernel_size == (5, 5)
    net = sn.NeuralNetwork([conv, sn.Dense(10, sn.Linear())], sn.SoftmaxCrossEntropy(),
                           seed=0).build((1, 28, 28))
    assert net.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)
    assert net.shapes((1, 28, 28))[0]["output_shape"] == (16 * 28 * 28,)


@pytest.mark.parametrize("init", sorted(sn.INITIALIZERS))
def test_conv_fans_are_channels_times_kernel_area(init):
    layer = sn.Conv2D(40, 5, weight_init=init)
    layer.build((30, 8, 8), RNG(14), np.float64)
    W = layer.params()[0].value
    assert W.shape == (40, 30, 5, 5)
    fan_in, fan_out = 30 * 25, 40 * 25
    assert W.std() == pytest.approx(sn.INITIALIZERS[init].std(fan_in, fan_out), rel=0.03)


def test_dense_weights_are_unchanged_by_the_fan_rule():
    """The dense layer's draws, written out: Glorot normal from the network's seed."""
    net = sn.NeuralNetwork([sn.Dense(5, "tanh"), sn.Dense(3)], "mse", seed=0).build(4)
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0])
    W0 = rng.normal(0.0, math.sqrt(2 / 9), size=(4, 5)).astype(np.float32)
    W1 = rng.normal(0.0, math.sqrt(2 / 8), size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(net.state_dict()["layers.0.W"], W0)
    np.testing.assert_array_equal(net.state_dict()["layers.1.W"], W1)


def test_layers_are_registered_and_exported():
    assert {"dense", "conv2d", "max_pool2d", "avg_pool2d", "flatten"} <= set(sn.LAYERS)
    for cls in (sn.Conv2D, sn.MaxPool2D, sn.AvgPool2D, sn.Flatten):
        assert cls in sn.LAYERS.values()


# -- shapes without building ---------------------------------------------------------------
def benchmark_net(**kwargs):
    """The CNN of the speed benchmark."""
    return sn.NeuralNetwork([sn.Conv2D(16, 5, activation="relu"), sn.MaxPool2D(2),
                             sn.Conv2D(32, 5, activation="relu"), sn.MaxPool2D(2),
                             sn.Flatten(), sn.Dense(10)], "softmax_cross_entropy", **kwargs)


def test_shapes_of_the_benchmark_network():
    rows = benchmark_net().shapes((1, 28, 28))
    assert [r["output_shape"] for r in rows] == [(16, 28, 28), (16, 14, 14), (32, 14, 14),
                                                (32, 7, 7), (1568,), (10,)]
    assert [r["params"] for r in rows] == [16 * 25 + 16, 0, 32 * 16 * 25 + 32, 0, 0,
                                          1568 * 10 + 10]
    assert [r["type"] for r in rows][:2] == ["Conv2D(16, 5x5, relu)", "MaxPool2D(2x2)"]
    # conv: three outputs (product, bias, relu) and the im2col columns, float32
    assert rows[0]["activation_bytes"] == (3 * 16 * 28 * 28 + 25 * 28 * 28) * 4
    net = benchmark_net().build((1, 28, 28))
    assert [r["params"] for r in rows] == [layer.n_params for layer in net.layers]
    assert net.n_params == sum(r["params"] for r in rows)
    assert net.n_inputs == 784 and net.n_outputs == 10
    assert [r["outputs"] for r in net.summary()] == [(16, 28, 28), (16, 14, 14), (32, 14, 14),
                                                    (32, 7, 7), 1568, 10]


def test_shapes_allocate_nothing():
    """A network whose weights would need petabytes: its shapes are still arithmetic."""
    net = sn.NeuralNetwork([sn.Conv2D(10**6, 99), sn.MaxPool2D(2), sn.Flatten(),
                            sn.Dense(10**6)], "mse")
    rows = net.shapes((10**5, 10**5, 10**5))
    assert rows[0]["params"] == 10**6 * 10**5 * 99 * 99 + 10**6
    assert not net.built and not any(layer.built for layer in net.layers)


def test_build_accepts_a_width_or_a_sample_shape():
    assert benchmark_net(seed=0).build((1, 28, 28)).input_shape == (1, 28, 28)
    dense = sn.NeuralNetwork([sn.Dense(3)], "mse", seed=0)
    assert dense.build(784).input_shape == (784,) and dense.n_inputs == 784
    for bad in [(0,), (1, -28, 28), 2.5, ()]:
        with pytest.raises(sn.ShapeError, match="a sample shape is a positive integer"):
            dense.shapes(bad)


def test_inference_passes_are_cut_to_bound_their_memory():
    net = benchmark_net(seed=0).build((1, 28, 28))
    per_sample = sum(r["activation_bytes"] for r in net.shapes((1, 28, 28)))
    step = net.inference_batch_size(2048)
    assert step == net.INFERENCE_BYTES // per_sample < 2048
    assert sn.NeuralNetwork([sn.Dense(89), sn.Dense(10)], "mse").build(784) \
        .inference_batch_size(2048) == 2048
    X = RNG(15).standard_normal((step + 3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(net.predict(X, raw=True), net.forward(X, inference=True),
                               rtol=1e-5, atol=1e-6)


# -- shape errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("layers, shape, failing, message", [
    ([sn.Conv2D(2, 5, padding="valid")], (1, 4, 6), 0,
     r"kernel 5x5 is larger than its padded input 4x6 \(input 4x6, padding 'valid'\)"),
    ([sn.Conv2D(2, 5, padding=1)], (1, 2, 2), 0,
     r"kernel 5x5 is larger than its padded input 4x4 \(input 2x2, padding \(1, 1\)\)"),
    ([sn.Conv2D(2, 3), sn.MaxPool2D(3)], (1, 2, 8), 1, r"pool 3x3 does not fit its input 2x8"),
    ([sn.Conv2D(2, 3), sn.Dense(4)], (1, 5, 5), 1,
     r"a dense layer takes flat samples \(features,\), got samples of shape \(2, 5, 5\): "
     r"add a flatten layer before this dense layer"),
    ([sn.Dense(4), sn.Conv2D(2, 3)], (10,), 1,
     r"a convolution takes images of shape \(channels, height, width\), got samples of "
     r"shape \(4,\)"),
    ([sn.MaxPool2D(2)], (8, 8), 0, r"pooling takes images of shape \(channels, height, width\)"),
])
def test_shapes_that_cannot_work(layers, shape, failing, message):
    net = sn.NeuralNetwork(layers, "mse", seed=0)
    where = re.escape(f"layer {failing} ({layers[failing].describe()}): ")
    for call in (net.shapes, net.build):  # build checks before allocating anything
        with pytest.raises(sn.ShapeError, match=where + message):
            call(shape)
    assert not net.built and not any(layer.built for layer in layers)
    for layer in layers[:failing]:  # the failing layer says the same on its own
        shape = layer.output_shape(shape)
    with pytest.raises(sn.ShapeError, match=message):
        layers[failing].output_shape(shape)


def test_operations_check_their_inputs():
    op = sn.Conv2DOp(np.zeros((4, 3, 2, 2)))
    with pytest.raises(sn.ShapeError, match=r"Conv2DOp expects input of shape \(N, 3, H, W\), "
                                            r"got \(2, 2, 5, 5\)"):
        op.forward(np.zeros((2, 2, 5, 5)))
    with pytest.raises(sn.ShapeError, match=r"kernel 2x2 is larger than its padded input 1x5"):
        op.forward(np.zeros((2, 3, 1, 5)))
    with pytest.raises(sn.ShapeError, match=r"weight of shape \(F, C, KH, KW\), got \(4, 3\)"):
        sn.Conv2DOp(np.zeros((4, 3)))
    with pytest.raises(sn.ShapeError, match=r"bias of shape \(C,\), got \(1, 3\)"):
        sn.ChannelBiasAdd(np.zeros((1, 3)))
    with pytest.raises(sn.ShapeError, match=r"ChannelBiasAdd expects input of shape \(N, 3"):
        sn.ChannelBiasAdd(np.zeros(3)).forward(np.zeros((2, 4, 1, 1)))
    with pytest.raises(sn.ShapeError, match=r"MaxPool2DOp expects input of shape \(N, C, H, W\)"):
        sn.MaxPool2DOp(2).forward(np.zeros((2, 4, 4)))
    with pytest.raises(sn.ShapeError, match=r"pool 2x2 does not fit its input 1x4"):
        sn.AvgPool2DOp(2).forward(np.zeros((2, 1, 1, 4)))
    with pytest.raises(sn.ShapeError, match=r"FlattenOp expects input of shape \(N, \.\.\.\)"):
        sn.FlattenOp().forward(np.zeros(3))
    with pytest.raises(sn.ShapeError, match=r"BatchNorm2D expects input of shape \(N, 2, H, W\)"):
        sn.BatchNorm2D(2).forward(np.zeros((4, 2)))


def test_conv_backward_needs_a_training_forward_pass():
    op = sn.Conv2DOp(np.ones((1, 1, 2, 2)))
    out = op.forward(np.ones((1, 1, 3, 3)), inference=True)
    with pytest.raises(sn.ShapeError, match="needs a training forward pass"):
        op.backward(np.ones_like(out))


def test_network_checks_the_sample_shape():
    net = benchmark_net(seed=0).build((1, 28, 28))
    with pytest.raises(sn.ShapeError, match=r"expects samples of shape \(1, 28, 28\), a batch "
                                            r"of shape \(N, 1, 28, 28\); got \(2, 784\)"):
        net.forward(np.zeros((2, 784)))
    with pytest.raises(sn.ShapeError, match=r"\(batch, features\) rows or \(batch, channels"):
        benchmark_net().forward(np.zeros(5))
    with pytest.raises(sn.ShapeError, match="known once it is built"):
        _ = sn.NeuralNetwork([sn.Dense(3), sn.Flatten()], "mse").n_outputs


# -- config errors --------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: sn.Conv2D(4), "Conv2D needs kernel_size"),
    (lambda: sn.Conv2D(4, 3, param_size=5), "kernel_size and param_size name the same option"),
    (lambda: sn.Conv2D(0, 3), r"out_channels must be an integer in \[1, 2147483647\], got 0"),
    (lambda: sn.Conv2D(4, (3, 0)), r"kernel_size must be an integer in \[1, 2147483647\] or "
                                   r"a pair of them, got \(3, 0\)"),
    (lambda: sn.Conv2D(4, 3, stride=0), r"stride must be an integer in \[1, "),
    (lambda: sn.Conv2D(4, 3, stride=1.5), "got 1.5"),
    (lambda: sn.Conv2D(4, 3, padding="full"), "padding must be 'same', 'valid', an integer in "),
    (lambda: sn.Conv2D(4, 3, padding=-1), "padding must be 'same', 'valid', an integer in "
                                          r"\[0, 2147483647\] or a pair of them, got -1"),
    (lambda: sn.Conv2D(4, 3, padding=(1, 2, 3)), r"got \(1, 2, 3\)"),
    (lambda: sn.Conv2D(4, 3, flatten="yes"), "flatten must be true or false"),
    (lambda: sn.Conv2D(4, 3, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (lambda: sn.Conv2D(4, 3, batch_norm=True, bias_init="normal"), "no effect with batch_norm"),
    (lambda: sn.Conv2D(4, 3, activation="swishy"), "unknown activation 'swishy'"),
    (lambda: sn.MaxPool2D(0), r"size must be an integer in \[1, "),
    (lambda: sn.AvgPool2D(2, stride=True),
     r"stride must be an integer in \[1, .* or null, got True"),
    (lambda: sn.MaxPool2DOp((2, 2, 2)), "pool size must be"),
])
def test_bad_arguments_raise_config_errors(make, message):
    with pytest.raises(sn.ConfigError, match=message):
        make()


def test_describe_and_repr():
    assert sn.Conv2D(8, (3, 5), stride=2, padding=(1, 2), activation="relu", batch_norm=True,
                     dropout=0.25, flatten=True).describe() == \
        "Conv2D(8, 3x5, stride 2, padding 1x2, relu, batch_norm, dropout=0.25, flatten)"
    assert sn.AvgPool2D(3, stride=1).describe() == "AvgPool2D(3x3, stride 1)"
    assert sn.Flatten().describe() == "Flatten"
    assert "kernel_size=(3, 3)" in repr(sn.Conv2D(8, 3))
    assert repr(sn.MaxPool2D(2)) == "MaxPool2D(size=(2, 2), stride=(2, 2))"


# -- against PyTorch: the committed golden arrays (and, where torch is installed, the same
# -- arrays computed live), then more cases live ------------------------------------------
def golden(torch_reference, name, family):
    return golden_cases(torch_reference(name), family)


@pytest.mark.parametrize("case", "abcde")
def test_conv_matches_torch_golden(case, torch_reference):
    c = golden(torch_reference, "torch_conv", "conv")[case]
    conv = sn.Conv2DOp(c["W"].copy(), as_option(c["stride"]), as_option(c["padding"]))
    bias = sn.ChannelBiasAdd(c["b"].copy())
    np.testing.assert_allclose(bias.forward(conv.forward(c["x"])), c["out"], atol=1e-10)
    np.testing.assert_allclose(conv.backward(bias.backward(c["grad_out"])), c["dx"], atol=1e-10)
    np.testing.assert_allclose(conv.param.grad, c["dW"], atol=1e-10)
    np.testing.assert_allclose(bias.param.grad, c["db"], atol=1e-10)


@pytest.mark.parametrize("family, case", [("max", "a"), ("max", "b"), ("max", "c"),
                                          ("avg", "a"), ("avg", "b")])
def test_pools_match_torch_golden(family, case, torch_reference):
    c = golden(torch_reference, "torch_pool", family)[case]
    op = (sn.MaxPool2DOp if family == "max" else sn.AvgPool2DOp)(int(c["size"]), int(c["stride"]))
    np.testing.assert_allclose(op.forward(c["x"]), c["out"], atol=1e-10)
    # max case c repeats window maxima (tests/test_golden.py checks it): ties, torch's way
    np.testing.assert_allclose(op.backward(c["grad_out"]), c["dx"], atol=1e-10)


# More cases than the golden file holds, where torch is installed.
def torch_conv(torch, x, W, b, stride, padding, pads):
    """torch's conv2d, its own "same" for stride 1, else explicit zero padding."""
    F = torch.nn.functional
    if padding == "same" and stride == (1, 1):
        return F.conv2d(x, W, b, stride=stride, padding="same")
    (top, bottom), (left, right) = pads
    return F.conv2d(F.pad(x, (left, right, top, bottom)), W, b, stride=stride)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's notice
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, W, stride, padding = conv_case(case, seed=20)
    b = RNG(21).standard_normal(W.shape[0])
    conv, bias = sn.Conv2DOp(W, stride, padding), sn.ChannelBiasAdd(b)
    out = bias.forward(conv.forward(x))
    grad_out = RNG(22).standard_normal(out.shape)
    dx = conv.backward(bias.backward(grad_out))
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    pads = resolve_padding(conv.padding, W.shape[2:], conv.stride, x.shape[2:])
    expected = torch_conv(torch, tx, tW, tb, conv.stride, conv.padding, pads)
    expected.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(conv.param.grad, tW.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bias.param.grad, tb.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape, size, stride", POOL_CASES, ids=str)
def test_pools_match_torch(shape, size, stride, kind, ties):
    torch = pytest.importorskip("torch")
    x = RNG(23).standard_normal(shape)
    if ties:  # values from a handful: ties in most windows
        x = np.round(x)
    op = (sn.MaxPool2DOp if kind == "max" else sn.AvgPool2DOp)(size, stride)
    out = op.forward(x)
    grad_out = RNG(24).standard_normal(out.shape)
    dx = op.backward(grad_out)
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    tx = torch.tensor(x, requires_grad=True)
    expected = pool(tx, op.size, op.stride)
    expected.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)


def test_batch_norm_2d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = RNG(25)
    ours = sn.BatchNorm2D(3, "float64")
    theirs = torch.nn.BatchNorm2d(3, dtype=torch.float64)  # momentum 0.1, eps 1e-5
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    ours.gamma.value[...], ours.beta.value[...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))
    for _ in range(2):
        x, dy = rng.normal(1.0, 2.0, (4, 3, 5, 6)), rng.normal(size=(4, 3, 5, 6))
        tx = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        ty = theirs(tx)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(ours.backward(dy), tx.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(ours.gamma.grad, theirs.weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(ours.beta.grad, theirs.bias.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), atol=1e-12)
    theirs.eval()
    x = rng.normal(size=(2, 3, 4, 4))
    np.testing.assert_allclose(ours.forward(x, inference=True),
                               theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)
