"""Recurrent layers and the embedding: gradient checks, PyTorch's numbers, edge values
and a training run that needs memory.

The gradient checks run over ``RECURRENT_LAYERS`` (the sequence layers' own registry until
the experiment file learns them), float64 central differences, relative error < 1e-6.
Checks through a whole network use a step of 1e-5: their losses are means over batch and
time, whose small gradients (1e-4) a step of 1e-6 leaves to round-off (errors up to 3e-7
for a correct LSTM), where 1e-5 balances round-off and truncation (about 1e-8).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import scratchnet as sn
from golden_files import golden_cases
from scratchnet.nn.gradcheck import (TOLERANCE, check_loss, check_network, check_operation,
                                     numerical_grad, relative_error)
from scratchnet.nn.recurrent import _Recurrent

SEQUENCE_LAYERS = sorted(name for name in sn.RECURRENT_LAYERS if name != "embedding")
NETWORK_EPS = 1e-5


def built(layer, shape, dtype=np.float64, seed=8):
    layer.build(shape, np.random.default_rng(seed), dtype, np.random.default_rng(seed + 1))
    return layer


def sequences(batch=3, steps=5, features=4, seed=10, scale=1.0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)) * scale


# -- gradient checks ------------------------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_layer_gradients(name, return_sequences):
    layer = built(sn.RECURRENT_LAYERS[name](4, return_sequences=return_sequences), (5, 3))
    result = check_operation(layer, sequences(features=3))
    assert result["passed"], result
    assert result["input"] is not None
    assert len(result["params"]) == len(layer.params()) == (4 if name == "gru" else 3)


@pytest.mark.parametrize("activation", sorted(sn.ACTIVATIONS))
def test_rnn_with_each_activation(activation):
    layer = built(sn.RNN(3, activation), (4, 2))
    result = check_operation(layer, sequences(steps=4, features=2, seed=11))
    assert result["passed"], result


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_layer_gradients_with_dropout(name):
    layer = built(sn.RECURRENT_LAYERS[name](4, dropout=0.3), (5, 3))
    result = check_operation(layer, sequences(features=3))
    assert result["passed"], result
    assert (layer.forward(sequences(features=3)) == 0).any()  # the mask is applied


def test_embedding_gradient():
    layer = built(sn.Embedding(7, 3), (6,))
    layer.set_needs_input_grad(False)
    ids = np.random.default_rng(12).integers(0, 5, size=(4, 6))  # repeats; ids 5, 6 unused
    result = check_operation(layer, ids.astype(np.float64))
    assert result["passed"] and result["input"] is None, result
    assert np.all(layer.params()[0].grad[5:] == 0)


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_stacked_network_with_a_loss_at_every_step(name):
    cls = sn.RECURRENT_LAYERS[name]
    rng = np.random.default_rng(13)
    X, y = rng.standard_normal((3, 6, 2)), np.eye(3)[rng.integers(0, 3, (3, 6))]
    net = sn.NeuralNetwork([cls(5), cls(4), sn.Dense(3)], "softmax_cross_entropy", seed=0,
                           dtype="float64")
    rows = check_network(net, X, y, eps=NETWORK_EPS)
    assert all(r["passed"] for r in rows), rows
    assert len(rows) == len(net.params())


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_embedding_then_last_step_classifier(name):
    rng = np.random.default_rng(14)
    X, y = rng.integers(0, 6, (4, 5)).astype(np.float64), np.eye(3)[rng.integers(0, 3, 4)]
    net = sn.NeuralNetwork([sn.Embedding(6, 3), sn.RECURRENT_LAYERS[name](
        4, return_sequences=False), sn.Dense(3, "tanh"), sn.Dense(3)], "softmax_cross_entropy",
        seed=1, dtype="float64")
    rows = check_network(net, X, y, eps=NETWORK_EPS)
    assert all(r["passed"] for r in rows), rows
    assert rows[0]["param"] == "layers.0.W"


def recurrent_layers(net):
    return [layer for layer in net.layers if isinstance(layer, _Recurrent)]


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_stateful_carry_across_two_batches(name):
    """The second batch starts from the first's final state, held constant: its gradients
    are those of a loss computed from that state (truncated back-propagation)."""
    cls = sn.RECURRENT_LAYERS[name]
    rng = np.random.default_rng(15)
    X1, X2 = rng.standard_normal((2, 3, 4, 2))
    y1, y2 = rng.standard_normal((2, 3, 4, 3))
    net = sn.NeuralNetwork([cls(4, stateful=True), cls(3, stateful=True)], "mse", seed=2,
                           dtype="float64")
    net.train_batch(X1, y1)
    states = [layer.state_dict() for layer in recurrent_layers(net)]
    assert all(s and all(a.shape == (3, layer.hidden_size) for a in s.values())
               for s, layer in zip(states, recurrent_layers(net)))

    def restore():
        for layer, state in zip(recurrent_layers(net), states):
            layer.load_state_dict(state)

    fresh = net.forward(X2, inference=True)  # inference starts from zeros
    restore()
    loss2 = net.train_batch(X2, y2)
    assert not np.allclose(net.layers[-1].operations[0].output, fresh)  # the state mattered
    analytic = [p.grad.copy() for p in net.params()]

    def loss(_=None):
        restore()
        return net.loss.forward(net.forward(X2), y2)

    assert loss() == pytest.approx(loss2, rel=1e-12)
    for p, a in zip(net.params(), analytic):
        error = relative_error(a, numerical_grad(loss, p.value, NETWORK_EPS))
        assert error < TOLERANCE, (p.name, error)


# -- PyTorch's numbers ------------------------------------------------------------------------
def torch_cases(torch_reference, family):
    return golden_cases(torch_reference("torch_recurrent"), family)


CASES = [(f, c) for f in SEQUENCE_LAYERS for c in ("a", "b")] + [("rnn", "c")]


def from_torch(family, c, dtype=np.float64, **options):
    """Our layer holding torch's weights: W_x = w_ih^T, W_h = w_hh^T; B = b_ih + b_hh
    (RNN, LSTM: the two biases are one sum), or B = b_ih and B_h = b_hh (GRU)."""
    extra = {"activation": c["activation"].item()} if family == "rnn" else {}
    layer = built(sn.RECURRENT_LAYERS[family](c["w_hh"].shape[1], **extra, **options),
                  c["x"].shape[-2:], dtype)
    values = {"W_x": c["w_ih"].T, "W_h": c["w_hh"].T,
              "B": c["b_ih"] + (0 if family == "gru" else c["b_hh"]), "B_h": c["b_hh"]}
    for p in layer.params():
        p.value[...] = values[p.name].reshape(p.shape)
    return layer


def assert_grads(layer, family, c, prefix="", atol=1e-10, index=()):
    grads = {p.name: p.grad for p in layer.params()}
    np.testing.assert_allclose(grads["W_x"], c[f"{prefix}dw_ih"][index].T, atol=atol)
    np.testing.assert_allclose(grads["W_h"], c[f"{prefix}dw_hh"][index].T, atol=atol)
    np.testing.assert_allclose(grads["B"][0], c[f"{prefix}db_ih"][index], atol=atol)
    if family == "gru":
        np.testing.assert_allclose(grads["B_h"][0], c[f"{prefix}db_hh"][index], atol=atol)


@pytest.mark.parametrize("family, case", CASES)
def test_matches_torch_every_step(family, case, torch_reference):
    c = torch_cases(torch_reference, family)[case]
    layer = from_torch(family, c)
    np.testing.assert_allclose(layer.forward(c["x"]), c["out"], atol=1e-12)
    np.testing.assert_allclose(layer.backward(c["grad"]), c["dx"], atol=1e-10)
    assert_grads(layer, family, c)


@pytest.mark.parametrize("family, case", CASES)
def test_matches_torch_last_step(family, case, torch_reference):
    c = torch_cases(torch_reference, family)[case]
    layer = from_torch(family, c, return_sequences=False)
    np.testing.assert_allclose(layer.forward(c["x"]), c["hn"], atol=1e-12)
    np.testing.assert_allclose(layer.backward(c["grad_last"]), c["last_dx"], atol=1e-10)
    assert_grads(layer, family, c, prefix="last_")


@pytest.mark.parametrize("family", SEQUENCE_LAYERS)
def test_matches_torch_float32(family, torch_reference):
    c = torch_cases(torch_reference, family)["a"]
    layer = from_torch(family, c, dtype=np.float32)
    out = layer.forward(c["x"].astype(np.float32))
    dx = layer.backward(c["grad"].astype(np.float32))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.params())
    np.testing.assert_allclose(out, c["out"], atol=1e-5)
    np.testing.assert_allclose(dx, c["dx"], atol=1e-5)
    assert_grads(layer, family, c, atol=1e-4)


@pytest.mark.parametrize("family", SEQUENCE_LAYERS)
def test_stateful_matches_torch_given_the_final_state(family, torch_reference):
    c = torch_cases(torch_reference, family)["s"]
    layer = from_torch(family, {**c, "x": c["x"][0]}, stateful=True)
    for batch in range(2):
        np.testing.assert_allclose(layer.forward(c["x"][batch]), c["out"][batch], atol=1e-12)
        np.testing.assert_allclose(layer.backward(c["grad"][batch]), c["dx"][batch],
                                   atol=1e-10)
        assert_grads(layer, family, c, index=batch)
        state = layer.state_dict()
        np.testing.assert_allclose(state["h"], c["hn"][batch], atol=1e-12)
        if family == "lstm":
            np.testing.assert_allclose(state["c"], c["cn"][batch], atol=1e-12)


@pytest.mark.parametrize("case", ["a", "b"])
def test_embedding_matches_torch(case, torch_reference):
    c = golden_cases(torch_reference("torch_recurrent"), "embedding")[case]
    layer = built(sn.Embedding(*c["W"].shape), c["ids"].shape[1:])
    layer.set_needs_input_grad(False)
    layer.params()[0].value[...] = c["W"]
    np.testing.assert_array_equal(layer.forward(c["ids"]), c["out"])
    assert layer.backward(c["grad"]) is None
    np.testing.assert_allclose(layer.params()[0].grad, c["dW"], atol=1e-12)


# -- dense layers and losses over time ------------------------------------------------------
def test_dense_applies_at_every_step():
    layer = built(sn.Dense(3, "tanh"), (5, 4))
    x = sequences(batch=2, steps=5, features=4)
    out = layer.forward(x)
    assert out.shape == (2, 5, 3) and layer.output_shape((5, 4)) == (5, 3)
    assert layer.param_count((5, 4)) == layer.n_params == 4 * 3 + 3
    W, B = (p.value for p in layer.params())
    np.testing.assert_allclose(out, np.tanh(x @ W + B))
    result = check_operation(layer, x)
    assert result["passed"], result
    with pytest.raises(sn.ShapeError, match="add a flatten layer"):
        sn.Dense(3).output_shape((2, 5, 4))


def test_softmax_cross_entropy_is_the_mean_over_batch_and_time():
    rng = np.random.default_rng(16)
    z, y = rng.normal(0, 3, (3, 4, 5)), np.eye(5)[rng.integers(0, 5, (3, 4))]
    loss = sn.SoftmaxCrossEntropy()
    rows = sn.SoftmaxCrossEntropy().forward(z.reshape(12, 5), y.reshape(12, 5))
    assert loss.forward(z, y) == pytest.approx(rows, rel=1e-12)
    log_softmax = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    assert loss.forward(z, y) == pytest.approx(-(y * log_softmax).sum() / 12, rel=1e-12)
    np.testing.assert_allclose(loss.predictions(z).sum(axis=-1), 1.0)
    assert check_loss(loss, z, y) < TOLERANCE


def test_accuracy_counts_every_step():
    y = np.eye(3)[[[0, 1, 2, 2], [1, 1, 0, 2]]]  # (2, 4, 3)
    prediction = np.eye(3)[[[0, 1, 0, 2], [2, 1, 0, 0]]] * 5.0  # right at 5 of 8 steps
    assert sn.accuracy(prediction, y) == 5 / 8


def test_evaluate_takes_a_target_per_step():
    rng = np.random.default_rng(17)
    X, y = rng.standard_normal((5, 4, 2)), np.eye(3)[rng.integers(0, 3, (5, 4))]
    net = sn.NeuralNetwork([sn.GRU(4), sn.Dense(3)], "softmax_cross_entropy", seed=0)
    scores = sn.evaluate(net, X, y, batch_size=2)
    assert scores["loss"] == pytest.approx(net.loss.forward(net.forward(X), y), rel=1e-5)
    assert 0 <= scores["accuracy"] <= 1


# -- edge values ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_long_sequences_of_large_inputs_stay_finite_without_warnings(name):
    layer = built(sn.RECURRENT_LAYERS[name](8), (2000, 3), np.float32)
    x = sequences(batch=2, steps=2000, features=3, scale=1e4).astype(np.float32)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(out))
    assert np.isfinite(out).all() and np.abs(out).max() <= 1 and np.isfinite(dx).all()
    assert all(np.isfinite(p.grad).all() for p in layer.params())


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_shapes_without_building(name):
    layer = sn.RECURRENT_LAYERS[name](6, return_sequences=False)
    assert layer.output_shape((7, 3)) == (6,)
    assert sn.RECURRENT_LAYERS[name](6).output_shape((7, 3)) == (7, 6)
    count = layer.param_count((7, 3))
    assert not layer.built and count == built(layer, (7, 3)).n_params
    assert layer.activation_size((7, 3)) > 7 * 6
    with pytest.raises(sn.ShapeError, match=r"samples of shape \(time, features\).*\(784,\)"):
        layer.output_shape(784)


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_wrong_input_names_the_expected_shape(name):
    layer = built(sn.RECURRENT_LAYERS[name](3), (5, 4))
    for bad in (np.zeros((2, 4)), np.zeros((2, 5, 3)), np.zeros((2, 0, 4))):
        with pytest.raises(sn.ShapeError, match=r"expects input of shape \(batch, time, 4\)"):
            layer.forward(bad)
    net = sn.NeuralNetwork([sn.RECURRENT_LAYERS[name](3)], "mse")
    with pytest.raises(sn.ShapeError, match=r"layer 0 .*takes sequences"):
        net.build(784)


def test_embedding_refuses_bad_ids():
    layer = built(sn.Embedding(7, 3), (4,))
    for ids, message in [([[0, 7, 1, 2]], r"got id 7: ids must be in 0\.\.6"),
                         ([[0, -1, 1, 2]], r"got id -1: ids must be in 0\.\.6"),
                         ([[0, 1.5, 1, 2]], "takes integer ids; got 1.5"),
                         ([[0, np.nan, 1, 2]], "takes integer ids; got nan")]:
        with pytest.raises(sn.DataError, match=message):
            layer.forward(np.array(ids))
    with pytest.raises(sn.ShapeError, match=r"ids of shape \(batch, time\)"):
        layer.forward(np.zeros((2, 4, 1)))
    with pytest.raises(sn.ShapeError, match=r"samples of shape \(time,\)"):
        sn.Embedding(7, 3).output_shape((4, 2))
    # not first: it has no input gradient to give
    net = sn.NeuralNetwork([sn.Dense(4), sn.Embedding(7, 3)], "mse", seed=0).build(2)
    with pytest.raises(sn.ShapeError, match="must be a network's first layer"):
        net.train_batch(np.ones((1, 2)) * 0.0, np.zeros((1, 4, 3)))


def test_an_unbuilt_network_does_not_guess_its_input_from_an_embedding():
    """An embedding's table is (vocabulary, dim): it says nothing of how long the sequences
    are, so loading weights into an unbuilt network that starts with one is refused (a
    dense layer's W gives its features)."""
    state = sn.NeuralNetwork([sn.Embedding(7, 3), sn.Dense(2)], "mse", seed=0).build(5)
    state = state.state_dict()
    with pytest.raises(sn.ShapeError, match=r"cannot infer the input shape .* Embedding"):
        sn.NeuralNetwork([sn.Embedding(7, 3), sn.Dense(2)], "mse").load_state_dict(state)
    net = sn.NeuralNetwork([sn.Embedding(7, 3), sn.Dense(2)], "mse").build(5)
    net.load_state_dict(state)
    assert all(np.array_equal(net.state_dict()[k], v) for k, v in state.items())


def test_carried_state_travels_with_the_network_and_is_held_still_by_gradcheck():
    """net.carried_state() / load_carried_state() / reset_state(), and check_network
    starting every pass from the carry it found (so a stateful network passes it)."""
    from scratchnet.nn.gradcheck import check_network

    rng = np.random.default_rng(4)
    net = sn.NeuralNetwork([sn.LSTM(4, stateful=True), sn.Dense(2)], "mse", seed=1,
                           dtype="float64").build((3, 2))
    assert net.carried_state() == {}
    x, y = rng.standard_normal((5, 3, 2)), rng.standard_normal((5, 3, 2))
    net.train_batch(x, y)
    carried = net.carried_state()
    assert set(carried) == {"layers.0.h", "layers.0.c"} and carried["layers.0.h"].any()
    rows = check_network(net, x, y)
    assert all(r["passed"] for r in rows), rows
    assert all(np.array_equal(net.carried_state()[k], v) for k, v in carried.items())
    net.reset_state()
    assert net.carried_state() == {}
    net.load_carried_state(carried)
    assert np.array_equal(net.carried_state()["layers.0.c"], carried["layers.0.c"])
    with pytest.raises(sn.ShapeError, match="layers that carry none"):
        net.load_carried_state({"layers.1.h": carried["layers.0.h"]})


def test_the_trainer_resets_the_carry_each_epoch_and_evaluation_leaves_it_alone():
    """A stateful fit: every epoch starts from zeros, an evaluation between batches leaves
    the carried state as it was, and shuffle=False reads the rows in order (the seed
    then changes nothing)."""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((12, 4, 2)), rng.standard_normal((12, 4, 1))

    class Watch(sn.Callback):
        def __init__(self):
            self.at_start, self.untouched = [], []

        def on_epoch_start(self, trainer, epoch):
            self.at_start.append(trainer.net.carried_state())

        def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
            before = trainer.net.carried_state()
            trainer.evaluate(X[:3], Y[:3])
            after = trainer.net.carried_state()
            self.untouched.append(all(np.array_equal(before[k], after[k]) for k in before))

    def fit(seed: int, shuffle: bool, watch=None):
        net = sn.NeuralNetwork([sn.GRU(3, stateful=True), sn.Dense(1)], "mse", seed=0)
        sn.Trainer(net, sn.SGD(0.05), [watch] if watch else []).fit(
            X, Y, epochs=3, batch_size=4, seed=seed, shuffle=shuffle)
        return net.state_dict()

    watch = Watch()
    first = fit(1, False, watch)
    assert watch.at_start == [{}, {}, {}] and all(watch.untouched) and len(watch.untouched) == 9
    same = fit(2, False)
    assert all(np.array_equal(first[k], same[k]) for k in first)
    shuffled, other = fit(1, True), fit(2, True)
    assert not all(np.array_equal(shuffled[k], other[k]) for k in shuffled)


def test_options_are_checked():
    with pytest.raises(sn.ConfigError, match=r"hidden_size must be an integer in \[1, 2147483647\], "
                                             "got 0"):
        sn.LSTM(0)
    with pytest.raises(sn.ConfigError, match="did you mean 'glorot'"):
        sn.GRU(3, weight_init="glorott")
    with pytest.raises(sn.ConfigError, match=r"dropout must be a number in \[0, 1\)"):
        sn.RNN(3, dropout=1.0)
    with pytest.raises(sn.ConfigError, match="unknown activation 'tanhh'"):
        sn.RNN(3, "tanhh")
    with pytest.raises(sn.ConfigError, match="'leaky_relu' takes no option 'slope'"):
        sn.RNN(3, {"name": "leaky_relu", "slope": 0.2})
    # an activation is a name, an instance or a name with its options
    for spec in ("leaky_relu", sn.LeakyReLU(0.2), {"name": "leaky_relu", "negative_slope": 0.2}):
        assert isinstance(sn.RNN(3, spec).activation, sn.LeakyReLU)
    assert sn.RNN(3, {"name": "leaky_relu", "negative_slope": 0.2}).activation.negative_slope == 0.2
    with pytest.raises(sn.ConfigError, match="return_sequences must be true or false"):
        sn.LSTM(3, return_sequences="no")


def test_initial_weights():
    layer = built(sn.LSTM(5), (4, 3))
    W_x, W_h, B = (p.value for p in layer.params())
    for gate in range(4):  # each gate's recurrent block is orthogonal
        block = W_h[:, gate * 5:(gate + 1) * 5]
        np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-12)
    np.testing.assert_array_equal(B[0], [0] * 5 + [1] * 5 + [0] * 10)  # forget gate: 1
    assert W_x.std() == pytest.approx(np.sqrt(2 / (3 + 20)), rel=0.5)  # Glorot over (3, 20)


