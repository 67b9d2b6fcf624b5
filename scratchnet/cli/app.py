"""The Typer application, the consoles, and the one place errors become exit codes."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import (ConfigError, DataError, DivergenceError, ScratchnetError, ScratchnetWarning,
                      ShapeError)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="scratchnet",
    help="Train, evaluate and compare NumPy neural networks from YAML experiment files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: the panels ``--help`` groups the commands in, in this order
PANELS = TRAIN_PANEL, PLOT_PANEL, SEARCH_PANEL, TOOLS_PANEL = (
    "Train and evaluate", "Compare and plot", "Search", "Tools")


class _WithoutTrailingSpaces:
    """stdout or stderr (whichever is current when written to, as a console's own
    default is), where each line written loses the spaces at its end while the stream
    is not a terminal: rich pads table cells to their column's width, which a log file
    or a pipe should not keep."""

    def __init__(self, stderr: bool):
        self.stderr = stderr

    @property
    def stream(self):
        stream = sys.stderr if self.stderr else sys.stdout
        # (past the proxy a live display puts in place of sys.stdout, as rich's own does)
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        stream = self.stream
        return stream.write(text if stream.isatty() else _TRAILING_SPACES.sub("\n", text))

    def __getattr__(self, name):  # flush, isatty, fileno, encoding...
        return getattr(self.stream, name)


_TRAILING_SPACES = re.compile(" +\n")


def make_console(stderr: bool = False) -> Console:
    """A console for people. Written to a file or a pipe, rich would assume 80 columns and
    cut table cells (experiment names) short; there, tables get the width they need
    (unless COLUMNS says otherwise), and lines end without padding."""
    console = Console(file=_WithoutTrailingSpaces(stderr), highlight=False,
                      emoji=False)  # ":a:" is no emoji code
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = 240
    return console


#: what a terminal obeys rather than shows: C0 and C1 controls (ESC starts the sequences
#: that move the cursor, clear the screen or retitle the window), DEL, and the Unicode
#: marks that reorder text (bidirectional overrides and isolates)
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """``text`` with every terminal control character written as its escape (``\\x1b``),
    for text read from files (CSV headers, class names, file names, configs and run folders
    from elsewhere) on its way to a terminal. Rich's markup escaping does not do this."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def cell(text) -> str:
    """:func:`printable` text, also safe inside rich markup (a table cell, a message)."""
    return escape(printable(text))


#: diagnostics, progress and errors: never on stdout, so pipelines stay clean
err_console = make_console(stderr=True)
#: the consoles a live progress bar is drawn on now (``train``'s ConsoleReporter)
live_consoles: list[Console] = []


def diagnostics_console() -> Console:
    """Where a message goes while a command runs: stderr, or, while a progress bar is
    live on a terminal and stderr is a terminal too, the bar's console, which prints
    above the bar (text from a second console would land in the middle of it)."""
    if live_consoles and err_console.is_terminal:
        return live_consoles[-1]
    return err_console


_debug = False


def emit_json(obj) -> None:
    """``--json`` output: one line of standard JSON on stdout (NaN and infinities as null)."""
    from ..runs import json_text

    sys.stdout.write(json_text(obj) + "\n")
    sys.stdout.flush()


def human_console(json_mode: bool, quiet: bool) -> Console | None:
    """Where tables for people go: stdout normally, stderr when stdout carries JSON, and
    nowhere with --quiet."""
    if quiet:
        return None
    return err_console if json_mode else make_console()


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
    _debug = _debug or debug or os.environ.get("SCRATCHNET_DEBUG", "") not in ("", "0")


def _show_warning(message, category, filename, lineno, file=None, line=None,
                  _python=warnings.showwarning):
    """The library's own warnings (a tracker that failed, say) as one ``warning:`` line."""
    if not issubclass(category, ScratchnetWarning):
        return _python(message, category, filename, lineno, file, line)
    diagnostics_console().print(f"[yellow]warning:[/] {cell(' '.join(str(message).split()))}",
                                soft_wrap=True, highlight=False)


#: options people try that no command has, and the config key ``--set`` reaches instead
SET_HINTS = {"--learning-rate": "optimizer.lr", "--eval-every": "train.eval_every",
             "--optimizer": "optimizer.name", "--dataset": "data.dataset",
             "--dtype": "train.dtype", "--momentum": "optimizer.momentum"}


def _set_hint(command_group, argv: list[str]) -> str | None:
    """``show has no option --momentum; set it with --set optimizer.momentum=0.5``, when
    the command line gives one of :data:`SET_HINTS` to a command that takes ``--set``."""
    from .common import CONFIG_FLAGS

    words = argv[:argv.index("--")] if "--" in argv else argv
    tried = [(i, w.split("=", 1)) for i, w in enumerate(words) if w.split("=", 1)[0] in SET_HINTS]
    command = next((w for w in words if not w.startswith("-")), None)
    if not tried or command is None:
        return None
    params = getattr(command_group, "commands", {}).get(command)
    names = {o for p in getattr(params, "params", []) for o in getattr(p, "opts", [])}
    if "--set" not in names:
        return None
    for i, (option, *value) in tried:
        if option not in names:
            shown = value[0] if value else (words[i + 1] if i + 1 < len(words) else "VALUE")
            key = SET_HINTS[option]
            flag = next((f for f, spec in CONFIG_FLAGS.items() if spec.key == key), None)
            also = f" (or {flag} {shown})" if flag in names else ""
            return f"{command} has no option {option}; set it with --set {key}={shown}{also}"
    return None


