"""scratchnet: neural networks from scratch in NumPy, with the API of *Deep Learning from
Scratch* (Operation, Dense, SoftmaxCrossEntropy, SGDMomentum, Trainer), made correct.

The engine lives in :mod:`scratchnet.nn`; its public names are re-exported here, so
``from scratchnet import Dense, Trainer`` reads as in the book.
"""

from .errors import ConfigError, DataError, DivergenceError, ScratchnetError, ShapeError
from .nn import *  # noqa: F401,F403  (the engine's public names)
from .nn import __all__ as _engine_names

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "DivergenceError", "ScratchnetError", "ShapeError",
           "__version__", *_engine_names]
