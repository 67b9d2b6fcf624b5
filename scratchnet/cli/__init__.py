"""The ``scratchnet`` command line: parse, call the library, render.

Commands live one group per module; they all register on :data:`app`. Errors from the
library are caught in :func:`main` and shown as one line on stderr (``--debug`` or
``SCRATCHNET_DEBUG=1`` shows the traceback): exit 2 for usage and config errors, 1 for
failures while running, 0 for success.

Starting is quick: ``--version`` is answered before the command line is built, and the
command modules import NumPy, pydantic and the engine only when a command runs (a test
holds ``--help`` to that).
"""

import sys

from .. import __version__

#: the modules whose commands register on the app, in the order ``--help`` lists them
COMMANDS = ("train", "predict", "generate", "listing", "sweep", "tune", "inspect", "explain",
            "check", "export", "lr_find", "report")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``scratchnet`` script and ``python -m scratchnet``."""
    args = sys.argv[1:] if argv is None else argv
    if list(args) == ["--version"]:
        print(f"scratchnet {__version__}")
        sys.exit(0)
    from .app import main as run

    _register()
    run(argv)


def _register():
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}")


def __getattr__(name: str):
    if name == "app":  # the Typer app, its commands registered
        _register()
        from .app import app

        return app
    if name == "command_group":  # the click group built from it, as the help shows it
        _register()
        from .app import command_group

        return command_group()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
