"""What the trainer and :func:`~scratchnet.nn.metrics.evaluate` read samples from: an array
of shape (n, *sample shape), or any object that makes its rows on demand and answers
this much of an array's interface (the engine asks nothing else of it):

=========================  ==========================================================
``len(X)``, ``X.shape``    n, and (n, *sample shape)
``X.ndim``, ``X.dtype``    as an array's (``dtype``: the one its rows come in)
``X[i:j]``                 rows i to j as a new array (evaluation reads slices)
``X.take_rows(idx, out)``  fills ``out``, shape (len(idx), *sample shape) in ``dtype``,
                           with rows ``idx`` and returns it (training batches)
=========================  ==========================================================

So data kept in another form (8-bit images scaled only as their rows are read, say) is
held once, in that form: the engine never asks for all rows at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def is_row_source(X) -> bool:
    """Whether ``X`` makes its rows on demand (it is not an array, and has ``take_rows``)."""
    return not isinstance(X, np.ndarray) and callable(getattr(X, "take_rows", None))


def as_rows(X, dtype, contiguous: bool = False):
    """``X`` as an array of ``dtype`` (contiguous when asked), or an object that makes its
    rows on demand as it is (its rows must come in ``dtype``)."""
    if is_row_source(X):
        if np.dtype(X.dtype) != dtype:
            raise ShapeError(f"the rows come in {np.dtype(X.dtype).name}, the network "
                             f"computes in {np.dtype(dtype).name}")
        return X
    return np.ascontiguousarray(X, dtype=dtype) if contiguous else np.asarray(X, dtype=dtype)


def gather(X, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``X`` into ``out``, which is returned."""
    if isinstance(X, np.ndarray):
        # mode="clip": with the default mode="raise" NumPy gathers into a temporary and
        # copies it into `out`; the trainer's indices (a permutation's) are valid.
        return np.take(X, idx, axis=0, out=out, mode="clip")
    return X.take_rows(idx, out)
