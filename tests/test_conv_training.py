"""Convolutional networks in training: the trainer on image-shaped digits, checkpoints
that resume bit for bit, state round trips, and the errors of image-shaped data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

import scratchnet as sn
from scratchnet.nn.gradcheck import check_network


@pytest.fixture(scope="module")
def digit_images():
    """The 8x8 digits as (N, 1, 8, 8) images scaled to [0, 1]; a training and a
    validation split; one-hot labels."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8)
    Y = np.eye(10)[y]
    return X[:1200], Y[:1200], X[1200:], Y[1200:]


def tiny_cnn(seed=3, dtype="float32", dropout=0.2):
    return sn.NeuralNetwork([sn.Conv2D(6, 3, activation="relu", batch_norm=True),
                             sn.MaxPool2D(2),
                             sn.Conv2D(8, (3, 2), activation="tanh", dropout=dropout),
                             sn.AvgPool2D(2), sn.Flatten(), sn.Dense(10)],
                            "softmax_cross_entropy", seed=seed, dtype=dtype)


def test_a_cnn_learns_the_digits(digit_images):
    X, Y, X_val, Y_val = digit_images
    net = tiny_cnn()
    history = sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9)).fit(
        X, Y, X_val, Y_val, epochs=8, eval_every=4, batch_size=32, seed=0)
    # measured: validation accuracy 0.921 after 8 epochs (float32, this seed; under a
    # second); the threshold leaves room for other BLAS builds
    assert history[-1]["accuracy"] > 0.88
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert net.input_shape == (1, 8, 8)
    assert sn.evaluate(net, X_val, Y_val)["accuracy"] == history[-1]["accuracy"]
    assert net.predict(X_val).shape == (len(X_val), 10)


def test_a_whole_cnn_passes_its_gradient_check():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 2, 9, 8))
    Y = np.eye(3)[[0, 2, 1, 2]]
    net = sn.NeuralNetwork([sn.Conv2D(3, 3, stride=2, activation="tanh"),
                            sn.Conv2D(4, (2, 3), padding=1, activation="gelu", batch_norm=True),
                            sn.MaxPool2D(2, stride=1), sn.Flatten(),
                            sn.Dense(5, "sigmoid", dropout=0.3), sn.Dense(3)],
                           "softmax_cross_entropy", seed=2, dtype="float64",
                           input_dropout=0.1)
    before = net.build((2, 9, 8)).state_dict()
    rows = check_network(net, X, Y)
    assert [r["param"] for r in rows] == [
        "layers.0.W", "layers.0.B", "layers.1.W", "layers.1.gamma", "layers.1.beta",
        "layers.4.W", "layers.4.B", "layers.5.W", "layers.5.B"]
    assert all(r["passed"] for r in rows), rows
    for name, value in net.state_dict().items():  # buffers put back
        assert np.array_equal(value, before[name]), name


class StopAt(sn.Callback):
    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        if (epoch, batch) == (self.epoch, self.batch):
            trainer.stop_requested = True


def test_resume_of_a_cnn_is_bit_identical(digit_images):
    X, Y, X_val, Y_val = digit_images
    X, Y = X[:400], Y[:400]
    fit = dict(epochs=3, eval_every=1, batch_size=50, seed=5)

    def trainer():
        return sn.Trainer(tiny_cnn(), sn.SGDMomentum(0.05, momentum=0.9))

    full = trainer()
    expected = full.fit(X, Y, X_val, Y_val, **fit)
    first = trainer()
    assert first.fit(X, Y, X_val, Y_val, callbacks=[StopAt(1, 3)], **fit).interrupted
    meta, arrays = first.checkpoint()
    assert "net.layers.0.running_var" in arrays  # batch norm's statistics travel too

    second = trainer()  # fresh: load_state_dict needs the network built for images
    resumed = second.fit(X, Y, X_val, Y_val, resume=(meta, arrays), **fit)
    for name, value in full.net.state_dict().items():
        assert np.array_equal(value, second.net.state_dict()[name]), name
    velocity = "layers.2.W.velocity"
    assert np.array_equal(full.optimizer.state_dict(full.net.params())[velocity],
                          second.optimizer.state_dict(second.net.params())[velocity])
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.records) == strip(expected.records)


def test_state_round_trip_of_a_cnn(digit_images):
    X, Y, *_ = digit_images
    net = tiny_cnn()
    sn.Trainer(net, sn.SGD(0.1)).fit(X[:200], Y[:200], epochs=1, batch_size=50)
    state = net.state_dict()
    assert state["layers.0.W"].shape == (6, 1, 3, 3)
    assert state["layers.0.gamma"].shape == state["layers.0.running_mean"].shape == (6,)
    assert state["layers.2.B"].shape == (8,)

    unbuilt = tiny_cnn(seed=99)
    with pytest.raises(sn.ShapeError, match=r"starts with Conv2D\(6, 3x3, relu, batch_norm\) "
                                            r"from its state: build it first"):
        unbuilt.load_state_dict(state)
    unbuilt.build((1, 8, 8)).load_state_dict(state)
    np.testing.assert_array_equal(unbuilt.predict(X[:50]), net.predict(X[:50]))
    # a dense network still infers its width from its first weight
    dense = sn.NeuralNetwork([sn.Dense(4), sn.Dense(2)], "mse", seed=0).build(6)
    fresh = sn.NeuralNetwork([sn.Dense(4), sn.Dense(2)], "mse", seed=1)
    fresh.load_state_dict(dense.state_dict())
    assert fresh.input_shape == (6,)


def test_a_pickled_cnn_leaves_its_scratch_buffers_behind(digit_images):
    X, Y, *_ = digit_images
    net = tiny_cnn()
    sn.Trainer(net, sn.SGD(0.1)).fit(X[:64], Y[:64], epochs=1, batch_size=64)
    assert set(net.layers[0].operations[0]._kept) == {"padded", "cols"}  # the first layer's
    restored = pickle.loads(pickle.dumps(net))
    assert not restored.layers[0].operations[0]._kept
    np.testing.assert_array_equal(restored.predict(X[:10]), net.predict(X[:10]))
    sn.Trainer(restored, sn.SGD(0.1)).fit(X[:64], Y[:64], epochs=1, batch_size=64,
                                          restart=False)  # trains on with new buffers


def test_the_trainer_checks_image_shaped_data(digit_images):
    X, Y, *_ = digit_images
    trainer = sn.Trainer(tiny_cnn(), sn.SGD(0.1))
    with pytest.raises(sn.ShapeError, match=r"X must be \(samples, features\) or \(samples, "
                                            r"channels, height, width\) and y 2-D"):
        trainer.fit(X[:10, 0, 0, 0], Y[:10])
    with pytest.raises(sn.ShapeError, match="X has 10 rows but y has 9"):
        trainer.fit(X[:10], Y[:9])
    trainer.fit(X[:100], Y[:100], epochs=1, batch_size=32)
    with pytest.raises(sn.ShapeError, match=r"expects samples of shape \(1, 8, 8\)"):
        sn.evaluate(trainer.net, X[:10].reshape(10, 64), Y[:10])
