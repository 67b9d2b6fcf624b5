"""Text generation from a character model, and the inference-state API it stands on.

The reference for carrying state is independent of it: the network run layer by layer
over the whole text so far, from zeros, every time (quadratic, and exactly what carrying
the state must reproduce).
"""

from __future__ import annotations

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.data import TextOptions, Vocabulary, load_text
from scratchnet.data.text import UNKNOWN_CHAR
from scratchnet.errors import ConfigError, ShapeError
from scratchnet.generate import MAX_CHARACTERS, generate, infer, most_likely_next

PERIOD = "hello world! "
RECURRENT = [sn.RNN, sn.LSTM, sn.GRU]


def _from_zeros(net, ids) -> np.ndarray:
    """The network's output over ``ids`` (batch, time), from zero states: its layers'
    own forward passes, at any length."""
    x = np.asarray(ids)
    for layer in net.layers:
        x = layer.forward(x, inference=True)
    return x


def _model(vocabulary: Vocabulary, cls=sn.LSTM, seed=0, **options) -> sn.NeuralNetwork:
    V = vocabulary.size
    return sn.NeuralNetwork([sn.Embedding(V, 6), cls(12, **options), cls(10), sn.Dense(V)],
                            "softmax_cross_entropy", seed=seed, dtype="float64").build((5,))


def _assert_greedy(net, prime: str, text: str, vocabulary: Vocabulary) -> None:
    """Each character of ``text`` is the likeliest after ``prime`` and those before it,
    by the network run from zeros over all of them; a step whose two likeliest are
    within 1e-6 of each other may go either way (a temperature near 0 is not 0)."""
    for i, char in enumerate(text):
        scores = _from_zeros(net, vocabulary.encode(prime + text[:i])[None])
        scores = (scores[0, -1] if scores.ndim == 3 else scores[0])[:vocabulary.unknown]
        best = np.sort(scores)[::-1]
        chosen = scores[vocabulary.chars.index(char)]
        assert chosen == best[0] or best[0] - chosen < 1e-6, (i, char, best[:2])


