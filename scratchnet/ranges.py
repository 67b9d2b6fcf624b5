"""Each feature's range in the training rows, recorded in ``data.json`` at training, and new
inputs far outside it (where a network's predictions are extrapolations).

A value is *far* outside when it lies beyond its feature's training range by more than
:data:`FAR` times that range's width. A feature that was constant in training has no width
to measure by and is not checked (an MNIST border pixel is 0 in every training image).
"""

from __future__ import annotations

import numpy as np

#: how far beyond its training range, in widths of that range, a value is "far outside"
FAR = 1.0
#: rows read at a time while the range is measured (the rows may be scaled as they are read;
#: 512 MNIST rows are 1.6 MB as float32, where 4,096 as float64 put 45 MB on the run's peak)
CHUNK = 512


def training_range(X, scaler) -> dict:
    """``{"min": [...], "max": [...]}`` of the training rows ``X`` (n, features), in the
    data's own units: ``X`` holds the rows as training reads them, scaled by ``scaler``
    (per feature, increasing), so its extremes map back to the raw extremes."""
    lo = hi = None
    for start in range(0, len(X), CHUNK):
        block = np.asarray(X[start:start + CHUNK])  # in its own dtype: min and max are exact
        block = block.reshape(len(block), -1)
        low, high = block.min(axis=0).astype(np.float64), block.max(axis=0).astype(np.float64)
        lo = low if lo is None else np.minimum(lo, low)
        hi = high if hi is None else np.maximum(hi, high)
    if lo is None:
        return {"min": [], "max": []}
    raw = scaler.inverse_transform(np.vstack([lo, hi]))
    return {"min": [float(v) for v in raw[0]], "max": [float(v) for v in raw[1]]}


def far_outside(X: np.ndarray, recorded: dict | None, names: list[str],
                feature_names: list[str]) -> str | None:
    """One sentence about the rows of ``X`` (n, features, raw units) with a value far
    outside ``recorded`` (a :func:`training_range`), naming the first such value; None
    when there are none, or when the run recorded no range (runs trained before it was)."""
    if not recorded or len(recorded.get("min", ())) != X.shape[1]:
        return None
    lo, hi = np.asarray(recorded["min"]), np.asarray(recorded["max"])
    width = hi - lo
    far = ((X < lo - FAR * width) | (X > hi + FAR * width)) & (width > 0)
    rows = np.flatnonzero(far.any(axis=1))
    if not len(rows):
        return None
    i = int(rows[0])
    j = int(np.flatnonzero(far[i])[0])
    return (f"{len(rows)} of {len(X)} inputs hold values far outside the training range "
            f"(first: {names[i]}, {feature_names[j]} = {X[i, j]:.4g}, trained on "
            f"{lo[j]:.4g} to {hi[j]:.4g}); the predictions there are extrapolations")
