"""Experiment-file sections made from the engine's declarations (:mod:`scratchnet.options`).

A section's keys are the options a constructor declares: :func:`section` turns them into a
pydantic model whose fields are checked by the engine's own :func:`~scratchnet.options.
check_value` (so an experiment file's mistake reads as the engine's message, and names the
key the engine names) and described to editors by :func:`json_schema_of`. A section that
is one of several kinds (a layer of a ``type``, an optimizer of a ``name``) is
:func:`dispatched` on that key, with its default kind when the key is left out; its JSON
Schema selects the kind with ``if``/``then``, so an editor's first complaint is about the
key that is wrong. :func:`engine_kwargs` and :func:`config_key` translate between a
section and its constructor (an option with :class:`~scratchnet.options.Via` is given at
another key there).
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag,
                      WithJsonSchema, create_model, model_validator)
from pydantic.json_schema import GenerateJsonSchema

from ..errors import ConfigError
from ..options import (AUTO, Doc, Named, Option, base_type, bounds, check_value, engine_object,
                       lengths, members, metadata_of, options, rename_aliases)
from ..registry import lookup


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


def declared(annotation, name: str, doc: str = ""):
    """The type of a key declared by ``annotation``: checked by the engine's
    :func:`~scratchnet.options.check_value` (its ConfigError's key, after ``name``, goes
    on the key path of the message), described by :func:`json_schema_of`, and carrying
    its :class:`~scratchnet.options.Option` (what the README's table is made from)."""
    def check(value):
        try:
            return check_value(value, annotation, name)
        except ConfigError as e:
            raise ConfigError(str(e), key=e.key[1:]) from None

    schema = json_schema_of(annotation)
    if doc:
        schema["description"] = doc
    option = Option(name, Annotated[(annotation, Doc(doc))] if doc else annotation)
    return Annotated[Any, PlainValidator(check), WithJsonSchema(schema), option]


def option_of(field) -> Option | None:
    """The declaration behind a model's field (:func:`declared`), if it has one."""
    return next((m for m in field.metadata if isinstance(m, Option)), None)


def field_of(option: Option, default: Any = inspect.Parameter.empty):
    """``(type, Field)`` of one of a constructor's options (its default, unless given). An
    option the data may give (:class:`~scratchnet.options.FromData`) also takes ``auto``,
    its default where the declaration says so."""
    default = option.default if default is inspect.Parameter.empty else default
    annotation, doc, auto = option.annotation, option.doc, option.from_data
    if auto is not None:
        annotation = Union[annotation, Literal[AUTO]]
        doc = f"{doc}; {AUTO}: {auto.what}"
        default = AUTO if auto.implied and default is inspect.Parameter.empty else default
    kind = declared(annotation, option.name, doc)
    return kind, Field(... if default is inspect.Parameter.empty else default)


def section(name: str, opts: list[Option], *, defaults: dict | None = None,
            before: dict | None = None, after: dict | None = None, doc: str = "",
            base: type[BaseModel] = Strict) -> type[BaseModel]:
    """A model whose keys are ``opts`` (their defaults, or those ``defaults`` gives), after
    the fields of ``before`` and before those of ``after`` (``{key: (type, Field)}``). A
    key given under one of an option's aliases is renamed to the option."""
    defaults = defaults or {}
    fields = {**(before or {}),
              **{o.name: field_of(o, defaults.get(o.name, inspect.Parameter.empty))
                 for o in opts},
              **(after or {})}
    validators = {}
    if any(o.aliases for o in opts):
        @model_validator(mode="before")
        def _aliases(cls, data):
            return rename_aliases(data, opts) if isinstance(data, dict) else data
        validators["_aliases"] = _aliases
    return create_model(name, __base__=base, __doc__=doc or None, __validators__=validators,
                        **fields)


# -- sections of several kinds ---------------------------------------------------------
class Dispatch:
    """Which model a mapping follows: the one its ``key`` names (``type``, ``name``),
    ``default`` when the key is left out. ``registry`` and ``what`` make the message for
    a kind there is none of (the engine's lookup message)."""

    def __init__(self, key: str, default: str, models: dict[str, type[BaseModel]], registry,
                 what: str):
        self.key, self.default, self.models = key, default, models
        self.registry, self.what = registry, what
        self.__name__ = f"{what} by {key}"  # pydantic names a discriminator function

    def __call__(self, value) -> str:
        kind = value.get(self.key, self.default) if isinstance(value, dict) \
            else getattr(value, self.key, self.default)
        return kind if isinstance(kind, str) else repr(kind)

    def unknown(self, tag: str) -> str:
        try:
            lookup(self.registry, tag, self.what)
        except ConfigError as e:
            return str(e)
        return f"unknown {self.what} {tag!r}"  # an entry added since the schema was made


def dispatched(key: str, default: str, models: dict[str, type[BaseModel]], registry,
               what: str):
    """The type of a mapping that follows ``models[mapping[key]]``."""
    dispatch = Dispatch(key, default, models, registry, what)
    return Annotated[Union[tuple(Annotated[m, Tag(t)] for t, m in models.items())],
                     Discriminator(dispatch)]


def kind_field(tag: str, doc: str = ""):
    """The ``type``/``name`` field of one kind's model."""
    return Literal[tag], Field(tag, description=doc or None)


class JsonSchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema, but a :func:`dispatched` union chooses its branch by its key
    (``if``/``then``) instead of listing every branch's complaints."""

    def tagged_union_schema(self, schema):
        dispatch = schema.get("discriminator")
        if not isinstance(dispatch, Dispatch):
            return super().tagged_union_schema(schema)
        key, branches = dispatch.key, []
        for tag, choice in schema["choices"].items():
            condition = {"properties": {key: {"const": tag}}}
            if tag != dispatch.default:  # the default branch also takes a mapping without it
                condition["required"] = [key]
            branches.append({"if": condition, "then": self.generate_inner(choice)})
        return {"type": "object",
                "properties": {key: {"enum": list(schema["choices"]),
                                     "default": dispatch.default}},
                "allOf": branches}


# -- JSON Schema of a declaration ----------------------------------------------------------
def json_schema_of(annotation) -> dict:
    """What ``annotation`` accepts as a JSON Schema (types an experiment file cannot write,
    such as an Activation instance, are left out)."""
    named = next((m for m in metadata_of(annotation) if isinstance(m, Named)), None)
    base = base_type(annotation)
    if named is not None:
        return _named_schema(named, nullable=type(None) in members(base))
    union = members(base)
    if union:
        choices = [json_schema_of(m) for m in union if not engine_object(m)]
        return choices[0] if len(choices) == 1 else {"anyOf": choices}
    if base is type(None):
        return {"type": "null"}
    if base is bool:
        return {"type": "boolean"}
    if base in (int, float):
        schema = {"type": "integer" if base is int else "number"}
        low, high, low_open, high_open = bounds(annotation)
        if low is not None:
            schema["exclusiveMinimum" if low_open else "minimum"] = low
        if high is not None:
            schema["exclusiveMaximum" if high_open else "maximum"] = high
        return schema
    if base is str:
        return {"type": "string"}
    origin = typing.get_origin(base)
    if origin is Literal:
        return {"enum": list(typing.get_args(base))}
    if origin is tuple:
        items = [json_schema_of(a) for a in typing.get_args(base)]
        return {"type": "array", "prefixItems": items, "minItems": len(items),
                "maxItems": len(items)}
    if origin in (list, collections.abc.Sequence):
        least, most = lengths(annotation)
        return {"type": "array", "minItems": least,
                **({"maxItems": most} if most is not None else {})}
    if base is dict or origin is dict:
        return {"type": "object"}
    return {}


def _named_schema(named, nullable: bool) -> dict:
    """A registry name (an ``enum``), or with ``spec`` a mapping of a name and its entry's
    options; a string is checked as a name only, so a misspelt one is the complaint."""
    names = list(named.registry) + list(getattr(named.registry, "aliases", {}))
    schema: dict = {"type": "string", "enum": names}
    if named.spec:
        mapping = {"type": "object", "required": ["name"], "properties": {"name": {"enum": names}},
                   "allOf": [{"if": {"properties": {"name": {"const": n}}},
                              "then": _spec_schema(n, named.registry[n])}
                             for n in named.registry]}
        other = {"anyOf": [mapping, {"type": "null"}]} if nullable else mapping
        return {"if": {"type": "string"}, "then": schema, "else": other}
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


def _spec_schema(name: str, cls) -> dict:
    props = {"name": {"const": name}}
    for o in options(cls):
        props[o.name] = {**json_schema_of(o.annotation),
                         **({"description": o.doc} if o.doc else {}),
                         **({} if o.required else {"default": o.default})}
    return {"properties": props, "additionalProperties": False}


# -- between a section and its constructor -------------------------------------------
def engine_kwargs(cls, given: dict) -> dict:
    """The keyword arguments of ``cls``'s constructor that a section's values ``given``
    make: each option at its own key, or where its :class:`~scratchnet.options.Via` says
    (an option whose path is a whole mapping takes the keys no other option claims)."""
    own = {o.name: o for o in options(cls)}
    claimed = {o.via for o in own.values() if o.via}
    kwargs = {}
    for o in own.values():
        if o.via is None:
            if o.name in given:
                kwargs[o.name] = given[o.name]
            continue
        node = given
        for part in o.via:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):  # the rest of a mapping
            node = {k: v for k, v in node.items() if (*o.via, k) not in claimed}
        if node is not None:
            kwargs[o.name] = node
    return kwargs


def config_key(cls, key: tuple) -> tuple:
    """The key path in a section of the option an error of ``cls``'s constructor names
    (``("decay_kwargs", "step_size")`` -> ``("decay", "step_size")``)."""
    if not key:
        return key
    option = next((o for o in options(cls) if o.name == key[0]), None)
    return (*option.via, *key[1:]) if option is not None and option.via else key
