"""The Typer application, the consoles, and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys

import click
import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import ConfigError, DataError, DivergenceError, ScratchnetError, ShapeError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="scratchnet",
    help="Train, evaluate and compare NumPy neural networks from YAML experiment files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: diagnostics, progress and errors: never on stdout, so pipelines stay clean
err_console = Console(stderr=True, highlight=False)
_debug = False


def human_console(json_mode: bool, quiet: bool) -> Console | None:
    """Where tables for people go: stdout normally, stderr when stdout carries JSON, and
    nowhere with --quiet."""
    if quiet:
        return None
    return err_console if json_mode else Console(highlight=False)


def _version(value: bool):
    if value:
        typer.echo(f"scratchnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    global _debug
    _debug = debug or os.environ.get("SCRATCHNET_DEBUG", "") not in ("", "0")


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``scratchnet`` script and ``python -m scratchnet``."""
    try:
        code = app(args=argv, prog_name="scratchnet", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted")
        code = 130
    except click.ClickException as e:
        e.show()
        code = EXIT_USAGE if isinstance(e, click.UsageError) else e.exit_code
    except (ConfigError, ShapeError) as e:
        _report(e)
        code = EXIT_USAGE
    except (DataError, DivergenceError, ScratchnetError) as e:
        _report(e)
        code = EXIT_FAILURE
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code = 130
    except Exception as e:  # a bug: still one line, unless --debug
        if _debug:
            raise
        err_console.print(f"[bold red]internal error:[/] {escape(type(e).__name__ + ': ' + str(e))} "
                          "(run with --debug for the traceback)", soft_wrap=True)
        code = EXIT_FAILURE
    sys.exit(code if isinstance(code, int) else 0)


def _report(e: Exception) -> None:
    if _debug:
        import traceback

        traceback.print_exception(e)
    text = " ".join(str(e).split("\n"))
    err_console.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True, markup=True, highlight=False)
