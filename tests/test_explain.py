"""``scratchnet explain``: the network as the book draws it (the engine's chains of
operations, with one batch's shapes), each choice in a sentence, the pitfalls from the
rule table; golden text of the shipped configs at 80 columns, ``--json``, and a huge
network explained without allocating it."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, run_in_terminal, run_main, write_config

from scratchnet.config import load_config
from scratchnet.experiment import plan_experiment
from scratchnet.explain import RULES, LayerView, explain, make_setup
from scratchnet.explain.choices import choices, g
from scratchnet.explain.network import network
from scratchnet.explain.rules import LONG_SEQUENCE, markdown, pitfalls
from scratchnet.nn import LAYERS
from scratchnet.nn.layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
from scratchnet.nn.recurrent import GRU, LSTM, RECURRENT_LAYERS, RNN, Embedding

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "make_explain_golden", ROOT / "tests" / "golden" / "explain" / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)
SHIPPED = make_golden.shipped()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- the engine's chains ---------------------------------------------------------------------
#: one or more layers of every type of the registries, with the sample shape they take
EXAMPLES = [
    ("dense", lambda: Dense(5, "tanh", dropout=0.3), (7,)),
    ("dense", lambda: Dense(5, "relu", batch_norm=True), (7,)),
    ("dense", lambda: Dense(5, "linear"), (4, 7)),  # at every step of a sequence
    ("conv2d", lambda: Conv2D(4, 3, activation="relu", batch_norm=True, dropout=0.2,
                              flatten=True), (2, 6, 6)),
    ("conv2d", lambda: Conv2D(4, 3, stride=2, padding="valid"), (2, 7, 7)),
    ("max_pool2d", lambda: MaxPool2D(2), (2, 6, 6)),
    ("avg_pool2d", lambda: AvgPool2D(2, stride=1), (2, 5, 5)),
    ("flatten", lambda: Flatten(), (2, 3, 3)),
    ("rnn", lambda: RNN(4, activation="relu"), (5, 3)),
    ("lstm", lambda: LSTM(4, return_sequences=False, dropout=0.2), (5, 3)),
    ("gru", lambda: GRU(4), (5, 3)),
    ("embedding", lambda: Embedding(11, 4), (5,)),
]


def test_every_layer_type_has_an_example():
    assert {kind for kind, _, _ in EXAMPLES} == set(LAYERS) | set(RECURRENT_LAYERS)


@pytest.mark.parametrize("kind, make, shape", EXAMPLES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(EXAMPLES)])
def test_a_layers_chain_is_what_it_builds(kind, make, shape):
    """Layer.chain, read without building, names the operations build makes, in order,
    with their parameters' shapes and the shape each outputs (a forward pass says)."""
    layer = make()
    chain = layer.chain(shape)
    layer.build(shape, np.random.default_rng(0), "float64", np.random.default_rng(1))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 11, (3, *shape)) if kind == "embedding" else rng.normal(size=(3, *shape))
    out = layer.forward(x)
    assert [type(op) for op in layer.operations] == [c.operation for c in chain]
    for op, planned in zip(layer.operations, chain, strict=True):
        # a layer applied at every step runs (batch * time, features) rows inside
        assert op.output.shape in ((3, *planned.shape), (3 * shape[0], *planned.shape[1:]))
        assert {p.name: p.shape for p in op.params()} == planned.params
    assert chain[-1].shape == layer.output_shape(shape) == out.shape[1:]
    assert sum(math.prod(s) for c in chain for s in c.params.values()) == \
        layer.param_count(shape)


# -- golden text -------------------------------------------------------------------------------
def _explain_here(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", str(make_golden.COLUMNS))
    return run_main(capsys, "explain", *args)


def test_the_golden_files_are_the_shipped_configs():
    """One file per shipped config that needs no data file of the user's (the boston
    examples do), and no other."""
    assert len(SHIPPED) >= 20 and not any(p.stem.startswith("boston") for p in SHIPPED)
    assert set(make_golden.HERE.glob("*.txt")) == {make_golden.golden(p) for p in SHIPPED}


def _needs_corpus(config: Path) -> bool:
    """A config of the book's text, which explain reads (for its vocabulary): it is in
    ``$SCRATCHNET_DATA_DIR/text`` (CI), else the test skips."""
    shared = os.environ.get("SCRATCHNET_DATA_DIR")
    present = bool(shared) and (Path(shared) / "text" / "dlfs_input.txt").is_file()
    return "source: dlfs" in config.read_text() and not present


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.stem)
def test_explain_prints_the_golden_text(config, capsys, monkeypatch):
    """What explain prints now is the reviewed text (make it again with
    tests/golden/explain/make_golden.py and read the diff); it fits 80 columns."""
    if _needs_corpus(config):
        pytest.skip("the book's text corpus not available (set SCRATCHNET_DATA_DIR)")
    rc, out, err = _explain_here(capsys, monkeypatch, config.relative_to(ROOT))
    assert rc == 0, err
    assert all(len(line) <= 80 for line in out.splitlines())
    assert out == make_golden.golden(config).read_text(encoding="utf-8")


