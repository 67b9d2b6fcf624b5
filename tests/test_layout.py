"""The plan of the house holds: the engine stands on its own, importing the library is
cheap, and no room grows too big to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scratchnet"
#: what scratchnet.nn may import from the rest of scratchnet
ENGINE_MAY_IMPORT = {"errors", "checks", "registry", "options"}
#: what `import scratchnet` must not pull in (the command line's and the extras' libraries)
HEAVY = ["typer", "rich", "pydantic", "yaml", "matplotlib", "dask", "sklearn", "onnx"]
MAX_LINES = 400  # the house rule: a module is read in one sitting


def _scratchnet_imports(path: Path) -> set[str]:
    """The top-level scratchnet modules a file imports (``config`` for ``..config.diff``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # ("scratchnet", "nn")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts + [a.name] for a in node.names] if not node.module else [parts]
            else:
                names = [(node.module or "").split(".")]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in names:
            if parts[0] == "scratchnet" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "nn").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_imports_only_its_helpers(path):
    outside = _scratchnet_imports(path) - ENGINE_MAY_IMPORT - {"nn"}
    assert not outside, f"scratchnet/nn/{path.name} imports scratchnet.{sorted(outside)}"


def test_the_import_check_sees_relative_imports():
    # the check above must be able to fail: a module of the tool does import the rest
    assert {"config", "data", "nn"} <= _scratchnet_imports(PACKAGE / "experiment" / "build.py")


def test_importing_scratchnet_loads_no_heavy_library():
    code = ("import sys, scratchnet, scratchnet.nn; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


#: what the command line must not load before a command runs (timed in `make bench`)
STARTUP_HEAVY = ("numpy", "pydantic", "yaml", "scratchnet.nn", "scratchnet.config")


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"],
                                  ["sweep", "--help"], ["tune", "--help"],
                                  ["lr-find", "--help"]])
def test_the_command_line_answers_help_without_numpy_or_pydantic(argv):
    code = ("import sys\nfrom scratchnet.cli import main\ntry:\n"
            f"    main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
            f"print('LOADED', code, [m for m in {STARTUP_HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *_, line = out.stdout.strip().splitlines()
    loaded = [m for m in eval(line.split(" ", 2)[2]) if not (m == "pydantic" and len(argv) > 1)]
    assert line.split(" ")[:2] == ["LOADED", "0"] and loaded == []  # (Typer itself loads
    # pydantic for a command's --help, to know its types; the root --help does not)


def test_the_clis_copies_of_library_values_match():
    from scratchnet.cli.check import TOLERANCE
    from scratchnet.constants import HIGHER_IS_BETTER
    from scratchnet.nn import gradcheck, metrics

    assert TOLERANCE == gradcheck.TOLERANCE
    assert HIGHER_IS_BETTER == metrics.HIGHER_IS_BETTER


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long_to_read(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"