# -- carried state ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_state_is_carried_only_while_training(name):
    layer = built(sn.RECURRENT_LAYERS[name](3, stateful=True), (4, 2))
    x1, x2 = sequences(batch=2, steps=4, features=2, seed=20), sequences(2, 4, 2, seed=21)
    fresh = layer.forward(x2, inference=True)
    assert layer.state_dict() == {}  # inference leaves nothing behind
    layer.forward(x1)
    carried = layer.state_dict()
    np.testing.assert_array_equal(layer.forward(x2, inference=True), fresh)
    assert all(np.array_equal(a, layer.state_dict()[k]) for k, a in carried.items())
    continued = layer.forward(x2)
    assert not np.allclose(continued, fresh)
    layer.load_state_dict(carried)
    np.testing.assert_array_equal(layer.forward(x2), continued)  # restored: bit-identical
    layer.reset_state()
    np.testing.assert_array_equal(layer.forward(x2), fresh)
    with pytest.raises(sn.ShapeError, match="carries the state of 2 sequences but got a batch"):
        layer.forward(x2[:1])


def test_default_layers_start_every_batch_from_zeros():
    layer = built(sn.LSTM(3), (4, 2))
    x1, x2 = sequences(2, 4, 2, seed=22), sequences(2, 4, 2, seed=23)
    first = layer.forward(x2)
    layer.forward(x1)
    np.testing.assert_array_equal(layer.forward(x2), first)
    assert layer.state_dict() == {}
    with pytest.raises(sn.ShapeError, match="only a built, stateful layer carries state"):
        layer.load_state_dict({"h": np.zeros((2, 3)), "c": np.zeros((2, 3))})