def test_the_command_prints_the_golden_text_at_80_columns():
    rc, out, err = run_cli(["explain", "configs/mnist_tanh.yaml"], ROOT, env={"COLUMNS": "80"})
    assert rc == 0 and not err, err
    assert out == (make_golden.HERE / "mnist_tanh.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("columns", [60, 132])
def test_in_a_terminal_it_fits_the_width_up_to_80(columns):
    """In a narrow terminal the text wraps at its width (at word boundaries); a wide one
    gets the 80-column text, whose lines prose is read in."""
    rc, text = run_in_terminal(["explain", ROOT / "configs" / "mnist_best.yaml"], ROOT,
                               columns=columns)
    assert rc == 0, text
    lines = [line.rstrip() for line in ANSI.sub("", text).replace("\r", "").split("\n")]
    assert max(map(len, lines)) <= min(columns, 80)
    golden = (make_golden.HERE / "mnist_best.txt").read_text(encoding="utf-8")
    if columns >= 80:
        assert "\n".join(lines).strip() == golden.strip()
    else:  # the sentences wrap between words: every word of them is whole
        def words(text):
            return text.split("The choices")[1].split("Pitfalls")[0].split()
        assert set(words(golden)) <= set(words("\n".join(lines)))


def test_the_readme_shows_what_explain_prints():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- make docs: scratchnet explain configs/mnist_tanh.yaml -->\n```text\n"
    assert marker in readme
    block = readme.split(marker, 1)[1].split("```", 1)[0]
    assert block == (make_golden.HERE / "mnist_tanh.txt").read_text(encoding="utf-8")


# -- --json ------------------------------------------------------------------------------------
def test_json_is_one_object_of_layers_choices_and_pitfalls(capsys, monkeypatch):
    rc, out, err = _explain_here(capsys, monkeypatch, "configs/digits_cnn.yaml", "--json",
                                 "--set", "data.validation=test")
    assert rc == 0, err
    result = json.loads(out)
    net = result["network"]
    assert net["input"]["shape"] == [32, 1, 8, 8]
    assert [layer["chain"] for layer in net["layers"]][:3] == [
        "Conv2D -> ChannelBiasAdd -> ReLU", "MaxPool2D", "Conv2D -> BatchNorm2D -> ReLU"]
    conv = net["layers"][2]["operations"]
    assert conv[0]["params"] == {"W": [16, 8, 3, 3]} and conv[0]["shape"] == [32, 16, 4, 4]
    assert conv[1]["params"] == {"gamma": [16], "beta": [16]}
    assert all(op["shape"][0] == 32 for layer in net["layers"] for op in layer["operations"])
    assert sum(layer["params"] for layer in net["layers"]) == net["params"] == 9818
    assert {"data", "weights", "dropout", "loss", "optimizer", "learning rate", "batches",
            "evaluation", "dtype", "seed"} == {c["topic"] for c in result["choices"]}
    assert [p["id"] for p in result["pitfalls"]] == ["validation-on-test"]
    assert result["pitfalls"][0]["key"] == "data.validation"


def test_a_broken_config_is_one_line_and_exit_2(tmp_path):
    bad = write_config(tmp_path, "bad", model={"layers": [{"neurons": 0}]})
    rc, out, err = run_cli(["explain", bad], tmp_path)
    assert rc == 2 and not out
    assert len(err.strip().splitlines()) == 1 and "neurons" in err and "Traceback" not in err


# -- the choices ---------------------------------------------------------------------------------
def _setup(tmp_path, *overrides, **sections):
    cfg = load_config(write_config(tmp_path, "x", **sections), list(overrides))
    return make_setup(cfg, plan_experiment(cfg))


def _text(setup, topic: str) -> str:
    return " ".join(c.text for c in choices(setup) if c.topic == topic)


def test_the_sentences_hold_this_configs_numbers(tmp_path):
    setup = _setup(tmp_path, "optimizer.lr=0.15", "optimizer.decay.type=linear",
                   "optimizer.decay.final_lr=0.05", "train.epochs=50", "train.batch_size=60",
                   "model.layers.0.dropout=0.2")
    assert "2/(64+16) = 0.025" in _text(setup, "weights")  # glorot on 64 -> 16
    assert "1/(1-0.9) = 10 steps" in _text(setup, "optimizer")
    assert "0.15 at epoch 1, 0.101 at epoch 25 and 0.05 at epoch 50" in \
        _text(setup, "learning rate")
    assert "scaled by 1/0.8 = 1.25" in _text(setup, "dropout")
    n = setup.plan.n_train
    assert f"{n:,} training rows make {math.ceil(n / 60)} steps an epoch" in \
        _text(setup, "batches")


@pytest.mark.parametrize("x, shown", [(2e-05, "2e-5"), (1 / (1 - 0.999), "1,000"),
                                      (0.0022909507, "0.00229"), (45000, "45,000"), (1.8, "1.8")])
def test_numbers_are_written_as_people_write_them(x, shown):
    assert g(x) == shown


# -- the pitfall rules ---------------------------------------------------------------------------
#: for every rule of the table but the RNN's (below): --set overrides of the tiny digits
#: config that walk into it, and close ones that do not
CASES = {
    "saturating-init": (["model.layers.0.weight_init=standard"], []),
    "relu-standard-init": (["model.layers.0.activation=relu",
                            "model.layers.0.weight_init=standard"],
                           ["model.layers.0.activation=relu", "model.layers.0.weight_init=he"]),
    "sigmoid-mse-classes": (["model.loss=mse", "model.layers.1.activation=sigmoid"],
                            ["model.loss=mse"]),
    "squashed-scores": (["model.layers.1.activation=sigmoid"],
                        ["model.layers.0.activation=sigmoid"]),
    "dropout-above-half": (["model.layers.0.dropout=0.8"], ["model.layers.0.dropout=0.5"]),
    "dropout-on-output": (["model.layers.1.dropout=0.1"], ["model.layers.0.dropout=0.1"]),
    "rate-ends-above-start": (["train.epochs=3", "optimizer.decay.warmup_epochs=1"],
                              ["train.epochs=3", "optimizer.decay.warmup_epochs=1",
                               "optimizer.decay.type=linear", "optimizer.decay.final_lr=0.01"]),
    "final-lr-without-decay": (["optimizer.decay.final_lr=0.05"],
                               ["optimizer.decay.type=linear", "optimizer.decay.final_lr=0.05"]),
    "decay-barely-decays": (["optimizer.decay.type=exponential",
                             "optimizer.decay.final_lr=0.095"],
                            ["optimizer.decay.type=exponential",
                             "optimizer.decay.final_lr=0.01"]),
    "sgd-without-momentum": (["optimizer.name=sgd", "optimizer.momentum=null"],
                             ["optimizer.name=nesterov"]),
    "validation-on-test": (["data.validation=test"], ["data.validation=0.2"]),
    "batch-size-one": (["train.batch_size=1"], ["train.batch_size=2"]),
    "one-step-per-epoch": (["train.batch_size=5000"], ["train.batch_size=1000"]),
    "patience-one-every-epoch": (["train.early_stopping=true", "train.epochs=5"],
                                 ["train.early_stopping=true", "train.epochs=5",
                                  "train.eval_every=2"]),
    "unscaled-inputs": (["data.scale=none"], ["data.scale=minmax"]),
}


def _ids(setup) -> list[str]:
    return [rule.id for rule, _ in pitfalls(setup)]


def test_every_rule_is_tested_and_the_base_config_walks_into_none(tmp_path):
    assert set(CASES) | {"rnn-long-sequences"} == {r.id for r in RULES}
    assert len({r.id for r in RULES}) == len(RULES)
    assert _ids(_setup(tmp_path)) == []


@pytest.mark.parametrize("rule", CASES)
def test_a_rule_finds_its_pitfall_and_only_there(rule, tmp_path):
    walks_in, steers_clear = CASES[rule]
    assert rule in _ids(_setup(tmp_path, *walks_in))
    assert rule not in _ids(_setup(tmp_path, *steers_clear))


def test_findings_hold_this_configs_numbers(tmp_path):
    found = dict((r.id, f) for r, f in pitfalls(_setup(
        tmp_path, "model.layers.0.weight_init=standard", "model.layers.1.activation=sigmoid",
        "model.layers.0.dropout=0.8", "optimizer.momentum=0")))
    assert found["saturating-init"].key == "model.layers.0.weight_init"
    assert "sqrt(64) = 8 wide" in found["saturating-init"].text
    # a softmax over 10 scores in (0, 1): at best e / (e + 9)
    assert f"{math.e / (math.e + 9):.0%}" in found["squashed-scores"].text
    assert "write dropout: 0.2" in found["dropout-above-half"].text
    assert "sgd-without-momentum" in found  # sgd_momentum with momentum 0 is plain SGD


def _with_layer(setup, index: int, kind: str, layer, inputs):
    view = LayerView(index, kind, layer, inputs, layer.output_shape(inputs),
                     layer.param_count(inputs), layer.chain(inputs))
    setup.layers[index] = view
    return setup


@pytest.mark.parametrize("kind, layer, steps, found", [
    ("rnn", RNN(32), LONG_SEQUENCE, True), ("rnn", RNN(32), LONG_SEQUENCE - 1, False),
    ("lstm", LSTM(32), 4 * LONG_SEQUENCE, False), ("gru", GRU(32), 4 * LONG_SEQUENCE, False)])
def test_a_plain_rnn_over_long_sequences(tmp_path, kind, layer, steps, found):
    """Written against the layer type `rnn` and the time steps of its input in the plan:
    either side of the threshold, on a setup made by hand."""
    setup = _with_layer(_setup(tmp_path), 0, kind, layer, (steps, 8))
    assert ("rnn-long-sequences" in _ids(setup)) is found
    if found:
        finding = next(f for r, f in pitfalls(setup) if r.id == "rnn-long-sequences")
        assert finding.key == "model.layers.0.type" and f"over {steps} time steps" in finding.text


@pytest.mark.parametrize("config, found", [("adding_rnn", True), ("adding_lstm", False)])
def test_the_shipped_adding_rnn_walks_into_the_long_sequence_rule(config, found, tmp_path):
    """The shipped plain RNN over the adding problem's 50 steps, through the command line:
    the rule names the layer's type key and the steps; the LSTM beside it is not named."""
    rc, out, err = run_cli(["explain", ROOT / "configs" / f"{config}.yaml", "--json"], tmp_path)
    assert rc == 0, err
    hits = [p for p in json.loads(out)["pitfalls"] if p["id"] == "rnn-long-sequences"]
    assert bool(hits) is found
    if found:
        assert hits[0]["key"] == "model.layers.0.type"
        assert "a plain RNN over 50 time steps" in hits[0]["finding"]


def test_recurrent_layers_are_drawn_with_their_gates(tmp_path):
    from rich.console import Console

    from scratchnet.cli.explain import render

    setup = _setup(tmp_path)
    setup = _with_layer(setup, 0, "lstm", LSTM(16, weight_init="standard"), (30, 64))
    assert "saturating-init" in _ids(setup)
    net = network(setup)
    lstm = net["layers"][0]["operations"][0]
    assert lstm["operation"] == "LSTM" and lstm["shape"] == [64, 30, 16]
    assert lstm["params"] == {"W_x": [64, 64], "W_h": [16, 64], "B": [1, 64]}
    assert any("sigmoid" in e and "tanh" in e for e in lstm["equations"])
    assert net["axes"] == "batch x time x features"
    console = Console(file=io.StringIO(), width=80, color_system=None)
    for part in render({"name": "lstm", "network": net, "choices": [], "pitfalls": []}):
        console.print(part)
    text = console.file.getvalue()
    assert "c_t = f * c_{t-1} + i * g" in text and max(map(len, text.splitlines())) <= 80


# -- no weights ----------------------------------------------------------------------------------
def test_a_huge_network_is_explained_without_its_weights(tmp_path, monkeypatch):
    """2.5 billion parameters (10 GB of float32): explain takes no more memory than a small
    network's, since nothing is built (the memory check is set aside for the test)."""
    import scratchnet.experiment.plan as plan_module

    monkeypatch.setattr(plan_module, "physical_memory", lambda: 1 << 60)
    path = write_config(tmp_path, "huge", data={"dataset": "mnist"},
                        model={"layers": [{"neurons": 50_000}, {"neurons": 50_000},
                                          {"neurons": 10}]})
    cfg = load_config(path)
    tracemalloc.start()
    start = time.perf_counter()
    result = explain(cfg, plan_experiment(cfg))
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result["network"]["params"] == 785 * 50_000 + 50_001 * 50_000 + 50_001 * 10
    assert peak < 20 * 2**20 and seconds < 10
    assert any("GiB" in c["text"] for c in result["choices"] if c["topic"] == "dtype")


def test_a_network_too_large_for_the_machine_is_refused_at_once(tmp_path):
    path = write_config(tmp_path, "huger", data={"dataset": "mnist"},
                        model={"layers": [{"neurons": 2_000_000}, {"neurons": 10}]})
    rc, out, err = run_cli(["explain", path], tmp_path, timeout=60)
    assert rc == 2 and "training would need about" in err and "Traceback" not in err


# -- the docs ------------------------------------------------------------------------------------
def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_points_at_a_section_that_exists(rule):
    page, _, anchor = rule.docs.partition("#")
    assert (ROOT / page).is_file(), rule.docs
    assert anchor in _anchors(ROOT / page), rule.docs
    assert rule.id in _anchors(ROOT / "docs" / "explain.md")


def test_the_docs_list_the_rules_of_the_table():
    page = (ROOT / "docs" / "explain.md").read_text(encoding="utf-8")
    marker = "<!-- make docs: python -m scratchnet.explain -->\n"
    assert marker in page
    assert page.split(marker, 1)[1].split("<!-- /make docs -->")[0] == markdown()
