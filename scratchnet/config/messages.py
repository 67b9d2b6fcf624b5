"""One-line messages for config mistakes: ``file:line: key.path: got VALUE: expected``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ..registry import did_you_mean
from .schema import ExperimentConfig


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def locate(source: str, loc: tuple, lines: dict[tuple, int],
           overridden: dict[tuple, str] | None = None) -> str:
    """``file:line``; ``file (--set KEY=VALUE)`` when the value at ``loc`` came from an
    override (the file's line would point at a value the user did not give), and
    ``file:line (--set KEY=VALUE)`` when an override changed something inside it."""
    items = reversed(list((overridden or {}).items()))
    for path, item in items:
        if loc[:len(path)] == path:
            return f"{source} (--set {item})"
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    inside = [item for path, item in (overridden or {}).items() if loc and path[:len(loc)] == loc]
    return f"{where} (--set {inside[-1]})" if inside else where


def format_validation_error(err: ValidationError, source: str, lines: dict[tuple, int],
                            model=ExperimentConfig,
                            overridden: dict[tuple, str] | None = None) -> str:
    """The first error as one line: ``file:line: key.path: got VALUE; expected ...``."""
    e = err.errors()[0]
    kind = e["type"]
    loc = tuple(str(p) for p in e["loc"])
    # pydantic adds the union member it tried ("float", "literal['test']", a class name) to
    # the location; keep only the user's keys (the last part of an unknown key is one).
    keep = len(loc) - 1 if kind == "extra_forbidden" else len(loc)
    loc = tuple(p for i, p in enumerate(loc) if i >= keep or not _is_union_tag(p))
    path = ".".join(loc) or "(top level)"
    where = locate(source, loc, lines, overridden)
    if kind == "extra_forbidden":
        parent = _submodel(model, loc[:-1])
        fields = list(parent.model_fields) if parent else []
        message = f"unknown key {loc[-1]!r}{did_you_mean(loc[-1], fields)}"
        if fields:
            message += f"; expected one of: {', '.join(fields)}"
    elif kind == "missing":
        message = "required key is missing"
    else:
        msg = e["msg"]
        msg = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
        msg = msg[:1].lower() + msg[1:]
        value = e.get("input")
        # a mapping is the input of a whole-section check, too long to quote; but a list
        # or mapping given where a plain value belongs is the bad value itself
        if (isinstance(value, (dict, list)) and not kind.endswith("_type")) or repr(value) in msg:
            message = msg  # the message already quotes what matters
        else:
            message = f"got {show(value)}: {msg}"
    return f"{where}: {path}: {message}"


def _is_union_tag(part: str) -> bool:
    return (any(c in part for c in "[(,") or part[:1].isupper()
            or part in ("str", "float", "int", "bool", "none"))


def _submodel(model, loc: tuple):
    """The pydantic model at a key path (None past a list or a plain mapping)."""
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann] + list(getattr(ann, "__args__", ()))
        for c in list(candidates):
            candidates += list(getattr(c, "__args__", ()))
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            return None
        model = nxt
    return model


