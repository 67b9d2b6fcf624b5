"""scikit-learn estimators built from scratchnet's own parts.

:class:`ScratchNetClassifier` and :class:`ScratchNetRegressor` wrap a
:class:`~scratchnet.nn.NeuralNetwork` of :class:`~scratchnet.nn.Dense` layers, an
optimizer from :data:`~scratchnet.nn.OPTIMIZERS` and the :class:`~scratchnet.nn.Trainer`,
behind the estimator API, so they work in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from scratchnet.sklearn import ScratchNetClassifier

    model = make_pipeline(StandardScaler(), ScratchNetClassifier(hidden_layer_sizes=(64,)))
    model.fit(X_train, y_train).score(X_test, y_test)

Inputs are not scaled here (put a scaler in front, as above); regression targets are not
scaled either, so give them a sensible range (or use ``TransformedTargetRegressor``).

This module imports scikit-learn, so ``import scratchnet`` does not import it: only
``import scratchnet.sklearn`` does (scikit-learn costs about 90 MB of memory, which the
MNIST training path does not pay).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, unique_labels

from .data.prepare import encode_targets
from .estimator_base import _FLOATS, ScratchNetBase, validate_data

__all__ = ["ScratchNetClassifier", "ScratchNetRegressor"]


# The attribute docs both estimators share.
_TRAINING_ATTRIBUTES = """    validation_loss_curve_ : list of float or None
        Validation loss per epoch when ``fit`` ran with ``early_stopping`` (None for the
        epochs of later ``partial_fit`` calls, which hold nothing out); else None.
    n_iter_ : int
        Epochs trained.
    best_epoch_ : int or None
        With early stopping, the epoch whose weights were kept (the lowest validation
        loss); None otherwise.
"""
_FITTED_ATTRIBUTES = """    n_features_in_ : int
        Width of X seen in ``fit``.
    network_ : scratchnet.NeuralNetwork
        The trained network.
    """


class ScratchNetClassifier(ClassifierMixin, ScratchNetBase):
    __doc__ = ("A multi-class classifier: Dense hidden layers and a softmax output trained "
               "with softmax cross-entropy.\n" + ScratchNetBase.__doc__.split("\n", 1)[1] + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted (``predict_proba`` columns follow this order).
    loss_curve_ : list of float
        Mean training loss of every epoch trained (``partial_fit`` appends one).
""" + _TRAINING_ATTRIBUTES + _FITTED_ATTRIBUTES)

    _losses = ("softmax_cross_entropy", "binary_cross_entropy")
    _stratify = True

    def _validate_training_data(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=_FLOATS)
        check_classification_targets(y)
        return X, y

    def _encode_targets(self, y, incremental, classes=None):
        if classes is not None:  # partial_fit: the first call fixes the classes
            classes = unique_labels(classes)
            if incremental and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()} differ from the classes "
                                 f"already learned, {self.classes_.tolist()}")
            self.classes_ = classes
        elif not incremental:
            self.classes_ = np.unique(y)
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} that are not among the "
                             f"classes {self.classes_.tolist()}")
        index = np.searchsorted(self.classes_, y)
        binary = self._loss_name() == "binary_cross_entropy"
        if binary and len(self.classes_) != 2:
            raise ValueError(f"loss='binary_cross_entropy' needs two classes, got "
                             f"{len(self.classes_)}; use loss='softmax_cross_entropy'")
        return encode_targets(index, "classification", len(self.classes_),
                              "binary" if binary else "one_hot", self.dtype)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        ``classes`` (every label that will ever appear) is required on the first call, as
        for scikit-learn's other incremental classifiers. The learning rate is the initial
        one (a decay spans the epochs of one ``fit``). Early stopping does not apply.
        """
        if not hasattr(self, "_trainer") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        return self._forward(X, proba=True)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]


class ScratchNetRegressor(RegressorMixin, ScratchNetBase):
    __doc__ = ("A regressor: Dense hidden layers and a linear output trained with mean "
               "squared error (one output per target column).\n"
               + ScratchNetBase.__doc__.split("\n", 1)[1] + """
    Attributes
    ----------
    loss_curve_ : list of float
        Mean training loss (mean squared error summed over outputs) of every epoch.
""" + _TRAINING_ATTRIBUTES + """    n_outputs_ : int
        Number of target columns.
""" + _FITTED_ATTRIBUTES)

    _losses = ("mse", "mae", "huber")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _validate_training_data(self, X, y, reset):
        return validate_data(self, X, y, reset=reset, dtype=_FLOATS, multi_output=True,
                             y_numeric=True)

    def _encode_targets(self, y, incremental, classes=None):
        y = np.asarray(y)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if incremental:
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {Y.shape[1]} target columns, but the regressor was "
                                 f"trained on {self.n_outputs_}")
        else:
            self.n_outputs_ = Y.shape[1]
            self._y_1d = y.ndim == 1
        return np.asarray(Y, dtype=self.dtype)

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights and optimizer state.
        The learning rate is the initial one; early stopping does not apply."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """Predicted values: shape (n_samples,) when fitted on a 1-D y, else
        (n_samples, n_outputs)."""
        out = self._forward(X)
        return out.ravel() if self._y_1d else out
