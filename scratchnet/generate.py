"""Text from a trained character model: sampling, and the most likely next characters.

The library part of ``scratchnet generate`` (and of ``predict`` on a text run)::

    from scratchnet.data import Vocabulary
    from scratchnet.generate import generate, most_likely_next

    vocabulary = Vocabulary.from_dict(info["vocabulary"])      # a run's data.json
    generate(net, vocabulary, length=300, temperature=0.8, prime="ROMEO:", seed=0)
    most_likely_next(net, vocabulary, "ROMEO", k=3)            # [(":", 0.91), ...]

(``run_vocabulary(info, run_dir)`` reads it, refusing a run that is not a text run.)

The network is a character model: an :class:`~scratchnet.nn.Embedding` first, reading
ids, and scores over the vocabulary at the last step, trained with softmax cross
entropy. Generation reads the prefix once, then one character at a time, handing each
recurrent layer the state it ended the last call with (:meth:`infer`), so every character
is conditioned on all before it, however long the text grows; the network's own carried
training state is never touched. The unknown id (characters the training text lacked) is
never generated nor proposed: the probabilities are the known characters'.
"""

from __future__ import annotations

import numpy as np

from . import checks
from .data.text import Vocabulary
from .errors import ConfigError, ShapeError
from .nn import Embedding, NeuralNetwork, SoftmaxCrossEntropy
from .nn.losses import softmax

#: the most characters one call generates, and the longest prefix it reads
MAX_CHARACTERS = 100_000

States = list["dict[str, np.ndarray] | None"]


def infer(net: NeuralNetwork, ids: np.ndarray, states: States | None = None
          ) -> tuple[np.ndarray, States]:
    """One inference pass of ``net`` over ``ids`` (batch, time), any number of steps,
    each recurrent layer starting from its entry of ``states`` (None: zeros; the list
    holds one entry per layer, None for the others): ``(output, final states)``."""
    states = list(states) if states is not None else [None] * len(net.layers)
    x = ids
    if net.input_op is not None:
        x = net.input_op.forward(x, inference=True)
    for i, layer in enumerate(net.layers):
        if hasattr(layer, "infer"):  # a recurrent layer: it starts from a state
            x, states[i] = layer.infer(x, states[i])
        else:
            x = layer.forward(x, inference=True)
    return x, states


def _check_model(net: NeuralNetwork, vocabulary: Vocabulary) -> None:
    if not net.built:
        raise ShapeError("text generation needs a built network (load its weights first)")
    if not isinstance(net.layers[0], Embedding):
        raise ConfigError(f"text generation needs a character model, whose first layer is an "
                          f"embedding; this network starts with {net.layers[0].describe()}")
    if not isinstance(net.loss, SoftmaxCrossEntropy):
        raise ConfigError(f"text generation needs a model trained with softmax_cross_entropy, "
                          f"got {net.loss.name or type(net.loss).__name__}")
    width = net.output_shape[-1]
    if width != vocabulary.size or net.layers[0].vocab_size != vocabulary.size:
        raise ShapeError(f"the network reads {net.layers[0].vocab_size} ids and scores "
                         f"{width}; the vocabulary has {vocabulary.size}")


def _read(net: NeuralNetwork, vocabulary: Vocabulary, text: str) -> tuple[np.ndarray, States]:
    """The scores (vocabulary,) for the character after ``text``, and the states after it."""
    if len(text) > MAX_CHARACTERS:
        raise ConfigError(f"a prefix of {len(text):,} characters is longer than the "
                          f"{MAX_CHARACTERS:,} generation reads (generate.MAX_CHARACTERS)")
    out, states = infer(net, vocabulary.encode(text)[None, :])
    return _last(out), states


def _last(out: np.ndarray) -> np.ndarray:
    """The scores of the last step: (1, time, V) for a model scoring every step, (1, V)
    for one that scores the last."""
    return np.asarray(out[0, -1] if out.ndim == 3 else out[0], dtype=np.float64)


def _known(scores: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """The probabilities of ``scores`` among the known characters (the unknown id's is 0;
    left out before the softmax, so that a near-zero temperature still picks the likeliest
    known character when the unknown id scores highest)."""
    scores = scores.copy()
    scores[vocabulary.unknown] = -np.inf
    return softmax(scores)


def generate(net: NeuralNetwork, vocabulary: Vocabulary, length: int = 300,
             temperature: float = 1.0, prime: str = "", seed: int | None = 0) -> str:
    """``length`` characters sampled from ``net``, a character model of ``vocabulary``,
    following ``prime`` (not repeated in the result).

    Each character is drawn from ``softmax(scores / temperature)``: 1 samples the
    model's own distribution, lower is more conservative (towards always the likeliest),
    higher more adventurous. An empty ``prime`` starts from a character drawn uniformly
    from the vocabulary, which is the result's first. The same ``seed``, network and
    arguments give the same text."""
    length = checks.integer(length, "length", 0)
    if length > MAX_CHARACTERS:
        raise ConfigError(f"length must be at most {MAX_CHARACTERS:,} characters, got "
                          f"{length:,}")
    temperature = checks.positive(temperature, "temperature")
    if not isinstance(prime, str):
        raise ConfigError(f"prime must be text, got {prime!r}")
    _check_model(net, vocabulary)
    rng = np.random.default_rng(seed)
    if length == 0:
        return ""
    chosen: list[int] = []
    if not prime:
        chosen.append(int(rng.integers(len(vocabulary.chars))))
        prime = vocabulary.chars[chosen[0]]
    scores, states = _read(net, vocabulary, prime)
    step = np.empty((1, 1), dtype=np.int64)
    while len(chosen) < length:
        p = _known(scores / temperature, vocabulary)
        cumulative = np.cumsum(p)
        chosen.append(int(np.searchsorted(cumulative, rng.random() * cumulative[-1],
                                          side="right")))
        if len(chosen) == length:
            break
        step[0, 0] = chosen[-1]
        out, states = infer(net, step, states)
        scores = _last(out)
    return vocabulary.decode(chosen)


def run_vocabulary(info: dict, run_dir) -> Vocabulary:
    """The vocabulary of a text run's data description (``data.json``); a ConfigError
    naming ``run_dir`` for a run that is not a text run."""
    if info.get("kind") != "text" or not isinstance(info.get("vocabulary"), dict):
        raise ConfigError(f"{run_dir} is not a text run (it learnt {info.get('task')} of rows "
                          "of numbers): this reads a character model, trained on "
                          "dataset: text")
    return Vocabulary.from_dict(info["vocabulary"])


def most_likely_next(net: NeuralNetwork, vocabulary: Vocabulary, prefix: str, k: int = 5
                     ) -> list[tuple[str, float]]:
    """The ``k`` likeliest characters to follow ``prefix``, with their probabilities
    among the known characters (the unknown id left out), likeliest first; at most the
    vocabulary's characters."""
    k = checks.positive_int(k, "k")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f"the next character needs a prefix of at least one character, got "
                          f"{prefix!r}")
    _check_model(net, vocabulary)
    scores, _ = _read(net, vocabulary, prefix)
    p = _known(scores, vocabulary)
    order = np.argsort(-p[:vocabulary.unknown], kind="stable")[:k]
    return [(vocabulary.chars[i], float(p[i])) for i in order]
