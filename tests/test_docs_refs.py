"""Every Sphinx cross-reference in scratchnet's docstrings and comments, and in the docs,
names something that exists: ``:class:`~scratchnet.nn.Trainer``` imports and finds
``Trainer``, so a rename or a move that leaves a reference behind fails here.

A target resolves as Sphinx resolves it: relative to the class it is written in, then to its
module (and, for a leading dot, to the module's packages), then as a full dotted path. An
attribute counts when the class has it, declares it (annotations, dataclass fields) or
assigns it to ``self`` in its source.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scratchnet"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: a role and its target, which may wrap onto the next line of a docstring
ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj):`([^`]+)`")
_MISSING = object()


def _import(dotted: str):
    """The object at ``dotted`` (a module, or attributes below the longest importable
    module prefix), or _MISSING."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, name in enumerate(parts[cut:], start=cut):
            found = getattr(obj, name, _MISSING)
            if found is _MISSING and inspect.isclass(obj) and i == len(parts) - 1:
                return name if _declares(obj, name) else _MISSING
            if found is _MISSING:
                return _MISSING
            obj = found
        return obj
    return _MISSING


def _declares(cls: type, name: str) -> bool:
    """Whether instances of ``cls`` have ``name`` though the class itself does not."""
    for klass in inspect.getmro(cls):
        if name in getattr(klass, "__annotations__", {}):
            return True
        if name in getattr(klass, "__dataclass_fields__", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if re.search(rf"\bself\.{re.escape(name)}\s*(:[^=]+)?=", source):
            return True
    return False


def _target(raw: str) -> str:
    """The dotted name in a role's text: no title, ``~``/``!`` prefix, ``()``, or line
    break (with the ``#:`` of a comment that wraps it)."""
    text = " ".join(re.sub(r"\n\s*#:?", " ", raw).split())
    titled = re.fullmatch(r".*<(.+)>", text)
    name = titled.group(1) if titled else text
    return name.lstrip("~!").removesuffix("()").replace(" ", "")


def resolves(target: str, module: str | None = None, cls: str | None = None) -> bool:
    """Whether ``target`` names an object, read in ``module`` (dotted) inside class
    ``cls`` (dotted below the module), as Sphinx reads it."""
    relative = target.startswith(".")
    name = target.lstrip(".")
    scopes = []
    if module:
        if cls:
            scopes += [f"{module}.{'.'.join(cls.split('.')[:k])}"
                       for k in range(cls.count(".") + 1, 0, -1)]
        scopes.append(module)
        if relative:  # ``.name``: also the packages above the module
            parts = module.split(".")
            scopes += [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    candidates = [f"{scope}.{name}" for scope in scopes] + [name]
    return any(_import(c) is not _MISSING for c in candidates)


def _contexts(tree: ast.Module) -> list[tuple[int, int, str | None]]:
    """(first line, last line, dotted class) of every class and function, innermost last."""
    found = []

    def walk(node, classes):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                inside = [*classes, child.name]
                found.append((child.lineno, child.end_lineno, ".".join(inside)))
                walk(child, inside)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((child.lineno, child.end_lineno,
                              ".".join(classes) if classes else None))
                walk(child, classes)

    walk(tree, [])
    return found


def unresolved(text: str, module: str | None = None,
               contexts: list[tuple[int, int, str | None]] = ()) -> list[str]:
    """``line: role`` for each reference in ``text`` whose target does not resolve."""
    bad = []
    for match in ROLE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        inner = [c for first, last, c in contexts if first <= line <= last]
        cls = inner[-1] if inner else None
        if not resolves(_target(match.group(2)), module, cls):
            bad.append(f"{line}: {match.group(0)}")
    return bad


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_reference_in_the_source_resolves(path):
    text = path.read_text(encoding="utf-8")
    if not ROLE.search(text):
        return
    bad = unresolved(text, _module_name(path), _contexts(ast.parse(text)))
    assert not bad, f"{path.relative_to(ROOT)}: stale references:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_in_the_docs_resolves(path):
    bad = unresolved(path.read_text(encoding="utf-8"))
    assert not bad, f"{path.relative_to(ROOT)}: stale references:\n" + "\n".join(bad)


def test_the_package_holds_references_to_check():
    """The scan reads the roles the package writes (a changed pattern would pass all)."""
    count = sum(len(ROLE.findall(p.read_text(encoding="utf-8"))) for p in SOURCES)
    assert count > 200


@pytest.mark.parametrize("text, module, cls", [
    (":class:`~scratchnet.nn.Trainer`", None, None),
    (":meth:`~scratchnet.nn.Trainer.fit`", None, None),
    (":func:`plan_experiment`", "scratchnet.experiment.plan", None),
    (":meth:`fit`", "scratchnet.nn.trainer", "Trainer"),
    (":attr:`epochs_run`", "scratchnet.nn.history", "History"),
    (":mod:`scratchnet.options`", None, None),
    (":class:`the trainer <scratchnet.nn.Trainer>`", None, None),
    (":func:`.plan_experiment`", "scratchnet.experiment.plan", None),
    (":class:`~scratchnet.nn.\n    Trainer`", None, None),
    (":func:`~scratchnet.experiment.build.\n    #: data_sizes`", None, None),
])
def test_a_good_reference_resolves(text, module, cls):
    assert unresolved(text, module, [(1, 2, cls)]) == []


@pytest.mark.parametrize("text, module, cls", [
    (":class:`scratchnet.network.NeuralNetwork`", None, None),  # the old module
    (":func:`~scratchnet.trainer.evaluate`", None, None),
    (":meth:`fit`", "scratchnet.nn.trainer", None),  # Trainer's, not the module's
    (":attr:`no_such_attribute`", "scratchnet.nn.history", "History"),
    (":data:`scratchnet.nn.NO_SUCH_TABLE`", None, None),
])
def test_a_stale_reference_is_reported(text, module, cls):
    assert unresolved(text, module, [(1, 2, cls)]) == [f"1: {text}"]
