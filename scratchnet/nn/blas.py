"""In-place vector updates through the BLAS library NumPy itself links.

An optimizer step is element-wise work over every parameter, and for a large weight
matrix it is bound by memory traffic: SGD with momentum written in NumPy
(``v *= m; v += lr * g; p -= v``) passes over memory four times and allocates a
temporary as large as the weights. OpenBLAS's ``axpby`` (``y = a*x + b*y``) does the
same in two calls, ``v = lr*g + m*v`` and ``p = -1*v + 1*p``, with no temporary. It is
found once, through threadpoolctl (which the trainer uses to limit BLAS threads), and
called through ctypes; where NumPy links another BLAS, or the library lacks the symbol,
the update functions answer False and the caller does the work in NumPy.
``enabled = False`` turns them off (for comparisons).

OpenBLAS's ``axpby`` rounds ``a*x`` and ``b*y`` before adding them, as NumPy does (and
``-1*v``, ``1*p`` are exact), so the updates are the very numbers NumPy's operations give
(checked for OpenBLAS 0.3.31; a library whose ``axpby`` fuses the multiply and the add
may differ from NumPy in the last bit). ``axpby`` rather than ``axpy`` for ``p -= v``:
OpenBLAS 0.3.31 splits an ``axpy`` of over 10,000 numbers across its threads, which at
two threads made the momentum update of a 784 x 1024 float32 weight 2.6x slower (0.34 ms
against 0.13 ms, measured alone); it does not split ``axpby`` (0.13 ms at either count).
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

#: False: never call the BLAS library (every function answers False)
enabled = True

_functions: dict | None = None  # dtype char -> axpby, filled on first use
_steps: dict[tuple, tuple] = {}  # (id of each array of a step) -> its prepared call


def library() -> ctypes.CDLL | None:
    """The OpenBLAS library NumPy links, opened through ctypes, or None."""
    try:
        from threadpoolctl import threadpool_info
        info = [lib for lib in threadpool_info()
                if lib.get("internal_api") == "openblas" and "numpy" in lib.get("filepath", "")]
        return ctypes.CDLL(info[0]["filepath"]) if info else None
    except (ImportError, OSError):
        return None


def _library_functions() -> dict:
    lib = library()
    if lib is None:
        return {}
    found = {}
    for char, real in (("f", ctypes.c_float), ("d", ctypes.c_double)):
        p = "s" if char == "f" else "d"
        for prefix, suffix in (("scipy_cblas_", "64_"), ("cblas_", "64_"), ("cblas_", "")):
            name = f"{prefix}{p}axpby{suffix}"
            if hasattr(lib, name):
                size = ctypes.c_int64 if suffix else ctypes.c_int
                axpby = getattr(lib, name)
                axpby.argtypes = [size, real, ctypes.c_void_p, size, real, ctypes.c_void_p, size]
                axpby.restype = None
                found[char] = axpby
                break
    return found


def _usable(*arrays: np.ndarray):
    """The axpby function for these arrays, or None when they cannot use it."""
    global _functions
    if not enabled:
        return None
    first = arrays[0]
    char = first.dtype.char
    for a in arrays:
        if a.dtype.char != char or a.size != first.size or not a.flags.c_contiguous \
                or not a.flags.writeable or not a.flags.aligned:
            return None
    if _functions is None:
        _functions = _library_functions()
    return _functions.get(char)


def _prepared(*arrays: np.ndarray):
    """(size, data pointers, axpby) of arrays an update step keeps using (a
    parameter, its gradient, its velocity), prepared once: an optimizer step at batch 60
    is short enough for the checks to count."""
    key = tuple(map(id, arrays))
    hit = _steps.get(key)
    if hit is not None and all(ref() is a for ref, a in zip(hit[0], arrays)):
        return hit[1]
    pair = _usable(*arrays)
    if pair is None:
        return None
    if len(_steps) > 4096:
        for k in [k for k, (refs, _) in _steps.items() if any(r() is None for r in refs)]:
            del _steps[k]
    call = (arrays[0].size, [a.ctypes.data for a in arrays], pair)
    _steps[key] = ([weakref.ref(a) for a in arrays], call)
    return call


def momentum_step(lr: float, momentum: float, grad: np.ndarray, velocity: np.ndarray,
                  value: np.ndarray) -> bool:
    """``velocity = momentum * velocity + lr * grad; value -= velocity`` in two passes;
    False (nothing done) when unavailable."""
    call = _prepared(grad, velocity, value) if enabled else None
    if call is None:
        return False
    n, (g, v, p), axpby = call
    axpby(n, lr, g, 1, momentum, v, 1)
    axpby(n, -1.0, v, 1, 1.0, p, 1)
    return True


def sgd_step(lr: float, grad: np.ndarray, value: np.ndarray) -> bool:
    """``value -= lr * grad`` in one pass; False (nothing done) when unavailable."""
    call = _prepared(grad, value) if enabled else None
    if call is None:
        return False
    n, (g, p), axpby = call
    axpby(n, -lr, g, 1, 1.0, p, 1)
    return True