VOCABULARY = Vocabulary(tuple("abcdefgh"))


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A small LSTM trained until it has learnt a periodic text by heart."""
    path = tmp_path_factory.mktemp("text") / "period.txt"
    path.write_text(PERIOD * 40)
    data = load_text(TextOptions(path=str(path), seq_len=len(PERIOD), validation=0, test=0,
                                 stride=1))
    V = data.vocabulary.size
    net = sn.NeuralNetwork([sn.Embedding(V, 8), sn.LSTM(32), sn.Dense(V)],
                           "softmax_cross_entropy", seed=0)
    sn.Trainer(net, sn.Adam(0.02)).fit(data.X_train, data.Y_train, epochs=20, eval_every=20,
                                       batch_size=64, seed=0)
    return net, data


# -- the inference-state API ---------------------------------------------------------------------
@pytest.mark.parametrize("cls", RECURRENT)
def test_infer_carries_the_state_from_call_to_call(cls):
    layer = cls(5)
    layer.build((7, 3), np.random.default_rng(0), np.float64, np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((2, 7, 3))
    whole, final = layer.infer(x)
    first, state = layer.infer(x[:, :4])
    rest, end = layer.infer(x[:, 4:], state)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-14)
    np.testing.assert_allclose(whole, layer.forward(x, inference=True), atol=0)
    for k in final:
        np.testing.assert_allclose(end[k], final[k], atol=1e-14)
    np.testing.assert_allclose(final["h"], whole[:, -1], atol=0)


@pytest.mark.parametrize("cls", RECURRENT)
def test_infer_leaves_the_carried_training_state_alone(cls):
    net = sn.NeuralNetwork([cls(4, stateful=True), sn.Dense(2)], "mse", seed=0).build((3, 2))
    rng = np.random.default_rng(3)
    net.train_batch(rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2)))
    carried = net.layers[0].state_dict()
    out, state = net.layers[0].infer(rng.standard_normal((2, 3, 2)), carried)
    assert not np.array_equal(state["h"], carried["h"])
    for k, v in net.layers[0].state_dict().items():
        np.testing.assert_array_equal(v, carried[k])


def test_infer_checks_the_state_it_is_given():
    layer = sn.LSTM(4)
    with pytest.raises(ShapeError, match="used before it was built"):
        layer.infer(np.zeros((1, 2, 3)))
    layer.build((2, 3), np.random.default_rng(0), np.float32)
    x = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"has the arrays \['c', 'h'\], got \['h'\]"):
        layer.infer(x, {"h": np.zeros((2, 4))})
    with pytest.raises(ShapeError, match=r"a state of 3 rows for a batch of 2"):
        layer.infer(x, {"h": np.zeros((3, 4)), "c": np.zeros((3, 4))})


def test_the_network_infers_any_length_in_pieces():
    net = _model(VOCABULARY)
    ids = np.random.default_rng(4).integers(0, VOCABULARY.size, (3, 11))
    out, states = infer(net, ids[:, :6])
    rest, _ = infer(net, ids[:, 6:], states)
    np.testing.assert_allclose(np.concatenate([out, rest], axis=1), _from_zeros(net, ids),
                               rtol=1e-5, atol=1e-6)
    assert states[0] is None and states[-1] is None and set(states[1]) == {"h", "c"}


# -- generation ----------------------------------------------------------------------------------
def test_a_memorised_text_is_generated_back(memorised):
    net, data = memorised
    text = generate(net, data.vocabulary, length=3 * len(PERIOD), temperature=0.3,
                    prime="hel", seed=0)
    assert text == (PERIOD * 4)[3:3 + 3 * len(PERIOD)]
    ranked = most_likely_next(net, data.vocabulary, "hello wor", k=3)
    assert ranked[0][0] == "l" and ranked[0][1] > 0.9
    assert [c for c, _ in ranked] == [c for c, _ in sorted(ranked, key=lambda r: -r[1])]


@pytest.mark.parametrize("cls", RECURRENT)
def test_a_cold_sample_is_the_greedy_path_computed_from_scratch(cls):
    """At a temperature near 0 each character is the likeliest: what the network, run
    over the whole text so far from zeros, scores highest."""
    net = _model(VOCABULARY, cls, seed=5)
    text = generate(net, VOCABULARY, length=25, temperature=1e-9, prime="abcabd", seed=0)
    _assert_greedy(net, "abcabd", text, VOCABULARY)
    assert len(set(text)) > 1


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    net = _model(VOCABULARY, seed=6)
    a = generate(net, VOCABULARY, 60, 2.0, "ab", seed=1)
    assert a == generate(net, VOCABULARY, 60, 2.0, "ab", seed=1)
    assert a != generate(net, VOCABULARY, 60, 2.0, "ab", seed=2)
    assert len(a) == 60 and set(a) <= set(VOCABULARY.chars)


def test_the_unknown_id_is_never_generated_nor_proposed():
    net = _model(VOCABULARY, seed=7)
    net.layers[-1].params()[-1].value[0, VOCABULARY.unknown] = 50.0  # its favourite
    text = generate(net, VOCABULARY, 200, 1.0, "a", seed=0)
    assert UNKNOWN_CHAR not in text and len(text) == 200
    ranked = most_likely_next(net, VOCABULARY, "ab", k=100)
    assert [c for c, _ in ranked if c == UNKNOWN_CHAR] == []
    assert len(ranked) == len(VOCABULARY.chars)


def test_an_empty_prime_starts_from_a_drawn_character_and_an_unseen_one_reads_as_unknown():
    net = _model(VOCABULARY, seed=8)
    text = generate(net, VOCABULARY, 10, 1.0, "", seed=3)
    assert len(text) == 10 and text[0] in VOCABULARY.chars
    assert len(generate(net, VOCABULARY, 5, 1.0, "zz\u00e9", seed=0)) == 5
    assert generate(net, VOCABULARY, 0, 1.0, "ab") == ""


@pytest.mark.parametrize("call, error, message", [
    (lambda net: generate(net, VOCABULARY, temperature=0), ConfigError,
     "temperature must be > 0, got 0"),
    (lambda net: generate(net, VOCABULARY, length=-1), ConfigError, "length must be an integer"),
    (lambda net: generate(net, VOCABULARY, length=MAX_CHARACTERS + 1), ConfigError,
     "length must be at most 100,000 characters"),
    (lambda net: generate(net, VOCABULARY, prime="a" * (MAX_CHARACTERS + 1)), ConfigError,
     "a prefix of 100,001 characters is longer than the 100,000"),
    (lambda net: most_likely_next(net, VOCABULARY, ""), ConfigError,
     "needs a prefix of at least one character"),
    (lambda net: most_likely_next(net, VOCABULARY, "a", k=0), ConfigError,
     "k must be a positive integer, got 0"),
    (lambda net: generate(net, Vocabulary(tuple("abc"))), ShapeError,
     "the network reads 9 ids and scores 9; the vocabulary has 4"),
])
def test_bad_arguments_are_one_line(call, error, message):
    with pytest.raises(error, match=message) as e:
        call(_model(VOCABULARY))
    assert "\n" not in str(e.value)


def test_only_a_built_character_model_generates():
    V = VOCABULARY.size
    unbuilt = sn.NeuralNetwork([sn.Embedding(V, 4), sn.GRU(3), sn.Dense(V)],
                               "softmax_cross_entropy")
    with pytest.raises(ShapeError, match="needs a built network"):
        generate(unbuilt, VOCABULARY)
    no_embedding = sn.NeuralNetwork([sn.GRU(3), sn.Dense(V)], "softmax_cross_entropy",
                                    seed=0).build((4, V))
    with pytest.raises(ConfigError, match="whose first layer is an embedding; this network "
                                          "starts with GRU"):
        generate(no_embedding, VOCABULARY)
    regression = sn.NeuralNetwork([sn.Embedding(V, 4), sn.GRU(3), sn.Dense(V)], "mse",
                                  seed=0).build((4,))
    with pytest.raises(ConfigError, match="trained with softmax_cross_entropy, got mse"):
        generate(regression, VOCABULARY)


def test_a_model_scoring_only_the_last_step_generates_too():
    V = VOCABULARY.size
    net = sn.NeuralNetwork([sn.Embedding(V, 4), sn.LSTM(6, return_sequences=False),
                            sn.Dense(V)], "softmax_cross_entropy", seed=9,
                           dtype="float64").build((5,))
    text = generate(net, VOCABULARY, 20, 1e-9, "abc", seed=0)
    _assert_greedy(net, "abc", text, VOCABULARY)
