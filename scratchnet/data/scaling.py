"""Affine scaling of features (and regression targets), fitted on training rows only:
:class:`Scaler` and its kinds, :data:`SCALERS`.

Memory matters for MNIST (60000 x 784): the uint8 images take 47 MB, a float32 copy
188 MB and a float64 copy 376 MB. So nothing here ever builds a float64 array of the full
data: statistics are accumulated in float64 over chunks of rows, and the float32 output
is filled chunk by chunk straight from the uint8 source.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from ..nn.core import get_dtype
from ..registry import lookup

# About this many elements per chunk (8 MB as float64), whatever the number of features.
_CHUNK_ELEMENTS = 1 << 20


def _chunks(n_rows: int, n_features: int, rows: np.ndarray | None):
    """Yield (output slice, source selector) pairs covering ``n_rows`` rows in chunks.

    With ``rows`` (an index array) the source selector picks those rows of the source, so
    callers can work on a subset without first copying it out.
    """
    step = max(1, _CHUNK_ELEMENTS // max(1, n_features))
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        yield slice(start, stop), (slice(start, stop) if rows is None else rows[start:stop])


def _fit_none(X, rows, n: int, d: int):
    return np.zeros(()), np.ones(())


def _fit_minmax(X, rows, n: int, d: int):
    low = np.full(d, np.inf)
    high = np.full(d, -np.inf)
    for _, sel in _chunks(n, d, rows):
        block = X[sel]
        low = np.minimum(low, block.min(axis=0))
        high = np.maximum(high, block.max(axis=0))
    scale = high - low
    scale[scale == 0] = 1.0  # constant feature: leave it at 0 instead of 0/0
    return low, scale


def _mean_std(X, rows, n: int, d: int, per_feature: bool):
    """Mean and standard deviation per feature, or of all values together.

    Two passes (mean, then mean squared deviation) are more accurate than accumulating
    sum and sum of squares. ``sum(dtype=float64)`` converts as it goes, so no float64
    copy of the chunk is made in the first pass."""
    axis = 0 if per_feature else None
    shape = (d,) if per_feature else ()
    count = n if per_feature else n * d
    total = np.zeros(shape)
    for _, sel in _chunks(n, d, rows):
        total += X[sel].sum(axis=axis, dtype=np.float64)
    mean = total / count
    squares = np.zeros(shape)
    for _, sel in _chunks(n, d, rows):
        deviation = X[sel].astype(np.float64) - mean
        squares += np.square(deviation).sum(axis=axis)
    std = np.sqrt(squares / count)
    # A constant feature has std 0 (or, from rounding, a tiny fraction of its mean):
    # divide by 1 instead so it becomes 0 rather than inf/NaN.
    constant = (std == 0) | (std <= 1e-12 * np.abs(mean))
    return mean, np.where(constant, 1.0, std)


#: scaler kind -> ``fit(X, rows, n_rows, n_features) -> (offset, scale)``, float64 arrays
#: of shape () (one for all values) or (n_features,)
SCALERS = {
    "global": partial(_mean_std, per_feature=False),
    "standard": partial(_mean_std, per_feature=True),
    "minmax": _fit_minmax,
    "none": _fit_none,
}


class Scaler:
    """Per-feature (or global) affine scaling ``(X - offset) / scale``, fitted on data.

    kind:
      "global"   one mean and one standard deviation over *all* training values (what
                 the book's notebook does for MNIST pixels);
      "standard" per-feature mean and standard deviation (a constant feature gets std 1);
      "minmax"   per-feature minimum and range, mapping training data to [0, 1]
                 (a constant feature gets range 1);
      "none"     no scaling, only the dtype conversion.

    Statistics are always computed in float64; X itself is never modified.
    """

    def __init__(self, kind: str = "standard"):
        self._fit = lookup(SCALERS, kind, "scaler")
        self.kind = kind
        self.offset: np.ndarray | None = None  # subtracted: mean or min; () or (d,) float64
        self.scale: np.ndarray | None = None   # divided by: std or range; same shape
        self.n_features: int | None = None

    @property
    def fitted(self) -> bool:
        return self.n_features is not None

    def __repr__(self) -> str:
        state = f"{self.n_features} features" if self.fitted else "not fitted"
        return f"Scaler({self.kind!r}, {state})"

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X, *, rows=None) -> "Scaler":
        """Learn the statistics of X, shape (n, d); returns self.

        rows: optional index array; fit on ``X[rows]`` without materialising that copy
              (``prepare`` uses it to fit on the training rows of the full array).
        """
        X = _check_2d(X, "Scaler.fit")
        rows = None if rows is None else np.asarray(rows)
        n = len(X) if rows is None else len(rows)
        d = X.shape[1]
        if n == 0:
            raise DataError("cannot fit a scaler on zero rows")
        offset, scale = self._fit(X, rows, n, d)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.n_features = int(d)
        return self

    # -- applying ------------------------------------------------------------------------

    def transform(self, X, dtype="float32", *, rows=None, out=None) -> np.ndarray:
        """Return a NEW array ``(X - offset) / scale`` of ``dtype``, shape (n, d), or
        fill ``out`` (that shape and dtype) with it and return ``out``.

        rows: optional index array; transform ``X[rows]`` (output shape (len(rows), d))
              without an intermediate copy of that subset.
        Each chunk is computed in float64 and rounded once into the output, so the result
        is the same whichever chunk size is used.
        """
        if not self.fitted:
            raise RuntimeError("Scaler.transform called before fit (or from_dict)")
        dt = get_dtype(dtype)
        X = _check_2d(X, "Scaler.transform")
        if X.shape[1] != self.n_features:
            raise ShapeError(f"Scaler.transform: X has {X.shape[1]} features, the scaler "
                             f"was fitted on {self.n_features}")
        rows = None if rows is None else np.asarray(rows)
        n = len(X) if rows is None else len(rows)
        if out is None:
            out = np.empty((n, X.shape[1]), dtype=dt)
        for dst, sel in _chunks(n, X.shape[1], rows):
            if self.kind == "none":
                out[dst] = X[sel]
            else:
                out[dst] = (X[sel].astype(np.float64) - self.offset) / self.scale
        return out

    def fit_transform(self, X, dtype="float32") -> np.ndarray:
        return self.fit(X).transform(X, dtype)

    def inverse_transform(self, Z) -> np.ndarray:
        """``Z * scale + offset`` in float64: scaled values back in their units (for
        ``target_scale``, the network's output as the regression target's values)."""
        if not self.fitted:
            raise RuntimeError("Scaler.inverse_transform called before fit (or from_dict)")
        return np.asarray(Z, dtype=np.float64) * self.scale + self.offset

    # -- saving --------------------------------------------------------------------------

    _NAMES = {"global": ("mean", "std"), "standard": ("mean", "std"),
              "minmax": ("min", "range")}

    def to_dict(self) -> dict:
        """JSON-serialisable description; ``Scaler.from_dict`` rebuilds the same scaler.

        e.g. ``{"kind": "global", "n_features": 784, "mean": 33.3, "std": 78.6}`` or, per
        feature, lists of floats. Python floats print with enough digits to round-trip
        exactly, so the rebuilt scaler transforms bit for bit the same.
        """
        d: dict = {"kind": self.kind}
        if not self.fitted:
            return d
        d["n_features"] = self.n_features
        if self.kind in self._NAMES:
            off_name, scale_name = self._NAMES[self.kind]
            d[off_name] = self.offset.tolist()  # float for "global", list for per-feature
            d[scale_name] = self.scale.tolist()
        return d

    @classmethod
    def from_dict(cls, d) -> "Scaler":
        try:
            scaler = cls(d["kind"])
            if "n_features" not in d:
                return scaler  # saved before fitting
            scaler.n_features = int(d["n_features"])
            if scaler.kind == "none":
                shape = ()
                scaler.offset, scaler.scale = np.zeros(shape), np.ones(shape)
            else:
                off_name, scale_name = cls._NAMES[scaler.kind]
                scaler.offset = np.asarray(d[off_name], dtype=np.float64)
                scaler.scale = np.asarray(d[scale_name], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a valid saved scaler: {d!r} ({exc})") from exc
        shape = (scaler.n_features,) if scaler.kind in ("standard", "minmax") else ()
        names = cls._NAMES.get(scaler.kind, ("offset", "scale"))
        for name, values in zip(names, (scaler.offset, scaler.scale), strict=True):
            if values.shape != shape:
                raise ConfigError(f"saved scaler has {values.size} {name} values for "
                                  f"{scaler.n_features} features")
            if not np.isfinite(values).all():  # it would turn every input into NaN
                raise ConfigError(f"saved scaler: {name} holds NaN or infinite values")
        if not np.all(scaler.scale != 0):
            raise ConfigError(f"saved scaler: {names[1]} holds a zero (inputs would be "
                              "divided by it)")
        return scaler


def _check_2d(X, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ShapeError(f"{what}: expected a 2-D array (n, features), got shape {X.shape}")
    return X
