"""8-bit data kept as 8-bit: :class:`ScaledRows` scales each batch of rows as it is read.

A network trains on a few dozen rows at a time, so :func:`~scratchnet.data.prepare` (with
``lazy=True``) hands the trainer these instead of scaled copies, a quarter of their size
in float32 (what that buys for MNIST, and costs per batch, is in
``benchmarks/README.md``): the rows of the source array (a subset of them, for a
validation split) with the fitted :class:`~scratchnet.data.Scaler`, scaled into the run's
dtype only when they are gathered. The numbers are the very same as those of
:meth:`~scratchnet.data.Scaler.transform`
(each value computed in float64 and rounded once); for a scaling of all values together
("global", "none") they come from a table of the 256 values a byte can hold (and, for rows
of an even width, of the 65,536 pairs of them).

The engine reads it as :mod:`scratchnet.nn.rows` describes: the trainer gathers batches
with :meth:`ScaledRows.take_rows`, evaluation slices ``X[i:j]``, and anything else that
asks for an array (``np.asarray(X)``) gets all rows scaled at once.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ShapeError
from ..nn.core import get_dtype


def byte_data(X) -> bool:
    """Whether ``X`` holds 8-bit unsigned values (images), worth keeping as they are."""
    return isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim == 2


class ScaledRows:
    """Rows ``rows`` of ``source`` (all of them by default), ``(source - offset) / scale``
    of the fitted ``scaler``, in ``dtype``; samples of ``sample_shape`` (default: flat
    rows) once read."""

    def __init__(self, source: np.ndarray, scaler, dtype="float32",
                 rows: np.ndarray | None = None, sample_shape=None):
        if source.ndim != 2 or source.shape[1] != scaler.n_features:
            raise ShapeError(f"ScaledRows: expected a 2-D source of {scaler.n_features} "
                             f"features, got shape {source.shape}")
        self.source, self.scaler, self.dtype = source, scaler, get_dtype(dtype)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self.sample_shape = (source.shape[1],) if sample_shape is None else tuple(sample_shape)
        if math.prod(self.sample_shape) != source.shape[1]:
            raise ShapeError(f"cannot read rows of {source.shape[1]} values as samples of "
                             f"shape {self.sample_shape}")
        # With one scaling for every value: a table of the scaled values, indexed by a
        # byte (a (256, 1) table) or, for rows of an even width, by two bytes read as one
        # 16-bit number, in memory order whatever the machine's byte order (a (65536, 2)
        # table, 512 KB in float32): half the lookups.
        self._table = self._unit = None
        if source.dtype == np.uint8 and scaler.offset.ndim == 0:
            values = np.arange(256, dtype=np.float64)
            table = values if scaler.kind == "none" else (values - scaler.offset) / scaler.scale
            self._unit = np.uint16 if source.shape[1] % 2 == 0 else np.uint8
            units = np.arange(1 << 8 * np.dtype(self._unit).itemsize, dtype=self._unit)
            self._table = table.astype(self.dtype)[units.view(np.uint8).reshape(len(units), -1)]

    # -- what an array answers ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.source) if self.rows is None else len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def __repr__(self) -> str:
        return (f"ScaledRows(shape={self.shape}, dtype={self.dtype.name}, "
                f"source={self.source.dtype.name}, scaler={self.scaler.kind!r})")

    def reshape(self, *shape) -> "ScaledRows":
        """The same rows read as samples of another shape: ``X.reshape(n, 1, 28, 28)``."""
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) \
            else tuple(shape)
        if not shape or shape[0] not in (len(self), -1):
            raise ShapeError(f"ScaledRows.reshape keeps the {len(self)} rows, got {shape}")
        return ScaledRows(self.source, self.scaler, self.dtype, self.rows, shape[1:])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, numbers.Integral):
            return self.take_rows(np.arange(len(self))[[key]])[0]
        if isinstance(key, slice):
            idx = np.arange(len(self))[key]
        else:
            idx = np.asarray(key)
            idx = np.flatnonzero(idx) if idx.dtype == bool else np.arange(len(self))[idx]
        return self.take_rows(idx)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- reading rows ------------------------------------------------------------------
    def take_rows(self, idx, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``idx`` scaled into ``out`` (a new array when None), which is returned."""
        idx = np.asarray(idx, dtype=np.intp)
        if out is None:
            out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        flat = out.reshape(len(idx), self.source.shape[1])  # a view: `out` is contiguous
        src = idx if self.rows is None else self.rows[idx]
        if self._table is not None:  # looked up (any index is valid)
            units = np.take(self.source, src, axis=0).view(self._unit)
            np.take(self._table, units, axis=0, mode="clip",
                    out=flat.reshape(*units.shape, self._table.shape[1]))
        else:  # in float64, rounded once into the run's dtype
            self.scaler.transform(self.source, self.dtype, rows=src, out=flat)
        return out
