"""Property-based tests of the config loader: whatever document or ``--set`` option it is
given, it either loads or raises :class:`ConfigError` (which the CLI shows as one line and
exit 2), never another exception. And what loads can be written to a run folder and read
back unchanged, since ``train`` writes the resolved config and ``eval`` reads it.

Documents come from three sources: random nested data dumped with YAML, raw random text
(YAML punctuation, tags, anchors and aliases included), and random mutations of a valid
experiment. Each test draws 500 examples.
"""

from __future__ import annotations

import copy
import math

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scratchnet.config import (ExperimentConfig, apply_override, load_config, parse_override,
                               parse_yaml, validate)
from scratchnet.errors import ConfigError

#: thousands of generated documents, each through the real config loading: the long end
pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

#: a valid experiment that uses every section, so mutations reach every validator
VALID = {
    "name": "fuzz",
    "seed": 3,
    "data": {"dataset": "digits", "scale": "standard", "validation": 0.1, "test_fraction": 0.2},
    "model": {"layers": [{"neurons": 16, "activation": "tanh", "weight_init": "glorot",
                          "bias_init": "zeros", "dropout": 0.1, "batch_norm": False},
                         {"neurons": 10, "activation": {"name": "leaky_relu"}}],
              "loss": "softmax_cross_entropy"},
    "optimizer": {"name": "sgd_momentum", "lr": 0.1, "momentum": 0.9,
                  "decay": {"type": "linear", "final_lr": 0.01}},
    "train": {"epochs": 3, "batch_size": 32, "eval_every": 1, "dtype": "float32",
              "early_stopping": {"patience": 2, "min_delta": 0.0, "restore_best": True},
              "checkpoint_every": 1},
    "sweep": {"grid": {"optimizer.lr": [0.1, 0.01]}, "seeds": 2},
}

#: key names the schema knows, so generated documents often reach deep validators
KNOWN_KEYS = sorted({"name", "seed", "data", "dataset", "path", "target", "task", "scale",
                     "validation", "test_fraction", "model", "layers", "neurons", "activation",
                     "weight_init", "bias_init", "dropout", "batch_norm", "loss", "optimizer",
                     "lr", "momentum", "beta1", "beta2", "rho", "eps", "weight_decay",
                     "clip_norm", "decay", "type", "final_lr", "step_size", "gamma", "factor",
                     "patience", "min_lr", "warmup_epochs", "train", "epochs", "batch_size",
                     "eval_every", "early_stopping", "min_delta", "restore_best", "dtype",
                     "checkpoint_every", "sweep", "grid", "seeds"})
#: values the validators care about: registry names, special strings, odd numbers
KNOWN_VALUES = ["digits", "iris", "csv", "mnist", "tanh", "relu", "linear", "sigmoid",
                "glorot", "he", "zeros", "normal", "softmax_cross_entropy",
                "mean_squared_error", "sgd", "sgd_momentum", "linear", "exponential", "step",
                "plateau", "cosine", "float32", "float64", "float16", "test", "standard",
                "none", "~", "~nosuchuser/x.csv", "a\x00b.csv", "x" * 300, "../..", "",
                ".hidden", "classification", "regression"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(KNOWN_VALUES))
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers(-2, 5),
                 st.booleans(), st.none())
nested = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(keys, children, max_size=5)),
    max_leaves=25)

#: YAML syntax, tags and anchors, so raw text reaches the parser's error paths
YAML_BITS = [": ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b",
             "!!python/object/apply:os.system ",
             "!!python/name:os.system", "!!binary ", "!!set ", "!!omap ", "!!float ", "!!int ",
             "!!timestamp ", "? ", "|\n", ">\n", "'", '"', "#", "%YAML 1.1\n", "---\n", "...\n",
             "\n", "\n  ", "\t", "<<: ", "model", "layers", "neurons", "train", "epochs",
             "1e400", ".nan", "-.inf", "0x1F", "2001-12-14", "yes", "null", "\\u0000", "\x00",
             "\ufeff", "é"]
raw_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(YAML_BITS) | st.text(max_size=4), max_size=40).map("".join))


def loads_or_config_error(fn, *args, **kwargs):
    """Call ``fn``; a ConfigError is an accepted outcome, any other exception fails the
    test. Returns the result, or None after a ConfigError."""
    try:
        return fn(*args, **kwargs)
    except ConfigError as e:
        assert str(e).strip(), "a ConfigError must say what is wrong"
        return None


def round_trips(cfg: ExperimentConfig) -> None:
    """What ``train`` writes into the run folder, ``eval`` reads back as the same config."""
    resolved = cfg.to_dict()
    text = yaml.safe_dump(resolved, sort_keys=False)
    again = validate(parse_yaml(text, "config.yaml"), "config.yaml")
    assert again.to_dict() == resolved
    assert again.digest() == cfg.digest()


