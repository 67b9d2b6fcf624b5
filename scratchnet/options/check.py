"""Checking values against declarations: one value (:func:`check_value`), a constructor's
arguments (:func:`checked`), a dataclass's fields (:func:`check_fields`), a mapping of
options (:func:`check_options`). See :mod:`scratchnet.options`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import reprlib
import typing
from typing import Any, Literal

from ..errors import ConfigError
from ..registry import did_you_mean, lookup
from .declare import (Named, base_type, bounds, declared_options, describe, engine_only,
                      hints_of, is_sequence, lengths, members, metadata_of, options)


_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict = 60, 60, 6, 6


def check_value(value, annotation, name: str):
    """``value`` checked against ``annotation`` (and converted: an int given for a float
    becomes a float, a list for a pair becomes a tuple, a registry name its own
    spelling); a ConfigError whose ``key`` starts with ``name`` when it does not fit:
    ``momentum must be a number in [0, 1), got 1.5``."""
    try:
        return _check(value, annotation)
    except _Mismatch:
        shown = (f"a list of {len(value)}" if isinstance(value, (list, tuple))
                 and len(value) > _repr.maxlist else _repr.repr(value))
        raise ConfigError(f"{name} must be {describe(annotation)}, got {shown}",
                          key=(name,)) from None
    except ConfigError as e:  # a registry name, or an option of a named spec
        raise ConfigError(str(e), key=(name, *e.key)) from None


class _Mismatch(Exception):
    pass


def _check(value, annotation):
    metadata, base = metadata_of(annotation), base_type(annotation)
    union = members(base)
    if value is None:
        if base is Any or type(None) in union or base is type(None):
            return None
        raise _Mismatch
    named = next((m for m in metadata if isinstance(m, Named)), None)
    if named is not None and (isinstance(value, str) or named.spec and isinstance(value, dict)):
        return _check_named(value, named)  # anything else: an instance, of the base type
    if union:  # (bounds are declared on the members)
        for member in union:
            if member is type(None):
                continue
            try:
                return _check(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    value = _check_type(value, base, annotation)
    low, high, low_open, high_open = bounds(annotation)
    if low is not None and not (value > low if low_open else value >= low):
        raise _Mismatch
    if high is not None and not (value < high if high_open else value <= high):
        raise _Mismatch
    return value


def _check_named(value, named: Named):
    """A registry name (its own spelling, when given under an alias), or (``spec``) a
    mapping of a name and that entry's options, each checked."""
    if not (isinstance(value, dict) and named.spec):
        lookup(named.registry, value, named.what)
        return canonical_name(named.registry, value)
    if not isinstance(value.get("name"), str):
        raise ConfigError(f"a {named.what} given as a mapping needs a 'name' key, "
                          f"got {_repr.repr(value)}")
    cls = lookup(named.registry, value["name"], named.what)
    given = {k: v for k, v in value.items() if k != "name"}
    what = f"{named.what} {value['name']!r}"
    return {"name": canonical_name(named.registry, value["name"]),
            **check_options(cls, given, what)}


def canonical_name(registry, name: str) -> str:
    """A registry entry's own name for ``name`` (which may be one of its aliases)."""
    return getattr(registry, "aliases", {}).get(name, name)


def check_options(cls, given: dict, what: str, supplied: dict | None = None) -> dict:
    """The options ``given`` for ``cls``'s constructor, checked against its declaration:
    aliases renamed, unknown and missing options refused (``what`` names it in
    messages: ``activation 'elu'``), values checked and converted. ``supplied`` are
    options the caller fills in itself (a schedule's ``lr``): checked too, but not
    options ``given`` may hold."""
    supplied = supplied or {}
    declared = {o.name: o for o in options(cls) if o.name not in supplied}
    given = rename_aliases(given, declared.values())
    for key in given:
        if key not in declared:
            raise ConfigError(f"{what} takes no option {key!r}{did_you_mean(key, declared)}; "
                              f"options: {', '.join(declared) or 'none'}", key=(key,))
    for o in declared.values():
        if o.required and o.name not in given:
            raise ConfigError(f"{what} needs {o.name}", key=(o.name,))
    return {k: check_option(cls, k, v) for k, v in {**given, **supplied}.items()}


def check_option(cls, name: str, value):
    """``value`` checked against the declaration of ``cls``'s option ``name``."""
    option = next(o for o in declared_options(cls) if o.name == name)
    return check_value(value, option.annotation, name)


