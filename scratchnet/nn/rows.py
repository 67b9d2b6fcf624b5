"""What the trainer and :func:`~scratchnet.nn.metrics.evaluate` read samples from: an
array, or a *row source* that makes its rows on demand.

A row source keeps its data in another form (8-bit images, say, scaled only as their
rows are read: ``scratchnet.data.ScaledRows``) and answers, like an array, ``len(X)``,
``X.shape`` ((n, *sample shape)), ``X.ndim`` and ``X.dtype`` (the dtype its rows come
in), ``X[i:j]`` (those rows as a new array), and ``X.take_rows(idx, out)``, which fills
``out`` (shape (len(idx), *sample shape), that dtype) with rows ``idx`` and returns it.
The engine never asks for all rows at once, so the data is held once, in its own form.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def is_row_source(X) -> bool:
    """Whether ``X`` makes its rows on demand (see the module docstring)."""
    return not isinstance(X, np.ndarray) and callable(getattr(X, "take_rows", None))


def as_rows(X, dtype, contiguous: bool = False):
    """``X`` as an array of ``dtype`` (contiguous when asked), or a row source as it is
    (its rows must come in ``dtype``)."""
    if is_row_source(X):
        if np.dtype(X.dtype) != dtype:
            raise ShapeError(f"the rows come in {np.dtype(X.dtype).name}, the network "
                             f"computes in {np.dtype(dtype).name}")
        return X
    return np.ascontiguousarray(X, dtype=dtype) if contiguous else np.asarray(X, dtype=dtype)


def gather(X, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``X`` (an array or a row source) into ``out``, which is returned."""
    if isinstance(X, np.ndarray):
        # mode="clip": with the default mode="raise" NumPy gathers into a temporary and
        # copies it into `out`; the trainer's indices (a permutation's) are valid.
        return np.take(X, idx, axis=0, out=out, mode="clip")
    return X.take_rows(idx, out)