@pytest.fixture(scope="module")
def doc_path(tmp_path_factory):
    """One file rewritten by every example (load_config reads files)."""
    return tmp_path_factory.mktemp("fuzz") / "experiment.yaml"


def check_document(text: str, path) -> ExperimentConfig | None:
    """The three entry points on one document: parse_yaml, validate, load_config."""
    raw = loads_or_config_error(parse_yaml, text, "doc.yaml")
    if raw is not None:
        assert isinstance(raw, dict)
        loads_or_config_error(validate, raw, "doc.yaml", text)
    path.write_text(text, encoding="utf-8")
    cfg = loads_or_config_error(load_config, path)
    if cfg is not None:
        round_trips(cfg)
    return cfg


def test_the_valid_base_loads(doc_path):
    """The base of the mutations is valid, so mutations start from something that loads."""
    cfg = check_document(yaml.safe_dump(VALID, sort_keys=False), doc_path)
    assert cfg is not None and cfg.name == "fuzz"


@FUZZ
@given(data=nested)
@example(data={"model": {"layers": [{"neurons": 10}]}})
@example(data=[1, 2])
@example(data=None)
def test_generated_documents(doc_path, data):
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    check_document(text, doc_path)


@FUZZ
@given(text=raw_text)
@example(text="model: !!python/object/apply:os.system ['echo hacked']\n")
@example(text="a: &a [*a]\nmodel: {layers: [{neurons: 1}]}\n")
@example(text="\n".join(["model: {layers: [{neurons: 1}]}", "sweep:", "  grid:",
                         "    a0: &a0 [1,1,1,1,1,1,1,1,1,1]"]
                        + [f"    a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]"
                           for i in range(1, 9)]))
@example(text="[" * 5000)
def test_raw_text(doc_path, text):
    check_document(text, doc_path)


def _paths(node, prefix=()):
    """Every key path in a nested document (list items by index)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


VALID_PATHS = [p for p in _paths(VALID) if p]


@st.composite
def mutated(draw):
    """The valid experiment with 1-3 random edits: a value replaced, a key deleted, an
    unknown key added, or a value wrapped in a list."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(VALID_PATHS))
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            if not isinstance(parent, (dict, list)):
                raise TypeError  # a string or number an earlier edit put here
            current = parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this part
        op = draw(st.sampled_from(["replace", "delete", "add", "wrap", "known"]))
        if op == "replace":
            parent[path[-1]] = draw(nested)
        elif op == "known":
            parent[path[-1]] = draw(st.sampled_from(KNOWN_VALUES) | scalars)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(current, dict):
            current[draw(keys)] = draw(nested)
        elif op == "wrap":
            parent[path[-1]] = [current]
    return doc


@FUZZ
@given(doc=mutated())
def test_mutations_of_a_valid_config(doc_path, doc):
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    check_document(text, doc_path)


key_part = st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(["0", "1", "7", "-1", ""]),
                     st.text(max_size=6))
key_path = st.lists(key_part, min_size=0, max_size=5).map(".".join)
override_value = st.one_of(st.sampled_from(KNOWN_VALUES), raw_text,
                           nested.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()))


@FUZZ
@given(items=st.lists(st.one_of(st.tuples(key_path, override_value)
                                .map(lambda kv: f"{kv[0]}={kv[1]}"),
                                st.text(max_size=30)), min_size=1, max_size=3))
@example(items=["data.dataset=csv", "data.path=~nosuchuser/x.csv"])
@example(items=["data.dataset=csv", "data.path=" + "x" * 300 + ".csv"])
@example(items=["data.dataset=csv", "data.path=a\x00b.csv"])
@example(items=["model.layers.5.neurons=3"])
@example(items=["model.layers.0.neurons.deeper=3"])
@example(items=["sweep.grid.x=&a [1, *a]"])
def test_set_overrides(doc_path, items):
    """Random ``--set KEY=VALUE`` options on a valid file: through the same functions the
    CLI uses (parse_override, apply_override, validate), and through load_config."""
    raw = copy.deepcopy(VALID)
    applied = True
    for item in items:
        parsed = loads_or_config_error(parse_override, item)
        if parsed is None:
            applied = False
            break
        parts, value = parsed
        try:
            apply_override(raw, parts, value)
        except ConfigError:
            applied = False
            break
    if applied:
        cfg = loads_or_config_error(validate, raw, "doc.yaml")
        if cfg is not None:
            round_trips(cfg)
    doc_path.write_text(yaml.safe_dump(VALID, sort_keys=False), encoding="utf-8")
    cfg = loads_or_config_error(load_config, doc_path, items)
    if cfg is not None:
        round_trips(cfg)
        assert all(math.isfinite(v) for v in (cfg.optimizer.lr, cfg.data.test_fraction))
