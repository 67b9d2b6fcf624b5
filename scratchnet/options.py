"""Options declared once: a constructor's signature is the declaration.

The name, type, default and bounds of every option an engine class takes, and a sentence
of help, are written once, in its constructor's signature::

    class SGDMomentum(Optimizer):
        @checked
        def __init__(self, lr: PositiveFloat = 0.01,
                     momentum: Annotated[Fraction, Doc("share of the last step kept")] = 0.9,
                     *, nesterov: bool = False, **options): ...

The engine checks its arguments against that declaration (:func:`checked`, or
:func:`check_fields` for a dataclass), raising a :class:`~scratchnet.errors.ConfigError`
that names the option in its ``key``; the experiment file's schema, the JSON Schema,
``--set``, ``show`` and the README's options table are made from the same declaration
(:func:`options`), so adding an option is one edit.

The vocabulary: bounds are annotated-types' :class:`Gt`, :class:`Ge`, :class:`Lt` and
:class:`Le` (which pydantic reads as they are); :class:`Doc` is the help sentence;
:class:`Named` marks a name from a registry; :class:`Alias` names another spelling the
option is accepted under (the book's, say). This module imports nothing from the engine.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le, Lt

from .errors import ConfigError
from .registry import did_you_mean, lookup

__all__ = ["Alias", "Doc", "Fraction", "Ge", "Gt", "Le", "Lt", "Named", "NonNegativeFloat",
           "NonNegativeInt", "Option", "PositiveFloat", "PositiveInt", "Rate", "check_fields",
           "check_value", "checked", "describe", "options"]


@dataclass(frozen=True)
class Doc:
    """The option's help: one sentence, shown by the schema, ``show`` and the README."""

    text: str


@dataclass(frozen=True)
class Named:
    """A name from ``registry`` (a mapping or a collection of names); ``what`` is how
    messages call it (``"activation"``). With ``spec=True`` the option also takes a
    mapping ``{name: ..., <options of that entry>}`` or an instance, which the
    constructor turns into the object itself."""

    registry: Any
    what: str
    spec: bool = False


@dataclass(frozen=True)
class Alias:
    """Other names the option is accepted under (the book's ``param_size`` for
    ``kernel_size``); the option's own name is the one written back."""

    names: tuple[str, ...]

    def __init__(self, *names: str):
        object.__setattr__(self, "names", tuple(names))


