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
