"""One-line messages for config mistakes: ``file:line: key.path: got VALUE: expected``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ..registry import did_you_mean
from .schema import LAYER_CONFIGS, ExperimentConfig


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
            return f"{source} ({item})"
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    inside = [item for path, item in (overridden or {}).items() if loc and path[:len(loc)] == loc]
    return f"{where} ({inside[-1]})" if inside else where


@dataclass(frozen=True)
class Origin:
    """Where a config came from, so that any later check can point at a key: the file
    (or another source name), the line of each key path, and the key paths ``--set``
    overrode (each with its option text)."""

    source: str = "<config>"
    lines: dict = field(default_factory=dict)
    overridden: dict = field(default_factory=dict)

    def locate(self, loc: tuple) -> str:
        return locate(self.source, tuple(str(p) for p in loc), self.lines, self.overridden)

    def message(self, loc: tuple, text: str) -> str:
        """``file:line: key.path: text``."""
        path = ".".join(str(p) for p in loc) or "(top level)"
        return f"{self.locate(loc)}: {path}: {text}"


def format_validation_errors(err: ValidationError, origin: Origin,
                             model=ExperimentConfig) -> list[str]:
    """Every error as one line, ``file:line: key.path: got VALUE: expected ...``, one per
    key path (a union reports each member it tried; the first says enough)."""
    out, seen = [], set()
    for e in err.errors():
        loc, line = _format_one(e, origin, model)
        if loc not in seen:
            seen.add(loc)
            out.append(line)
    return out


def _format_one(e: dict, origin: Origin, model) -> tuple[tuple, str]:
    kind = e["type"]
    loc = tuple(str(p) for p in e["loc"])
    # pydantic adds the union member it tried ("float", "literal['test']", a class name) to
    # the location; keep only the user's keys (the last part of an unknown key is one).
    keep = len(loc) - 1 if kind == "extra_forbidden" else len(loc)
    layer_type = next((p for p in loc[:keep] if p in LAYER_CONFIGS), None)
    loc = tuple(p for i, p in enumerate(loc) if i >= keep or not _is_union_tag(p))
    if kind == "extra_forbidden":
        parent = LAYER_CONFIGS[layer_type] if layer_type else _submodel(model, loc[:-1])
        fields = _key_order(parent) if parent else []
        message = f"unknown key {loc[-1]!r}{did_you_mean(loc[-1], fields)}"
        if fields:
            message += f"; expected one of: {', '.join(fields)}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":  # a layer of a type there is none of
        tag = e["ctx"]["tag"]
        message = (f"unknown layer type {tag!r}{did_you_mean(tag, LAYER_CONFIGS)}; expected "
                   f"one of: {', '.join(LAYER_CONFIGS)}")
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
    return loc, origin.message(loc, message)


def _key_order(model) -> list[str]:
    """A model's keys as a person reads them: its own first, then what it shares with
    other layer types, ``type`` last."""
    own = [k for k in model.__annotations__ if k in model.model_fields and k != "type"]
    rest = [k for k in model.model_fields if k not in own and k != "type"]
    return own + rest + (["type"] if "type" in model.model_fields else [])


def _is_union_tag(part: str) -> bool:
    return (any(c in part for c in "[(,-") or part[:1].isupper() or part in LAYER_CONFIGS
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


