"""What scratchnet asks of the BLAS library NumPy links, besides its matrix products: how
many threads it may use (:func:`thread_limit`), and ``y = a*x + b*y`` in place, in one
pass over memory (OpenBLAS's ``axpby``, called through ctypes: :func:`axpby`).

Why: the update of SGD (with momentum) is bound by memory traffic, and NumPy needs a
temporary and two to three more passes for it (``benchmarks/README.md`` has the
measurements, and why not ``scipy.linalg.blas``, which has ``axpy`` but no ``axpby``).

An :class:`Axpby` is made once for two arrays that never move (a network's flat
parameters, an optimizer's state): their addresses are read then, not at every call. The
library rounds as its kernel does: a kernel that fuses the multiply and the add (OpenBLAS's
SkylakeX kernel does, its Haswell kernel does not) rounds ``a*x + b*y`` once where NumPy's
``y *= b; y += a * x`` rounds three times, so the last bit may differ from NumPy's.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

import numpy as np

#: the names ``axpby`` has in OpenBLAS builds NumPy links: its wheels' (scipy-openblas,
#: 64-bit integers), a system library's with 64-bit and with 32-bit integers
_NAMES = (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("cblas_", ""))


def library() -> ctypes.CDLL | None:
    """The OpenBLAS library NumPy links, opened through ctypes, or None."""
    try:
        from threadpoolctl import threadpool_info
        info = [lib for lib in threadpool_info()
                if lib.get("internal_api") == "openblas" and "numpy" in lib.get("filepath", "")]
        return ctypes.CDLL(info[0]["filepath"]) if info else None
    except (ImportError, OSError):
        return None


@functools.cache
def _functions() -> dict:
    """dtype char ("f", "d") -> the library's axpby for it (none where it has none)."""
    lib = library()
    found = {}
    for char, real, letter in (("f", ctypes.c_float, "s"), ("d", ctypes.c_double, "d")):
        for prefix, suffix in _NAMES:
            f = getattr(lib, f"{prefix}{letter}axpby{suffix}", None) if lib else None
            if f is not None:
                size = ctypes.c_int64 if suffix else ctypes.c_int
                f.argtypes = [size, real, ctypes.c_void_p, size, real, ctypes.c_void_p, size]
                f.restype = None
                found[char] = f
                break
    return found


class Axpby:
    """``y = a*x + b*y`` over two fixed arrays (same dtype and size, contiguous), as a
    call ``axpby(a, b)``. Use :func:`axpby` to make one."""

    __slots__ = ("_function", "_size", "_x", "_y", "_arrays")

    def __init__(self, function, x: np.ndarray, y: np.ndarray):
        self._function, self._size = function, y.size
        self._x, self._y = x.ctypes.data, y.ctypes.data
        self._arrays = x, y  # the memory stays alive as long as the call can reach it

    def __call__(self, a: float, b: float) -> None:
        self._function(self._size, a, self._x, 1, b, self._y, 1)


def axpby(x: np.ndarray, y: np.ndarray) -> Axpby | None:
    """An :class:`Axpby` over ``x`` and ``y``, or None where they cannot have one (a dtype
    other than float32/float64, two sizes, not contiguous and aligned, ``y`` not
    writable, or a library without ``axpby``). Neither array may move while it is used."""
    if x.dtype != y.dtype or x.size != y.size or not y.flags.writeable \
            or not all(a.flags.c_contiguous and a.flags.aligned for a in (x, y)):
        return None
    function = _functions().get(y.dtype.char)
    return None if function is None else Axpby(function, x, y)


_controller = None  # threadpoolctl's view of the loaded libraries, made once


def thread_limit(threads: int | None):
    """A context manager that runs its block with ``threads`` BLAS threads (threadpoolctl,
    which scikit-learn installs), restoring the previous count after; None changes nothing.
    """
    global _controller
    if threads is None:
        return contextlib.nullcontext()
    if _controller is None:  # scanning the loaded libraries takes milliseconds: once
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller.limit(limits=threads, user_api="blas")
