"""Where a run ran: scratchnet's version, Python, NumPy, the BLAS library NumPy links (its
kernel and thread count, through threadpoolctl), the CPU model and the platform.

``summary.json`` and the checkpoint record it (``environment``); ``compare`` shows the keys
that differ between runs; a resume on another BLAS library, kernel or CPU warns, since the
floating-point sums (and so the run's numbers) are then no longer bit for bit those of an
uninterrupted run.
"""

from __future__ import annotations

import platform
import warnings
from functools import lru_cache

from . import __version__
from .errors import ScratchnetWarning

#: the keys whose change makes a resumed run's numbers differ from an uninterrupted run's
#: (the BLAS library picks its kernels by library, version and CPU)
BIT_IDENTITY = ("blas.library", "blas.version", "blas.kernel", "cpu")


def cpu_model() -> str:
    """The processor's name: Linux's ``/proc/cpuinfo`` "model name" (or "Processor" on
    some ARM kernels), else what :func:`platform.processor` says, else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@lru_cache(maxsize=1)
def _blas_library() -> tuple:
    """NumPy's BLAS library as threadpoolctl reports it, found once (a scan of the loaded
    libraries takes milliseconds, and a checkpoint records it)."""
    import numpy  # noqa: F401  (threadpoolctl sees only libraries already loaded)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ()
    found = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    # the one NumPy links, when several are loaded (SciPy's, Torch's MKL, ...)
    found.sort(key=lambda lib: "numpy" not in str(lib.get("filepath", "")))
    if not found:
        return ()
    lib = found[0]
    return (lib.get("internal_api"), lib.get("version"), lib.get("architecture"),
            lib.get("num_threads"))


def blas(threads: int | None = None) -> dict | None:
    """NumPy's BLAS library: ``{"library", "version", "kernel", "threads"}`` (``threads``:
    the count training uses when given, else the library's own); None when threadpoolctl
    finds none (NumPy built without one, or threadpoolctl missing)."""
    found = _blas_library()
    if not found:
        return None
    library, version, kernel, own = found
    return {"library": library, "version": version, "kernel": kernel,
            "threads": threads if threads is not None else own}


@lru_cache(maxsize=1)
def _fixed() -> tuple:
    import numpy

    return (platform.python_version(), numpy.__version__, cpu_model(), platform.platform())


def describe(blas_threads: int | None = None) -> dict:
    """This process's environment, as ``summary.json`` records it."""
    python, numpy_version, cpu, system = _fixed()
    return {"scratchnet": __version__, "python": python, "numpy": numpy_version,
            "blas": blas(blas_threads), "cpu": cpu, "platform": system}


def _get(env: dict, dotted: str):
    node = env
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def changes(recorded: dict | None, now: dict) -> list[str]:
    """``key: recorded -> now`` for each :data:`BIT_IDENTITY` key that differs; nothing when
    nothing was recorded (a run saved before scratchnet recorded its environment)."""
    if not isinstance(recorded, dict):
        return []
    return [f"{key} {_get(recorded, key)} -> {_get(now, key)}" for key in BIT_IDENTITY
            if _get(recorded, key) != _get(now, key)]


def warn_if_moved(recorded: dict | None, where: str) -> None:
    """One warning when ``where`` (a run folder being resumed) was saved on another BLAS
    library, kernel or CPU than this process has."""
    moved = changes(recorded, describe())
    if moved:
        warnings.warn(f"resuming {where} on another machine or BLAS build ({'; '.join(moved)}): "
                      "training goes on, but its numbers are no longer bit for bit those of "
                      "an uninterrupted run", ScratchnetWarning, stacklevel=2)
