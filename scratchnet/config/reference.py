"""The README's table of experiment-file keys, made from the declarations.

:func:`options_table` walks the experiment file's schema (:mod:`scratchnet.config.schema`)
and writes one row per key: what it takes and its default, in the words of the engine's
declaration behind it (:mod:`scratchnet.options`), so the table cannot drift from what
validation accepts. A key that sections of several kinds share (a layer's ``activation``
for dense and conv2d layers) is one row naming the kinds, as long as they declare it alike.

``python -m scratchnet.config.reference [README.md]`` rewrites the block between
``<!-- options -->`` and ``<!-- /options -->`` in the file; ``--check`` only says (exit 1)
whether it is stale.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from pathlib import Path

from pydantic import BaseModel

from ..options import Option, base_type, describe, members
from .declared import Dispatch, option_of
from .schema import ExperimentConfig

#: the sections the table lists (the sweep, tune and tracking sections have their own
#: parts of the README)
SECTIONS = ("seed", "data", "model", "optimizer", "train")
BEGIN, END = "<!-- options -->", "<!-- /options -->"


def options_table() -> str:
    """The table as Markdown, one row per key (``key | takes | default | what it does``)."""
    rows: dict[tuple, list[str]] = {}  # (key, takes, default, doc, every kind) -> kinds
    for name in SECTIONS:
        _rows(name, ExperimentConfig.model_fields[name], rows, kinds=(), every=())
    lines = ["| key | takes | default | |", "| --- | --- | --- | --- |"]
    for (key, takes, default, doc, every), kinds in rows.items():
        where = f" ({', '.join(kinds)})" if kinds and set(kinds) != set(every) else ""
        lines.append(f"| `{key}`{where} | {takes} | {default} | {doc} |")
    return "\n".join(lines) + "\n"


def _rows(key: str, field, rows: dict, kinds: tuple, every: tuple) -> None:
    kind = _model_or_dispatch(field.annotation, field.metadata)
    if isinstance(kind, Dispatch):
        for tag, model in kind.models.items():
            _section(key, model, rows, (tag,), tuple(kind.models), dispatch=kind)
        return
    if kind is not None and not members(base_type(field.annotation)):
        _section(key, kind, rows, kinds, every)
        return
    option = option_of(field)
    default = field.get_default(call_default_factory=True)
    if option is not None:
        takes, doc = _takes(option), option.doc
    else:  # a choice of plain values or a section of its own (early stopping)
        takes, doc = _plain(field.annotation, kind), field.description or ""
    _add(rows, (key, takes, _default(default, field.is_required()), doc, every), kinds)
    if kind is not None:
        _section(key, kind, rows, kinds, every)


def _section(key: str, model: type[BaseModel], rows: dict, kinds: tuple, every: tuple,
             dispatch: Dispatch | None = None) -> None:
    for name, field in model.model_fields.items():
        child = f"{key}[].{name}" if key.endswith("layers") else f"{key}.{name}"
        if dispatch is not None and name == dispatch.key:
            tags = ", ".join(f"`{t}`" for t in dispatch.models)
            _add(rows, (child, tags, f"`{dispatch.default}`", field.description or "", ()), ())
            continue
        _rows(child, field, rows, kinds, every)


def _add(rows: dict, row: tuple, kinds: tuple) -> None:
    found = rows.setdefault(row, [])
    found += [k for k in kinds if k not in found]


def _model_or_dispatch(annotation, metadata=()):
    """The section a field holds (a model, or a Dispatch over models), if any."""
    for m in metadata:
        if isinstance(getattr(m, "discriminator", None), Dispatch):
            return m.discriminator
    while typing.get_origin(annotation) is typing.Annotated:
        found = _model_or_dispatch(None, annotation.__metadata__)
        if found is not None:
            return found
        annotation = annotation.__origin__
    if typing.get_origin(annotation) is list:
        return _model_or_dispatch(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in members(annotation) if isinstance(m, type)
                 and issubclass(m, BaseModel)), None)


def _takes(option: Option) -> str:
    named = option.named
    if named is None:
        return describe(option.annotation)
    names = ", ".join(f"`{n}`" for n in named.registry)
    if not named.spec:
        return names
    with_options = [f"`{n}` ({', '.join(o.name for o in _options(cls))})"
                    for n, cls in named.registry.items() if _options(cls)]
    return names + ("; with options as `{name: ..., option: value}`: " + ", ".join(with_options)
                    if with_options else "")


def _options(cls) -> list[Option]:
    from ..options import options

    return options(cls)


def _plain(annotation, section) -> str:
    """What a field the command line declares itself takes: its plain members, and the
    keys of its section (early stopping's)."""
    others = [m for m in members(base_type(annotation)) if m is not section]
    text = describe(typing.Union[tuple(others)]) if others else ""
    if section is None:
        return text
    keys = "a mapping of " + ", ".join(f"`{k}`" for k in section.model_fields)
    return f"{text.replace(' or ', ', ')} or {keys}" if text else keys


def _default(value, required: bool) -> str:
    if required or value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def rewrite(text: str) -> str:
    """``text`` with the block between the markers replaced by :func:`options_table`."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} block to rewrite")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{options_table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scratchnet.config.reference",
                                     description="Rewrite the README's table of options.")
    parser.add_argument("file", nargs="?", default="README.md", type=Path)
    parser.add_argument("--check", action="store_true", help="only say whether it is stale")
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    new = rewrite(text)
    if args.check:
        if new != text:
            print(f"{args.file}: the options table is stale; run python -m "
                  "scratchnet.config.reference", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.file.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
