"""The ``scratchnet`` command line: parse, call the library, render.

Commands live one group per module; they all register on :data:`app`. Errors from the
library are caught in :func:`main` and shown as one line on stderr (``--debug`` or
``SCRATCHNET_DEBUG=1`` shows the traceback): exit 2 for usage and config errors, 1 for
failures while running, 0 for success.
"""

from .app import app, main  # noqa: F401
from . import train, inspect, tools, predict, export, sweep, check, tune  # noqa: F401  (register the commands)