#: how ``--help`` shows the value an option takes, by the type Typer shows (a flag takes
#: none; a choice lists its values)
_VALUE_NAMES = {"bool": None, "int": "N", "int range": "N", "float": "X", "float range": "X",
                "str": "TEXT", "path": "PATH", "Path": "PATH"}


def _tidy_help(group) -> None:
    """``--help`` without Typer's type labels (``<bool>``, ``<list[str]>``): an argument is
    shown by its name alone, a flag by its name, an option by the name of its value."""
    for command in [group, *getattr(group, "commands", {}).values()]:
        if command.help:  # rich keeps a docstring's line breaks; a paragraph is one line
            command.help = "\n\n".join(" ".join(p.split()) for p in command.help.split("\n\n"))
        for param in command.params:
            _tidy_param(param)
        made = getattr(command, "get_help_option", None)
        if made is not None:  # -h/--help is made when help is asked for
            command.get_help_option = lambda ctx, made=made: _tidy_param(made(ctx))


def _tidy_param(param):
    shown = getattr(param, "display_type_rich", None)
    if shown is None or getattr(shown, "tidy", False):
        return param
    if param.param_type_name == "argument":
        def label(ctx):
            return None
    else:
        def label(ctx):
            return _value_name(shown(ctx))
    label.tidy = True
    param.display_type_rich = label
    return param


def _value_name(label: str | None) -> str | None:
    if not label:
        return label
    inner = label.strip("<>").removeprefix("list[").removesuffix("]").rstrip(".")
    return _VALUE_NAMES.get(inner, inner)


_command = None


def command_group():
    """The click group Typer builds from :data:`app`, built once, its help tidied."""
    global _command
    if _command is None:
        _command = typer.main.get_command(app)
        _tidy_help(_command)
        # Typer lists the panels in the order it meets them: the commands, panel by panel
        order = {name: i for i, name in enumerate(PANELS)}
        _command.commands = dict(sorted(
            _command.commands.items(),
            key=lambda item: order.get(getattr(item[1], "rich_help_panel", None), len(order))))
    return _command


def run(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv``) with the commands registered,
    and exit with its code: what :func:`scratchnet.cli.main`, the one entry point, does
    once the command is more than ``--version``."""
    global _debug
    warnings.showwarning = _show_warning
    _debug = False
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" in argv[:end]:  # before or after the command's name
        _debug = True
        argv = [w for i, w in enumerate(argv) if i >= end or w != "--debug"]
    group = command_group()
    hint = _set_hint(group, argv)
    if hint is not None:
        err_console.print(f"[bold red]error:[/] {escape(hint)}", soft_wrap=True, highlight=False)
        sys.exit(EXIT_USAGE)
    try:
        code = group.main(args=argv, prog_name="scratchnet", standalone_mode=False)
    except (ConfigError, ShapeError) as e:
        _report(e)
        code = EXIT_USAGE
    except (DataError, DivergenceError, ScratchnetError) as e:
        _report(e)
        code = EXIT_FAILURE
    except Exception as e:
        code = 130 if type(e).__name__ == "Abort" else _usage_error(group, argv, e)  # Ctrl-C
        if code is None:  # a bug: still one line, unless --debug
            if _debug:
                raise
            what = cell(f"{type(e).__name__}: {e}")
            err_console.print(f"[bold red]internal error:[/] {what} (run with --debug for the "
                              "traceback)", soft_wrap=True)
            code = EXIT_FAILURE
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _usage_error(group, argv: list[str], e: Exception) -> int | None:
    """Typer's (click's) errors about the command line as one ``error:`` line naming the
    help to read, exit 2 (Typer ships its own copy of click, so they are known by their
    shape, not their class); the help itself for no command at all. None for any other
    exception."""
    if not (hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int)):
        return None
    if type(e).__name__ == "NoArgsIsHelpError":
        with contextlib.redirect_stdout(sys.stderr):
            group.main(args=[*argv, "--help"], prog_name="scratchnet", standalone_mode=False)
        return EXIT_USAGE
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "scratchnet"
    message = " ".join(e.format_message().split()).rstrip(".")
    err_console.print(f"[bold red]error:[/] {cell(message)}; see {cell(where)} --help",
                      soft_wrap=True, highlight=False)
    return e.exit_code


def _report(e: Exception) -> None:
    if _debug:
        import traceback

        traceback.print_exception(e)
    text = " ".join(str(e).split("\n"))
    err_console.print(f"[bold red]error:[/] {cell(text)}", soft_wrap=True, markup=True,
                      highlight=False)
