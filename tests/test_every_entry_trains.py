"""Every registry entry trains, for one epoch, from an experiment file through the real
``train`` path; and whatever ``validate`` accepts trains, whatever it refuses ``train``
refuses with the same line. A new entry is covered the day it is added: the configs
below are made from the registries, not listed by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import digits_config, text_config
from scratchnet.config import validate
from scratchnet.data import DATASETS, SCALERS, describe_dataset, write_idx
from scratchnet.data import mnist as idx_sets
from scratchnet.errors import ConfigError, DivergenceError
from scratchnet.experiment import plan_experiment, train_experiment
from scratchnet.options import options
from scratchnet.nn import (ACTIVATIONS, BIAS_INITIALIZERS, DTYPES, INITIALIZERS, LAYERS, LOSSES,
                           OPTIMIZERS, SCHEDULES)

MNIST_DIR = Path(os.environ.get("SCRATCHNET_DATA_DIR", "/nonexistent")) / "mnist"


def train_one_epoch(main_here, tmp_path, raw: dict) -> dict:
    path = tmp_path / "entry.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    rc, out, err = main_here("validate", path)
    assert rc == 0, err
    rc, out, err = main_here("train", path, "--set", "train.epochs=1", "--json", "-q",
                             "--out", tmp_path / "runs")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["epochs_run"] == 1
    return summary


def with_layer(**changes) -> dict:
    raw = digits_config(name="entry")
    raw["model"]["layers"][0].update(changes)
    return raw


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, with_layer(activation=name))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_weight_initialiser(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, with_layer(weight_init=name))


@pytest.mark.parametrize("name", BIAS_INITIALIZERS)
def test_every_bias_initialiser(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, with_layer(bias_init=name))


def _loss_config(name: str) -> dict:
    """The loss on the kind of data it is for: two classes for binary cross entropy,
    ten for a classification loss, a regression set for the others."""
    loss = LOSSES[name]
    if loss.targets == "binary":
        dataset, width = "breast_cancer", 1
    elif loss.task == "classification":
        dataset, width = "digits", 10
    else:
        dataset, width = "diabetes", 1
    return digits_config(name="entry", data={"dataset": dataset},
                         model={"layers": [{"neurons": 8, "activation": "tanh"},
                                           {"neurons": width}], "loss": name},
                         optimizer={"lr": 0.01})


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss(main_here, tmp_path, name):
    summary = train_one_epoch(main_here, tmp_path, _loss_config(name))
    assert np.isfinite(summary["test"]["loss"])


@pytest.mark.parametrize("name", [n for n, loss in LOSSES.items() if loss.task is None])
def test_every_loss_that_is_not_only_for_classes_also_learns_one_hot_classes(main_here, tmp_path,
                                                                             name):
    raw = digits_config(name="entry", model={"loss": name}, optimizer={"lr": 0.01})
    assert "accuracy" in train_one_epoch(main_here, tmp_path, raw)["test"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, digits_config(name="entry", optimizer={
        "name": name, "lr": 0.01, "momentum": None}))


def _decay(name: str) -> dict:
    """The schedule with whatever its declaration requires: a final rate, a step size."""
    needs = {"final_lr": 0.001}
    return {"type": name, **{o.name: needs.get(o.name, 1) for o in options(SCHEDULES[name])
                             if o.required and o.name not in ("lr", "epochs")}}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("warmup", [0, 1])
def test_every_schedule(main_here, tmp_path, name, warmup):
    raw = digits_config(name="entry", optimizer={"decay": {**_decay(name),
                                                           "warmup_epochs": warmup}},
                        train={"epochs": 3})
    train_one_epoch(main_here, tmp_path, raw)


@pytest.mark.parametrize("name", SCALERS)
def test_every_scaler(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, digits_config(name="entry", data={"scale": name}))


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype(main_here, tmp_path, name):
    train_one_epoch(main_here, tmp_path, digits_config(name="entry", train={"dtype": name}))


def _fake_idx_set(folder: Path, n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", n), ("t10k", n // 2)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (rows, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz",
                  (np.arange(rows) % 10).astype(np.uint8))
    return folder


def _dataset_config(name: str, tmp_path: Path, monkeypatch) -> dict:
    """A small experiment on dataset ``name`` with the data it needs: real MNIST, a small
    IDX set standing in for Fashion-MNIST (checked for structure only), a CSV file."""
    data = {"dataset": name}
    if name == "mnist":
        if not MNIST_DIR.is_dir():
            pytest.skip("needs MNIST in $SCRATCHNET_DATA_DIR")
        data.update(path=str(MNIST_DIR), scale="global", validation="test")
    elif name in idx_sets.IDX_DATASETS:
        monkeypatch.setitem(idx_sets.CHECKSUMS, name, {})
        data["path"] = str(_fake_idx_set(tmp_path / name))
    elif name == "csv":
        rng = np.random.default_rng(1)
        rows = ["a,b,y"] + [f"{x:.3f},{z:.3f},{int(x + z > 0)}"
                            for x, z in rng.standard_normal((80, 2))]
        (tmp_path / "two.csv").write_text("\n".join(rows) + "\n")
        data.update(path=str(tmp_path / "two.csv"), target="y")
    elif name == "npz":
        rng = np.random.default_rng(2)
        x = rng.standard_normal((90, 5))
        y = (x[:, 0] > 0).astype(np.int64)
        np.savez(tmp_path / "two.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
        data["path"] = str(tmp_path / "two.npz")
    elif name == "text":  # ids: an embedding reads them, a score per character at every step
        return text_config(tmp_path, [{"type": "embedding", "dim": 4}, {"neurons": "auto"}])
    elif name == "adding":
        data.update(length=10, samples=300)
    described = describe_dataset(name, **{k: v for k, v in data.items()
                                          if k in ("path", "target", "length", "samples")})
    width = described.n_classes or 1
    return digits_config(name="entry", data=data, optimizer={"lr": 0.01},
                         model={"layers": [{"neurons": 8, "activation": "tanh"},
                                           {"neurons": width}],
                                "loss": "softmax_cross_entropy" if described.n_classes else "mse"},
                         train={"batch_size": 256})


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_kind(main_here, tmp_path, monkeypatch, name):
    train_one_epoch(main_here, tmp_path, _dataset_config(name, tmp_path, monkeypatch))


#: what a layer type's required options are set to here
REQUIRED = {"neurons": 8, "out_channels": 4, "kernel_size": 3, "size": 2, "hidden_size": 8,
            "dim": 4}


def _layer_config(name: str, tmp_path: Path) -> dict:
    """A small experiment whose first layer is of type ``name``, on the data it reads: the
    digits as (1, 8, 8) images or as 8 steps of 8 pixels, a text's ids."""
    cls = LAYERS[name]
    layer = {"type": name, **{o.name: REQUIRED[o.name] for o in options(cls) if o.required
                              and not (o.from_data and o.from_data.implied)}}
    if cls.takes_ids:
        return text_config(tmp_path, [layer, {"type": "lstm", "hidden_size": 8},
                                      {"neurons": "auto"}])
    if cls.takes_sequences:
        layers = [{**layer, "return_sequences": False}, {"neurons": "auto"}]
    elif cls.takes_images:
        layers = [layer, *([] if name == "flatten" else [{"type": "flatten"}]),
                  {"neurons": "auto"}]
    else:
        layers = [layer, {"neurons": "auto"}]
    return digits_config(name="entry", model={"layers": layers}, optimizer={"lr": 0.01})


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_type(main_here, tmp_path, name):
    summary = train_one_epoch(main_here, tmp_path, _layer_config(name, tmp_path))
    assert np.isfinite(summary["test"]["loss"])


