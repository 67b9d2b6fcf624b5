"""The scikit-learn estimators: scikit-learn's own estimator checks, and the estimators
inside Pipeline, cross_val_score and GridSearchCV on real bundled data."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from scratchnet import ConfigError
from scratchnet.sklearn import ScratchNetClassifier, ScratchNetRegressor

#: Checks of scikit-learn's suite that cannot apply to these estimators, with the reason.
#: Empty: every check passes, including the ones on training quality
#: (check_classifiers_train, check_regressors_train). Checks scikit-learn skips by itself
#: (sample weights, which the estimators do not take; pandas and array-API inputs when
#: those are not installed) are reported by pytest as skipped, with scikit-learn's reason.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "ScratchNetClassifier": {},
    "ScratchNetRegressor": {},
}


def _expected_failed(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


@parametrize_with_checks(
    [
        # the defaults, as a user gets them
        ScratchNetClassifier(),
        ScratchNetRegressor(),
        # the other code paths: momentum SGD with a decay, dropout, early stopping, float32
        ScratchNetClassifier(optimizer="sgd_momentum", learning_rate=0.01, decay="linear",
                             final_learning_rate=0.001, dropout=0.1, early_stopping=True,
                             epochs=30),
        ScratchNetRegressor(activation="tanh", learning_rate=0.01, dropout=0.1,
                            early_stopping=True, epochs=30, dtype="float32"),
    ],
    expected_failed_checks=_expected_failed,
    xfail_strict=True,  # a listed check that starts passing must be taken off the list
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- the estimators with scikit-learn's tools, on real data ---------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_pipeline_on_digits_learns(digits):
    X_train, X_test, y_train, y_test = digits
    model = make_pipeline(StandardScaler(),
                          ScratchNetClassifier(hidden_layer_sizes=(32,), epochs=20, random_state=0))
    model.fit(X_train, y_train)
    clf = model[-1]
    assert model.score(X_test, y_test) > 0.9
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert len(clf.loss_curve_) == clf.n_iter_ == 20
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 4
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X_test), clf.classes_[proba.argmax(axis=1)])


def test_cross_val_score_on_iris():
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), ScratchNetClassifier(
        hidden_layer_sizes=(16,), learning_rate=0.01, epochs=50, random_state=0))
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.85


def test_grid_search_over_two_learning_rates_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = Pipeline([("scale", StandardScaler()),
                     ("net", ScratchNetClassifier(hidden_layer_sizes=(32,), optimizer="sgd",
                                                  epochs=5, random_state=0))])
    search = GridSearchCV(pipe, {"net__learning_rate": [1e-4, 0.05]}, cv=3)
    search.fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2
    # five epochs of plain SGD at 1e-4 barely move the weights; 0.05 learns the digits
    assert search.best_params_ == {"net__learning_rate": 0.05}
    assert scores[1] > 0.85 > scores[0]
    assert search.score(X_test, y_test) > 0.85


def test_regressor_on_diabetes_in_a_pipeline():
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()  # the regressor does not scale targets itself
    model = make_pipeline(StandardScaler(), ScratchNetRegressor(
        hidden_layer_sizes=(16,), learning_rate=0.01, epochs=30, random_state=0))
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.mean() > 0.3  # r2; a linear model gets about 0.48 here
    prediction = model.fit(X, y).predict(X)
    assert prediction.shape == (len(X),) and prediction.dtype == np.float64


# -- training behaviour -------------------------------------------------------------------------
def test_early_stopping_stops_and_keeps_the_best_epoch(digits):
    X_train, _, y_train, _ = digits
    X_train = StandardScaler().fit_transform(X_train)
    clf = ScratchNetClassifier(hidden_layer_sizes=(32,), learning_rate=0.05,
                               optimizer="sgd_momentum", epochs=300, early_stopping=True,
                               patience=3, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.n_iter_ < 300
    assert len(clf.validation_loss_curve_) == len(clf.loss_curve_) == clf.n_iter_
    best = int(np.argmin(clf.validation_loss_curve_)) + 1
    assert clf.best_epoch_ == best
    assert clf.n_iter_ == best + 3  # patience evaluations after the best one


def test_same_random_state_same_model_and_different_state_differs(digits):
    X_train, X_test, y_train, _ = digits
    X_train = StandardScaler().fit_transform(X_train)
    a = ScratchNetClassifier(hidden_layer_sizes=(8,), epochs=3, dropout=0.2, random_state=1)
    b = clone(a)
    c = clone(a).set_params(random_state=2)
    pa, pb, pc = (m.fit(X_train, y_train).predict_proba(X_train[:50]) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)


def test_partial_fit_continues_one_epoch_at_a_time(digits):
    X_train, X_test, y_train, y_test = digits
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    clf = ScratchNetClassifier(hidden_layer_sizes=(32,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)
    clf.partial_fit(X_train[:200], y_train[:200], classes=np.arange(10))
    first = clf.score(X_test, y_test)
    for _ in range(5):
        clf.partial_fit(X_train, y_train)
    assert clf.n_iter_ == len(clf.loss_curve_) == 6
    assert clf.score(X_test, y_test) > max(first, 0.85)
    # the classes stay those of the first call, even when a batch lacks some
    clf.partial_fit(X_train[y_train < 3], y_train[y_train < 3])
    assert clf.predict_proba(X_test).shape == (len(X_test), 10)
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X_train[:5], np.full(5, 11))
    with pytest.raises(ValueError, match="differ from the classes already learned"):
        clf.partial_fit(X_train[:5], y_train[:5], classes=np.arange(9))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X_train[:, :10], y_train)


def test_partial_fit_after_fit_continues_from_the_fitted_weights(digits):
    X_train, _, y_train, _ = digits
    X_train = StandardScaler().fit_transform(X_train)
    clf = ScratchNetClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=0)
    clf.fit(X_train, y_train)
    before = clf.loss_curve_[-1]
    clf.partial_fit(X_train, y_train)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.best_epoch_ is None and clf.validation_loss_curve_ is None  # no early stopping
    assert clf.loss_curve_[-1] < before  # continued, not restarted from random weights


def test_string_labels_and_predict_proba_column_order():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = make_pipeline(StandardScaler(), ScratchNetClassifier(
        hidden_layer_sizes=(8,), learning_rate=0.01, epochs=40, random_state=0)).fit(X, names)
    clf = model[-1]
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    proba = model.predict_proba(X)
    # the setosa column is the most probable one for the setosa rows
    assert (proba[names == "setosa"].argmax(axis=1) == 0).all()
    assert model.score(X, names) > 0.9


def test_pickle_round_trip_predicts_the_same(digits):
    X_train, X_test, y_train, _ = digits
    clf = ScratchNetClassifier(hidden_layer_sizes=(8,), epochs=2, random_state=0)
    clf.fit(X_train, y_train)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))


@pytest.mark.parametrize("params, message", [
    ({"optimizer": "adamm"},
     "unknown optimizer 'adamm' (did you mean 'adam'?); expected one of: sgd"),
    ({"activation": "relux"}, "relux"),
    ({"hidden_layer_sizes": (32, 0)}, "hidden_layer_sizes must hold positive integers"),
    ({"learning_rate": -0.1}, "learning_rate must be a number > 0, got -0.1"),
    ({"epochs": 0}, "epochs must be an integer in [1, 1000000], got 0"),
    ({"dtype": "float16"},
     "unknown dtype 'float16' (did you mean 'float64'?); expected one of: float32, float64"),
    ({"decay": "linear"}, "final_lr"),
    ({"validation_fraction": 1.5, "early_stopping": True},
     "validation_fraction must be a number in (0, 1), got 1.5"),
])
def test_bad_parameters_fail_at_fit_with_the_bad_value(params, message):
    X, y = load_iris(return_X_y=True)
    clf = ScratchNetClassifier(**params)  # constructing never fails (scikit-learn's rule)
    with pytest.raises(ConfigError) as info:
        clf.fit(X, y)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # what scikit-learn's tools expect


def test_predict_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        ScratchNetRegressor().predict(np.zeros((2, 3)))


def test_multi_output_regression_shapes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] - X[:, 3]])
    reg = ScratchNetRegressor(hidden_layer_sizes=(16,), learning_rate=0.01, epochs=60,
                              random_state=0)
    assert reg.fit(X, Y).predict(X).shape == (120, 2)
    assert reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.9
    assert reg.fit(X, Y[:, :1]).predict(X).shape == (120, 1)  # 2-D in, 2-D out
    assert reg.fit(X, Y[:, 0]).predict(X).shape == (120,)


def test_importing_scratchnet_does_not_import_sklearn():
    # scikit-learn costs ~90 MB of memory; training from the CLI must not pay for it
    code = ("import sys, scratchnet, scratchnet.cli, scratchnet.predict; "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