PositiveInt = Annotated[int, Ge(1)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
#: a share in [0, 1): momentum, betas, rho
Fraction = Annotated[float, Ge(0), Lt(1)]
#: a drop rate in [0, 1)
Rate = Annotated[float, Ge(0), Lt(1)]


@dataclass(frozen=True)
class Option:
    """One declared option of a constructor."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty
    #: the class whose constructor declares it
    owner: type | None = None

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def doc(self) -> str:
        return next((m.text for m in _metadata(self.annotation) if isinstance(m, Doc)), "")

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(n for m in _metadata(self.annotation) if isinstance(m, Alias)
                     for n in m.names)

    def describe(self) -> str:
        return describe(self.annotation)


# -- reading declarations ------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _hints(function) -> dict[str, Any]:
    return typing.get_type_hints(function, include_extras=True)


def _init_of(klass: type):
    init = klass.__dict__.get("__init__")
    return getattr(init, "__wrapped__", init)


def options(cls) -> list[Option]:
    """Every option ``cls``'s constructor takes, in signature order, with those a
    ``**options`` of its hands on to its base classes' constructors (a dataclass: its
    fields set by ``__init__``). Parameters without an annotation are declared as
    :data:`typing.Any`."""
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        return [Option(f.name, hints.get(f.name, Any), _field_default(f), cls)
                for f in dataclasses.fields(cls) if f.init]
    found: dict[str, Option] = {}
    for klass in (cls.__mro__ if isinstance(cls, type) else ()):
        init = _init_of(klass)
        if init is None or init is object.__init__:
            continue
        hints = _hints(init)
        params = list(inspect.signature(init).parameters.values())[1:]  # not self
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in found:
                continue
            found[p.name] = Option(p.name, hints.get(p.name, Any), p.default, klass)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return list(found.values())


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return inspect.Parameter.empty


# -- checking values -----------------------------------------------------------------
def _metadata(annotation) -> list:
    """The Annotated metadata of ``annotation``, nested aliases included."""
    found = []
    while typing.get_origin(annotation) is Annotated:
        found = list(annotation.__metadata__) + found
        annotation = annotation.__origin__
    return found


def _base(annotation):
    while typing.get_origin(annotation) is Annotated:
        annotation = annotation.__origin__
    return annotation


def _members(annotation) -> tuple:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return ()


def _bounds(metadata) -> tuple:
    low = high = None
    low_open = high_open = False
    for m in metadata:
        if isinstance(m, Gt):
            low, low_open = m.gt, True
        elif isinstance(m, Ge):
            low, low_open = m.ge, False
        elif isinstance(m, Lt):
            high, high_open = m.lt, True
        elif isinstance(m, Le):
            high, high_open = m.le, False
    return low, high, low_open, high_open


def _interval(low, high, low_open, high_open) -> str:
    from .checks import interval

    return interval(low, high, low_open, high_open)


def describe(annotation) -> str:
    """What an annotation accepts, in words: ``a number in [0, 1)``, ``an integer >= 1``,
    ``true or false``, ``one of: same, valid``, ``an activation name``."""
    metadata, base = _metadata(annotation), _base(annotation)
    named = next((m for m in metadata if isinstance(m, Named)), None)
    if named is not None:
        return f"a {named.what} name" + (" or a mapping {name: ..., <options>}"
                                          if named.spec else "")
    members = _members(base)
    if members:
        words = [describe(m) for m in members if m is not type(None)]
        text = " or ".join(dict.fromkeys(words))
        return text + (" or null" if type(None) in members else "")
    low, high, low_open, high_open = _bounds(metadata)
    bounded = low is not None or high is not None
    if base is bool:
        return "true or false"
    if base is int:
        if (low, low_open, high) == (1, False, None):
            return "a positive integer"
        return "an integer" + (f" {_interval(low, high, low_open, high_open)}" if bounded else "")
    if base is float:
        return "a number" + (f" {_interval(low, high, low_open, high_open)}" if bounded else "")
    if base is str:
        return "a string"
    if typing.get_origin(base) is Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(base))
    if typing.get_origin(base) is tuple:
        args = typing.get_args(base)
        return f"a list of {len(args)}: [" + ", ".join(describe(a) for a in args) + "]"
    if isinstance(base, type):
        return f"a {base.__name__}"
    return "any value"


def check_value(value, annotation, name: str):
    """``value`` checked against ``annotation`` (and converted: an int given for a float
    becomes a float, a list for a pair becomes a tuple); a ConfigError naming ``name``
    (its ``key`` is ``(name,)``) when it does not fit."""
    try:
        return _check(value, annotation, name)
    except _Mismatch:
        raise ConfigError(f"{name} must be {describe(annotation)}, got {value!r}",
                          key=(name,)) from None


class _Mismatch(Exception):
    pass


def _check(value, annotation, name: str):
    metadata, base = _metadata(annotation), _base(annotation)
    named = next((m for m in metadata if isinstance(m, Named)), None)
    if named is not None and (isinstance(value, (str, dict)) or not named.spec):
        _check_named(value, named, name)
        return value
    members = _members(base)
    if members:
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return _check(value, Annotated[(member, *metadata)] if metadata else member, name)
            except _Mismatch:
                continue
        raise _Mismatch
    value = _check_type(value, base, name)
    low, high, low_open, high_open = _bounds(metadata)
    if low is not None and not (value > low if low_open else value >= low):
        raise _Mismatch
    if high is not None and not (value < high if high_open else value <= high):
        raise _Mismatch
    return value


def _check_named(value, named: Named, name: str) -> None:
    """A registry name, or (``spec``) a mapping of a name and that entry's options."""
    try:
        if isinstance(value, dict) and named.spec:
            if not isinstance(value.get("name"), str):
                raise ConfigError(f"a {named.what} given as a mapping needs a 'name' key, "
                                  f"got {value!r}")
            declared = {o.name: o for o in options(lookup(named.registry, value["name"],
                                                          named.what))}
            for key, item in value.items():
                if key == "name":
                    continue
                if key not in declared:
                    raise ConfigError(
                        f"{named.what} {value['name']!r} takes no option {key!r}"
                        f"{did_you_mean(key, declared)}; options: "
                        f"{', '.join(declared) or 'none'}", key=(key,))
                check_value(item, declared[key].annotation, key)
        else:
            lookup(named.registry, value, named.what)
    except ConfigError as e:
        raise ConfigError(str(e), key=(name, *e.key)) from None


def _check_type(value, base, name: str):
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
        return tuple(_check(v, a, name) for v, a in zip(value, args))
    if origin in (dict, list):
        if not isinstance(value, origin):
            raise _Mismatch
        return value
    if isinstance(base, type):
        if not isinstance(value, base):
            raise _Mismatch
        return value
    return value


def _aliases(function) -> dict[str, str]:
    """alias -> option name, for the parameters of ``function``."""
    return {alias: name for name, hint in _hints(function).items()
            for m in _metadata(hint) if isinstance(m, Alias) for alias in m.names}


def checked(init):
    """Decorate an ``__init__`` whose parameters are declared: each argument given is
    checked against its annotation (:func:`check_value`) before the body runs, and an
    option given under an :class:`Alias` is passed under its own name."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        aliases = _aliases(init)
        for alias in set(kwargs) & set(aliases):
            own = aliases[alias]
            if own in kwargs:
                raise ConfigError(f"{own} and {alias} name the same option; give one",
                                  key=(alias,))
            kwargs[own] = kwargs.pop(alias)
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            raise ConfigError(f"{type(self).__name__}: {e}") from None
        hints = _hints(init)
        for name, value in list(bound.arguments.items())[1:]:
            if name in hints and signature.parameters[name].kind not in (
                    inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                bound.arguments[name] = check_value(value, hints[name], name)
        return init(*bound.args, **bound.kwargs)

    return wrapper


def check_fields(instance) -> None:
    """Check every field of a (frozen) dataclass instance against its annotation, in
    ``__post_init__``; converted values are written back."""
    hints = _hints(type(instance))
    for f in dataclasses.fields(instance):
        if f.init and f.name in hints:
            value = check_value(getattr(instance, f.name), hints[f.name], f.name)
            object.__setattr__(instance, f.name, value)
