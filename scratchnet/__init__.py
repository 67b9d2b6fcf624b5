"""scratchnet: neural networks from scratch in NumPy, with the API of *Deep Learning from
Scratch* (Operation, Dense, SoftmaxCrossEntropy, SGDMomentum, Trainer), made correct.

The engine lives in :mod:`scratchnet.nn`; its public names are re-exported here, so
``from scratchnet import Dense, Trainer`` reads as in the book. They are loaded on first
use (PEP 562), so the command line can start, and answer ``--version``, without NumPy.
"""

import importlib

from .errors import ConfigError, DataError, DivergenceError, ScratchnetError, ShapeError

__version__ = "0.1.0"

_OWN = ["ConfigError", "DataError", "DivergenceError", "ScratchnetError", "ShapeError",
        "__version__"]


def __getattr__(name: str):
    if name.startswith("__") and name != "__all__":  # dunders the import system probes
        raise AttributeError(name)
    engine = importlib.import_module(f"{__name__}.nn")
    if name == "__all__":
        return [*_OWN, *engine.__all__]
    if name in engine.__all__:
        return getattr(engine, name)
    if name in globals():  # a submodule, imported just now
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
