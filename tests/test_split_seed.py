"""``data.split_seed``: the train/test split of a CSV or bundled set, and the validation
split, drawn apart from the weights' seed (by default both are ``seed``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from conftest import digits_config
from scratchnet.config import load_config, validate
from scratchnet.experiment import build_network, plan_experiment, prepare_data
from test_configs import write_boston_csv

ROOT = Path(__file__).resolve().parent.parent


def diabetes(**data) -> dict:
    return digits_config(data={"dataset": "diabetes", "validation": 0.2, **data},
                         model={"layers": [{"neurons": 1}], "loss": "mse"})


def prepared(raw: dict, seed: int):
    cfg = validate({**raw, "seed": seed})
    return cfg, prepare_data(cfg)


def test_the_split_seed_alone_draws_the_splits():
    _, a = prepared(diabetes(split_seed=5), seed=1)
    cfg_b, b = prepared(diabetes(split_seed=5), seed=2)
    _, c = prepared(diabetes(split_seed=6), seed=1)
    for name in ("X_train", "Y_train", "X_val", "Y_val", "X_test", "Y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.X_test, c.X_test) and not np.array_equal(a.X_val, c.X_val)
    # while the weights follow seed
    net_a = build_network(validate({**diabetes(split_seed=5), "seed": 1}), a.n_features)
    net_b = build_network(cfg_b, b.n_features)
    assert not np.array_equal(net_a.state_dict()["layers.0.W"], net_b.state_dict()["layers.0.W"])


def test_without_it_the_seed_draws_the_splits_as_before():
    cfg, default = prepared(diabetes(), seed=3)
    assert cfg.data.split_seed is None and cfg.split_seed == 3
    _, explicit = prepared(diabetes(split_seed=3), seed=99)
    np.testing.assert_array_equal(default.X_test, explicit.X_test)
    np.testing.assert_array_equal(default.X_val, explicit.X_val)


def test_the_validation_split_of_a_fixed_train_test_set_follows_it():
    """Digits too is split by the loader; the plan counts the validation rows the same."""
    raw = digits_config(data={"split_seed": 11})
    cfg, a = prepared(raw, seed=1)
    _, b = prepared(raw, seed=2)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    plan = plan_experiment(cfg)
    assert (plan.n_train, plan.n_val) == (len(a.X_train), len(a.X_val))


def test_the_boston_configs_split_as_the_notebook_did(tmp_path):
    """``train_test_split(X, y, test_size=0.3, random_state=80718)`` on the file's rows,
    whatever the weights' seed."""
    path = write_boston_csv(tmp_path / "BostonHousing.csv", n=506)
    with open(path) as f:
        rows = np.array([[float(v) for v in row] for row in list(csv.reader(f))[1:]])
    _, X_test, _, y_test = train_test_split(rows[:, :-1], rows[:, -1], test_size=0.3,
                                            random_state=80718)
    for seed in (20190501, 1):
        cfg = load_config(ROOT / "configs" / "boston_two_hidden.yaml",
                          [f"data.path={path}", f"seed={seed}"])
        assert (cfg.seed, cfg.data.split_seed) == (seed, 80718)
        data = prepare_data(cfg)
        test = data.scaler.transform(X_test, "float64")
        np.testing.assert_allclose(data.X_test, test, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(data.Y_test[:, 0], y_test.astype(np.float32))


@pytest.mark.parametrize("bad", [-1, 1.5, "x"])
def test_a_bad_split_seed_is_one_line(bad):
    from scratchnet.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        validate(diabetes(split_seed=bad), "x.yaml")
    assert str(info.value) == (f"x.yaml: data.split_seed: split_seed must be an integer in "
                               f"[0, 4294967295] or null, got {bad!r}")


# -- the split is scikit-learn's, computed without importing it ----------------------------
def _label_sets():
    from sklearn import datasets

    rng = np.random.default_rng(0)
    yield from (getattr(datasets, f"load_{name}")(return_X_y=True)[1]
                for name in ("digits", "iris", "wine", "breast_cancer", "diabetes"))
    yield rng.integers(0, 3, 50)  # small classes, uneven
    yield np.array([0] * 30 + [1] * 5 + [2] * 2)  # remainders that tie
    yield rng.standard_normal(41)  # a regression: not stratified


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.3, 0.5, 0.77])
@pytest.mark.parametrize("seed", [0, 7, 80718, 20190119])
def test_the_split_is_scikit_learns_row_for_row(fraction, seed):
    from scratchnet.data.split import train_test_indices

    for y in _label_sets():
        stratify = y.dtype.kind in "iu"
        rows = np.arange(len(y))
        train, test, _, _ = train_test_split(rows, y, test_size=fraction, random_state=seed,
                                             stratify=y if stratify else None)
        mine = train_test_indices(y, fraction, seed, stratify)
        np.testing.assert_array_equal(mine[0], train)
        np.testing.assert_array_equal(mine[1], test)


@pytest.mark.parametrize("y, fraction", [(np.array([0, 0, 0, 1]), 0.5),
                                         (np.arange(10) % 5, 0.2), (np.arange(10) % 2, 0.95)])
def test_a_split_that_cannot_be_made_says_what_scikit_learn_says(y, fraction):
    from scratchnet.data.split import train_test_indices

    with pytest.raises(ValueError) as theirs:
        train_test_split(y, y, test_size=fraction, random_state=0, stratify=y)
    with pytest.raises(ValueError) as mine:
        train_test_indices(y, fraction, 0, stratify=True)
    assert str(mine.value) == str(theirs.value)


def test_the_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    from scratchnet.data.bundled import _digits

    theirs, mine = load_digits(), _digits()
    np.testing.assert_array_equal(mine.data, theirs.data)
    assert mine.data.dtype == theirs.data.dtype
    np.testing.assert_array_equal(mine.target, theirs.target)
    np.testing.assert_array_equal(mine.target_names, theirs.target_names)
    assert mine.feature_names == list(theirs.feature_names)