def test_load_state_dict_checks_what_it_is_given():
    layer = built(sn.LSTM(3, stateful=True), (4, 2))
    with pytest.raises(sn.ShapeError, match=r"has the arrays \['c', 'h'\], got \['h'\]"):
        layer.load_state_dict({"h": np.zeros((2, 3))})
    with pytest.raises(sn.ShapeError, match=r"\(batch, 3\), all alike"):
        layer.load_state_dict({"h": np.zeros((2, 3)), "c": np.zeros((2, 4))})


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_pickle_leaves_working_memory_behind(name):
    net = sn.NeuralNetwork([sn.RECURRENT_LAYERS[name](16), sn.Dense(2)], "mse", seed=0)
    X = sequences(batch=32, steps=50, features=8).astype(np.float32)
    net.train_batch(X, np.zeros((32, 50, 2), np.float32))
    data = pickle.dumps(net)
    assert len(data) < 50_000  # the weights, not the arrays of the last pass
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.predict(X, raw=True), net.predict(X, raw=True))


# -- training ---------------------------------------------------------------------------------
def delay_task(n=64, steps=12, delay=2, seed=0):
    """Random bits; the target at each step is the bit ``delay`` steps earlier (0 before)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, steps))
    target = np.zeros_like(bits)
    target[:, delay:] = bits[:, :-delay]
    return bits.astype(np.float32), np.eye(2, dtype=np.float32)[target]


def train(net, X, Y, steps=200, lr=0.02) -> list[float]:
    """The training loss of each of ``steps`` epochs of one batch (the trainer's path:
    targets at every step go through its batches as they are)."""
    history = sn.Trainer(net, sn.Adam(lr)).fit(X, Y, epochs=steps, eval_every=1,
                                               batch_size=len(X), seed=0)
    return [record["train_loss"] for record in history.records]


@pytest.mark.parametrize("name", SEQUENCE_LAYERS)
def test_learns_to_recall_the_input_two_steps_back(name):
    X, Y = delay_task()
    net = sn.NeuralNetwork([sn.Embedding(2, 4), sn.RECURRENT_LAYERS[name](16), sn.Dense(2)],
                           "softmax_cross_entropy", seed=0)
    losses = train(net, X, Y)
    assert losses[0] > 0.5 and losses[-1] < losses[0] / 100, losses[::20]
    assert sn.accuracy(net.forward(X, inference=True), Y) == 1.0


def test_the_recall_task_needs_memory():
    """Without recurrence the same steps leave the loss near chance: the task above
    cannot be solved step by step."""
    X, Y = delay_task()
    net = sn.NeuralNetwork([sn.Embedding(2, 4), sn.Dense(16, "tanh"), sn.Dense(2)],
                           "softmax_cross_entropy", seed=0)
    assert train(net, X, Y)[-1] > 0.5


def test_weight_decay_reaches_the_recurrent_weights_only():
    net = sn.NeuralNetwork([sn.GRU(3), sn.Dense(2)], "mse", seed=0).build((4, 2))
    before = {p.name: p.value.copy() for p in net.params()}
    for p in net.params():
        p.grad[...] = 0
    sn.SGD(0.1, weight_decay=0.5).step(net.params(), 0.1)
    after = {p.name: p.value for p in net.params()}
    moved = {name for name in before if not np.array_equal(before[name], after[name])}
    assert moved == {"layers.0.W_x", "layers.0.W_h", "layers.1.W"}