@pytest.mark.parametrize("name", [n for n, cls in LAYERS.items() if cls.takes_sequences])
def test_every_recurrent_layer_stateful_on_text_streams(main_here, tmp_path, name):
    raw = text_config(tmp_path, [{"type": "embedding", "dim": 4},
                                 {"type": name, "hidden_size": 8, "stateful": True},
                                 {"neurons": "auto"}], streams=4)
    raw["train"]["batch_size"] = 4
    summary = train_one_epoch(main_here, tmp_path, raw)
    assert {"bits_per_char", "perplexity", "accuracy"} <= set(summary["test"])


def test_sequences_in_an_npz_file_train_a_recurrent_network(main_here, tmp_path):
    """(N, T, F) arrays: T steps of F features to a recurrent first layer."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((90, 6, 3))
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    np.savez(tmp_path / "seq.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    raw = digits_config(name="entry", data={"dataset": "npz", "path": str(tmp_path / "seq.npz")},
                        model={"layers": [{"type": "gru", "hidden_size": 5,
                                           "return_sequences": False}, {"neurons": "auto"}]})
    train_one_epoch(main_here, tmp_path, raw)


# -- what validate accepts trains; what it refuses, train refuses ---------------------------
BASES = [
    digits_config(name="prop", train={"epochs": 1}),
    digits_config(name="prop", data={"dataset": "diabetes"}, train={"epochs": 1},
                  model={"layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 1}],
                         "loss": "mse"}, optimizer={"lr": 0.01}),
    digits_config(name="prop", data={"dataset": "breast_cancer"}, train={"epochs": 1},
                  model={"layers": [{"neurons": 8, "activation": "relu"}, {"neurons": 1}],
                         "loss": "binary_cross_entropy"}, optimizer={"name": "adam", "lr": 0.01}),
]
#: dotted key -> values to try there, sensible and not
MUTATIONS = {
    "data.dataset": [*[n for n in DATASETS if n not in ("mnist", "fashion_mnist", "csv")]],
    "data.scale": list(SCALERS),
    "data.validation": [0.5, "test", 0.999, 0.2],
    "model.layers.0.neurons": [1, 3, 10, 0, 10**9],
    "model.layers.0.activation": [*ACTIVATIONS, {"name": "leaky_relu", "negative_slope": -1},
                                  {"name": "elu", "alpha": 0}, {"name": "elu", "alpha": 2}],
    "model.layers.0.batch_norm": [True],
    "model.layers.0.dropout": [0.5, 0.9],
    "model.layers.1.neurons": [1, 2, 3, 10],
    "model.loss": [*LOSSES, {"name": "huber", "delta": -1}, {"name": "huber", "delta": 3}],
    "model.input_dropout": [0.2],
    "optimizer.name": list(OPTIMIZERS),
    "optimizer.lr": [1e-4, 0.1, 1e9],
    "optimizer.momentum": [0.5],
    "optimizer.weight_decay": [0.01],
    "optimizer.decay": [{"type": "linear", "final_lr": 0.5}, {"type": "linear", "final_lr": 0.0},
                        {"type": "step"}, {"type": "step", "step_size": 1},
                        {"type": "exponential", "final_lr": 0}, {"type": "cosine"},
                        {"type": "plateau", "patience": 1}, {"type": "none", "warmup_epochs": 2}],
    "train.batch_size": [1, 7, 64, 10**9],
    "train.dtype": list(DTYPES),
    "train.eval_every": [1, 5],
    "train.early_stopping": [True, False, {"patience": 1, "restore_best": False}],
}


def _set(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[last] = value


mutated = st.tuples(st.sampled_from(range(len(BASES))),
                    st.lists(st.sampled_from(sorted(MUTATIONS)).flatmap(
                        lambda k: st.tuples(st.just(k), st.sampled_from(MUTATIONS[k]))),
                        min_size=1, max_size=3))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@pytest.mark.slow
@given(case=mutated)
def test_what_validate_accepts_trains_and_what_it_refuses_train_refuses(tmp_path_factory, case):
    base, edits = case
    raw = json.loads(json.dumps(BASES[base]))
    for key, value in edits:
        _set(raw, key, json.loads(json.dumps(value)))
    out = tmp_path_factory.mktemp("runs")
    try:
        cfg = validate(raw, "prop.yaml")
        plan_experiment(cfg)
    except ConfigError as refused:
        with pytest.raises(ConfigError) as info:
            train_experiment(validate(raw, "prop.yaml"), out=out)
        assert str(info.value) == str(refused)
        assert not any(out.iterdir())  # no run folder
        event("refused")
        return
    try:
        with np.errstate(all="ignore"):
            result = train_experiment(cfg, out=out)
    except DivergenceError:  # documented: a rate too high for the network
        event("diverged")
        return
    assert result.status == "completed", edits
    event("trained")