def rename_aliases(given: dict, declared, positional=()) -> dict:
    """``given`` with each option given under an :class:`~scratchnet.options.Alias` under
    its own name; the option and its alias both given (here, or among the ``positional`` names) is a
    ConfigError."""
    aliases = {alias: o.name for o in declared for alias in o.aliases}
    if not set(given) & set(aliases):
        return given
    out = dict(given)
    for alias in [k for k in given if k in aliases]:
        own = aliases[alias]
        if own in out or own in positional:
            raise ConfigError(f"{own} and {alias} name the same option; give one",
                              key=(alias,))
        out[own] = out.pop(alias)
    return out


def _check_type(value, base, annotation):
    if base is Any:
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _Mismatch
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value):
            raise _Mismatch
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise _Mismatch
        return value
    origin = typing.get_origin(base)
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in typing.get_args(base)):
            raise _Mismatch
        return value
    if origin is tuple:
        args = typing.get_args(base)
        if not isinstance(value, (tuple, list)) or len(value) != len(args):
            raise _Mismatch
        return tuple(_check(v, a) for v, a in zip(value, args, strict=True))
    if is_sequence(base):
        least, most = lengths(annotation)
        if not isinstance(value, (list, tuple)) or len(value) < least \
                or (most is not None and len(value) > most):
            raise _Mismatch
        (item,) = typing.get_args(base) or (Any,)
        return [_check(v, item) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return value
    if isinstance(base, type):
        if not isinstance(value, base):
            raise _Mismatch
        return value
    return value


def checked(init):
    """Decorate an ``__init__`` (or any function) whose parameters are declared: an option
    given under an :class:`~scratchnet.options.Alias` is passed under its own name, an
    unknown or missing one is refused, and each argument given is checked against its
    annotation (:func:`check_value`) before the body runs."""
    signature = inspect.signature(init)
    params = list(signature.parameters.values())
    method = bool(params) and params[0].name == "self"
    constructor = init.__name__ == "__init__"
    own = {p.name for p in params[int(method):]
           if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    passes_on = any(p.kind is p.VAR_KEYWORD for p in params)

    @functools.lru_cache(maxsize=None)  # at the first call: importing the engine stays cheap
    def checks() -> dict:
        hints = hints_of(init)
        return {p.name: hints[p.name] for p in params if p.name in own and p.name in hints
                and not engine_only(hints[p.name])}

    @functools.wraps(init)
    def wrapper(*args, **kwargs):
        # a constructor takes what its class declares (its bases' options included)
        owner = type(args[0]) if constructor and args else init
        what = owner.__name__ if constructor else init.__qualname__
        declared = declared_options(owner)
        try:
            positional = signature.bind_partial(*args).arguments
        except TypeError as e:  # too many
            raise ConfigError(f"{what}: {e}") from None
        kwargs = rename_aliases(kwargs, declared, positional)
        known = own | ({o.name for o in declared} if passes_on else set())
        for key in kwargs:
            if key not in known:
                names = [o.name for o in declared]
                raise ConfigError(f"{what} takes no option {key!r}{did_you_mean(key, names)}"
                                  f"; options: {', '.join(names) or 'none'}", key=(key,))
        missing = [p.name for p in params[int(method):] if p.default is p.empty
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                   and p.name not in kwargs and p.name not in positional]
        if missing:
            raise ConfigError(f"{what} needs {missing[0]}", key=(missing[0],))
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:  # an option given twice, by position and by name
            raise ConfigError(f"{what}: {e}") from None
        declared_types = checks()
        for name, value in list(bound.arguments.items())[int(method):]:
            if name in declared_types:
                bound.arguments[name] = check_value(value, declared_types[name], name)
        return init(*bound.args, **bound.kwargs)

    return wrapper


def check_fields(instance) -> None:
    """Check every field of a (frozen) dataclass instance against its annotation, in
    ``__post_init__``; converted values are written back."""
    hints = hints_of(type(instance))
    for f in dataclasses.fields(instance):
        if f.init and f.name in hints:
            value = check_value(getattr(instance, f.name), hints[f.name], f.name)
            object.__setattr__(instance, f.name, value)


def build(registry, name, what: str, **kwargs):
    """``registry[name](**kwargs)``, its options checked against the declaration of the
    entry (an unknown option: ``optimizer 'sgd' takes no option 'momentum'; ...``)."""
    cls = lookup(registry, name, what)
    return cls(**check_options(cls, kwargs, f"{what} {name!r}"))
