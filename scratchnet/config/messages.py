"""One-line messages for config mistakes: ``file:line: key.path: got VALUE: expected``."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..registry import did_you_mean
from .declared import Dispatch
from .schema import ExperimentConfig


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def locate(source: str, loc: tuple, lines: dict[tuple, tuple[str, int]],
           overridden: dict[tuple, str] | None = None) -> str:
    """``file:line`` (of the file that wrote the key: the experiment's, or a base's);
    ``source (--set KEY=VALUE)`` when the value at ``loc`` came from an override (the
    file's line would point at a value the user did not give), and ``file:line (--set
    KEY=VALUE)`` when an override changed something inside it."""
    item = _override(loc, overridden)
    if item is not None:
        return f"{source} ({item})"
    found = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{found[0]}:{found[1]}" if found else source
    inside = [item for path, item in (overridden or {}).items() if loc and path[:len(loc)] == loc]
    return f"{where} ({inside[-1]})" if inside else where


def _override(loc: tuple, overridden: dict[tuple, str] | None) -> str | None:
    """The ``--set`` that gave the value at ``loc`` (the last of those that did)."""
    for path, item in reversed(list((overridden or {}).items())):
        if loc[:len(path)] == path:
            return item
    return None


@dataclass(frozen=True)
class Origin:
    """Where a config came from, so that any later check can point at a key: the file
    (or another source name), the file and line that wrote each key path (``(file,
    line)``: the experiment file, or a base it builds on), and the key paths ``--set``
    overrode (each with its option text)."""

    source: str = "<config>"
    lines: dict = field(default_factory=dict)
    overridden: dict = field(default_factory=dict)

    def locate(self, loc: tuple) -> str:
        return locate(self.source, tuple(str(p) for p in loc), self.lines, self.overridden)

    def set_by(self, loc: tuple) -> str | None:
        """Who gave the value at ``loc`` itself: ``file:line``, the ``--set`` option, or
        None (a default)."""
        loc = tuple(str(p) for p in loc)
        item = _override(loc, self.overridden)
        if item is not None:
            return item
        return f"{self.lines[loc][0]}:{self.lines[loc][1]}" if loc in self.lines else None

    def message(self, loc: tuple, text: str) -> str:
        """``file:line: key.path: text``."""
        path = ".".join(str(p) for p in loc) or "(top level)"
        return f"{self.locate(loc)}: {path}: {text}"


def format_validation_errors(err: ValidationError, origin: Origin,
                             model=ExperimentConfig) -> list[str]:
    """Every error as one line, ``file:line: key.path: message``, one per key path (a
    union reports each member it tried; the first says enough). A value the engine's
    declaration refuses reads as the engine's message, at the key it names."""
    found = [_format_one(e, origin, model) for e in err.errors()]
    # a union's member that is a section, and failed inside: its complaint is the one
    # (not "input should be a valid boolean" from the member beside it)
    inside = {loc[:n] for loc, _, _ in found for n in range(len(loc))}
    out, seen = [], set()
    for loc, line, beside in found:
        if loc not in seen and not (beside and loc in inside):
            seen.add(loc)
            out.append(line)
    return out


def _format_one(e: dict, origin: Origin, model) -> tuple[tuple, str, bool]:
    """The key path, the line, and whether it is the complaint of a union's plain member
    (``bool``, ``literal[...]``)."""
    kind = e["type"]
    loc, parent, dispatch, beside, kinds = _walk(model, tuple(e["loc"]))
    error = (e.get("ctx") or {}).get("error")
    if isinstance(error, ConfigError):  # the engine's check: its words, at its key
        loc = loc + tuple(str(k) for k in error.key)
        message = str(error)
    elif kind == "extra_forbidden":
        fields = _key_order(parent) if parent else []
        message = f"unknown key {loc[-1]!r}{did_you_mean(loc[-1], fields)}"
        if fields:
            message += f"; expected one of: {', '.join(fields)}"
        owners = [t for t, m in kinds.models.items() if loc[-1] in m.model_fields] \
            if kinds is not None else []
        if owners:  # a key of another kind (threshold: of a plateau schedule)
            message += f" ({loc[-1]!r} is a key of {kinds.what} {', '.join(owners)})"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid" and dispatch is not None:  # a kind there is none of
        loc = loc + (dispatch.key,)
        message = dispatch.unknown(e["ctx"]["tag"])
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
    return loc, origin.message(loc, message), beside


def _key_order(model) -> list[str]:
    """A model's keys in their declared order, a kind's ``type`` last."""
    keys = list(model.model_fields)
    return [k for k in keys if k != "type"] + (["type"] if "type" in keys else [])


def _walk(model, loc: tuple) -> tuple[tuple, Any, Any, bool, Any]:
    """``loc`` as the user's key path (without the union members pydantic tried), the
    model the last key is a key of (None past a list or a plain mapping), the
    :class:`~scratchnet.config.declared.Dispatch` of a union that ``loc`` ends at,
    whether it went through a plain member of a union, and the Dispatch that chose the
    model the last key is a key of (its other kinds may hold that key)."""
    keys: list[str] = []
    beside, chosen = False, (None, None)
    node, parent = model, None
    parts = [str(p) for p in loc]
    i = 0
    while i < len(parts):
        part = parts[i]
        node, dispatch = _strip(node)
        if dispatch is not None:  # pydantic names the tag it followed
            node, parent = dispatch.models.get(part), None
            chosen = (dispatch, node)
            i += 1
            continue
        union = [m for m in _members(node) if m is not type(None)]
        if len(union) == 1:  # a section that may be null
            node = union[0]
        elif len(union) > 1:  # a plain union: pydantic names the member it tried
            section = next((m for m in union if isinstance(m, type)
                            and issubclass(m, BaseModel) and m.__name__ == part), None)
            if section is not None or _is_member_label(part):
                node, beside = section, beside or section is None
                i += 1
                continue
        keys.append(part)
        if isinstance(node, type) and issubclass(node, BaseModel):
            parent = node
            field = node.model_fields.get(part)
            node = field.annotation if field is not None else None
            if field is not None:
                node = _annotated(field)
        elif typing.get_origin(node) in (list, dict):
            node = typing.get_args(node)[-1]
            parent = None
        else:
            node, parent = None, parent if i == len(parts) - 1 else None
        i += 1
    node, dispatch = _strip(node)
    kinds = chosen[0] if parent is not None and parent is chosen[1] else None
    return tuple(keys), parent, dispatch, beside, kinds


def _annotated(field):
    """A field's annotation with its metadata (a discriminated union keeps it there)."""
    meta = field.metadata
    return Annotated[(field.annotation, *meta)] if meta else field.annotation


def _strip(node):
    """``node`` without Annotated metadata, and the Dispatch it carries (if any)."""
    dispatch = None
    while typing.get_origin(node) is Annotated:
        for m in node.__metadata__:
            if isinstance(getattr(m, "discriminator", None), Dispatch):
                dispatch = m.discriminator
        node = node.__origin__
    return node, dispatch


def _members(node) -> tuple:
    origin = typing.get_origin(node)
    return typing.get_args(node) if origin in (Union, types.UnionType) else ()


def _is_member_label(part: str) -> bool:
    """How pydantic labels a union member it tried: ``float``, ``literal['test']``,
    ``function-after[...]``."""
    return any(c in part for c in "[(,-") or part in ("str", "float", "int", "bool", "none")
