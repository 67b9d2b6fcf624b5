"""Options declared once: a constructor's signature is the declaration.

The name, type, default and bounds of every option an engine class takes, and a sentence
of help, are written once, in its constructor's signature::

    class SGDMomentum(Optimizer):
        @checked
        def __init__(self, lr: LearningRate = 0.01,
                     momentum: Annotated[Fraction, Doc("share of the last step kept")] = 0.9,
                     *, nesterov: bool = False, **options): ...

The engine checks its arguments against that declaration (:func:`checked`, or
:func:`check_fields` for a dataclass), raising a :class:`~scratchnet.errors.ConfigError`
whose ``key`` names the option at fault; the experiment file's schema, the JSON Schema,
``--set``, ``show`` and the README's options table are made from the same declaration
(:func:`options`), so adding an option is one edit.

The vocabulary: bounds are annotated-types' :class:`Gt`, :class:`Ge`, :class:`Lt`,
:class:`Le` and :class:`Len` (which pydantic reads as they are); :class:`Doc` is the help
sentence; :class:`Named` marks a name from a registry; :class:`Alias` names another
spelling the option is accepted under (the book's, say); :class:`Via` says where an
experiment file gives an option that it writes elsewhere. Every count has an upper bound
(:data:`Size`, :data:`Epochs`, :data:`Seed`), so checking a config costs the same whatever
numbers it holds. This module imports nothing from the engine.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import math
import numbers
import reprlib
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le, Len, Lt

from .checks import interval
from .errors import ConfigError
from .registry import did_you_mean, lookup

__all__ = ["Alias", "Doc", "Epochs", "Fraction", "Ge", "Gt", "Le", "Len", "Lt", "MAX_EPOCHS",
           "MAX_SEED", "MAX_SIZE", "Named", "NonNegativeFloat", "NonNegativeInt", "Option",
           "PositiveFloat", "PositiveInt", "Rate", "Seed", "Size", "Via", "build",
           "check_fields", "check_option", "check_options", "check_value", "checked",
           "describe", "options", "rename_aliases"]


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


@dataclass(frozen=True)
class Via:
    """Where an experiment file gives an option it writes elsewhere, as a key path from
    the section of the class that declares it: an optimizer's ``decay_type`` is
    ``decay.type`` there, and its ``decay_kwargs`` are the other keys of ``decay``. An
    error about the option names that path (:meth:`Option.config_key`)."""

    path: tuple[str, ...]

    def __init__(self, *path: str):
        object.__setattr__(self, "path", tuple(path))


# -- counts: each has an upper bound, stated once with its reason -----------------------
#: widths, channels, kernel and window sides, batch sizes: each is one dimension of an
#: array handed to BLAS, whose (LP64) interface indexes with 32-bit integers
MAX_SIZE = 2**31 - 1
#: epochs of a run, and every count of epochs or evaluations (eval_every, patience,
#: step_size, warm-up): a million epochs of the smallest network take days, so a larger
#: number is a slip, and a run's records (metrics.jsonl, its history) grow with it
MAX_EPOCHS = 1_000_000
#: seeds: scikit-learn's ``random_state``, which splits the bundled and CSV sets, takes
#: [0, 2**32 - 1]
MAX_SEED = 2**32 - 1

PositiveInt = Annotated[int, Ge(1)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
#: a share in [0, 1): momentum, betas, rho
Fraction = Annotated[float, Ge(0), Lt(1)]
#: a drop rate in [0, 1)
Rate = Annotated[float, Ge(0), Lt(1)]
#: a positive dimension (see :data:`MAX_SIZE`)
Size = Annotated[int, Ge(1), Le(MAX_SIZE)]
#: a positive count of epochs (see :data:`MAX_EPOCHS`)
Epochs = Annotated[int, Ge(1), Le(MAX_EPOCHS)]
Seed = Annotated[int, Ge(0), Le(MAX_SEED)]


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
        return next((m.text for m in metadata_of(self.annotation) if isinstance(m, Doc)), "")

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(n for m in metadata_of(self.annotation) if isinstance(m, Alias)
                     for n in m.names)

    @property
    def via(self) -> tuple[str, ...] | None:
        """The key path an experiment file gives this option at, when not its name."""
        return next((m.path for m in metadata_of(self.annotation) if isinstance(m, Via)), None)

    @property
    def named(self) -> Named | None:
        return next((m for m in metadata_of(self.annotation) if isinstance(m, Named)), None)

    def describe(self) -> str:
        return describe(self.annotation)


# -- reading declarations ------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _hints(function) -> dict[str, Any]:
    return typing.get_type_hints(function, include_extras=True)


def _init_of(klass: type):
    init = klass.__dict__.get("__init__")
    return getattr(init, "__wrapped__", init)


@functools.lru_cache(maxsize=None)
def _options(cls) -> tuple[Option, ...]:
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        return tuple(Option(f.name, hints.get(f.name, Any), _field_default(f), cls)
                     for f in dataclasses.fields(cls) if f.init)
    if not isinstance(cls, type):  # a function: its parameters
        return tuple(_parameters(cls, cls, {}))
    found: dict[str, Option] = {}
    deferred: dict[str, Option] = {}  # keyword-only overrides, placed where a base declares
    fixed = getattr(cls, "fixed_options", ())
    for klass in cls.__mro__:
        init = _init_of(klass)
        if init is None:
            continue
        if init is object.__init__:
            break
        params = inspect.signature(init).parameters
        for o in _parameters(init, klass, found):
            if o.name in fixed:
                continue
            if o.name in deferred:
                found[o.name] = deferred.pop(o.name)
            elif params[o.name].kind is inspect.Parameter.KEYWORD_ONLY and any(
                    o.name in inspect.signature(_init_of(base) or object.__init__).parameters
                    for base in klass.__mro__[1:] if _init_of(base) is not None):
                deferred[o.name] = o
            else:
                found[o.name] = o
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return tuple({**found, **deferred}.values())


def _parameters(function, owner, found: dict) -> list[Option]:
    hints = _hints(function)
    params = list(inspect.signature(function).parameters.values())
    params = params[1:] if params and params[0].name == "self" else params
    return [Option(p.name, hints.get(p.name, Any), p.default, owner) for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in found]


def options(cls) -> list[Option]:
    """Every option ``cls``'s constructor takes, in signature order, with those a
    ``**options`` of its hands on to its base classes' constructors (a dataclass: its
    fields set by ``__init__``; a function: its parameters). A class may fix options of
    its bases (``fixed_options = ("nesterov",)``: it passes them itself), which are left
    out. Parameters without an annotation are declared as :data:`typing.Any`."""
    return list(_options(cls))


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return inspect.Parameter.empty


# -- reading annotations ---------------------------------------------------------------
def metadata_of(annotation) -> list:
    """The Annotated metadata of ``annotation``, nested aliases included."""
    found = []
    while typing.get_origin(annotation) is Annotated:
        found = list(annotation.__metadata__) + found
        annotation = annotation.__origin__
    return found


def base_type(annotation):
    """``annotation`` without its Annotated metadata."""
    while typing.get_origin(annotation) is Annotated:
        annotation = annotation.__origin__
    return annotation


def members(annotation) -> tuple:
    """The members of a union (``int | None``), else ()."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return ()


def bounds(annotation) -> tuple:
    """``(low, high, low_open, high_open)`` of an annotation's Gt/Ge/Lt/Le metadata."""
    low = high = None
    low_open = high_open = False
    for m in metadata_of(annotation):
        if isinstance(m, Gt):
            low, low_open = m.gt, True
        elif isinstance(m, Ge):
            low, low_open = m.ge, False
        elif isinstance(m, Lt):
            high, high_open = m.lt, True
        elif isinstance(m, Le):
            high, high_open = m.le, False
    return low, high, low_open, high_open


def lengths(annotation) -> tuple[int, int | None]:
    """``(min, max)`` length of a list annotation's Len metadata."""
    found = [m for m in metadata_of(annotation) if isinstance(m, Len)]
    return (found[-1].min_length, found[-1].max_length) if found else (0, None)


def _sequence(base) -> bool:
    return typing.get_origin(base) in (list, collections.abc.Sequence)


def describe(annotation) -> str:
    """What an annotation accepts, in words: ``a number in [0, 1)``, ``an integer >= 0``,
    ``true or false``, ``one of: same, valid``, ``an activation name``."""
    metadata, base = metadata_of(annotation), base_type(annotation)
    named = next((m for m in metadata if isinstance(m, Named)), None)
    if named is not None:
        article = "an" if named.what[:1] in "aeiou" else "a"
        return f"{article} {named.what} name" + (" or a mapping {name: ..., <options>}"
                                                  if named.spec else "")
    union = members(base)
    if union:  # (bounds are declared on the members)
        words: list[str] = []
        for m in union:
            if typing.get_origin(m) is Literal:
                words += [repr(a) for a in typing.get_args(m)]
            elif m is not type(None) and not engine_object(m):
                # "a positive integer or a pair of them", not the integer twice over
                w = describe(m)
                words.append("a pair of them" if w.startswith("a pair of ")
                             and w[len("a pair of "):] in words else w)
        words = list(dict.fromkeys(words)) + (["null"] if type(None) in union else [])
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    low, high, low_open, high_open = bounds(annotation)
    bounded = "" if low is None and high is None else " " + interval(low, high, low_open,
                                                                     high_open)
    if base is bool:
        return "true or false"
    if base is int:
        if (low, low_open) == (1, False):
            return "a positive integer" + (f" <= {high}" if high is not None else "")
        return "an integer" + bounded
    if base is float:
        return "a number" + bounded
    if base is str:
        return "a string"
    if typing.get_origin(base) is Literal:
        return "one of: " + ", ".join(repr(a) for a in typing.get_args(base))
    if typing.get_origin(base) is tuple:
        items = [describe(a) for a in typing.get_args(base)]
        if len(items) == 2 and items[0] == items[1]:
            return f"a pair of {items[0]}"
        if len(set(items)) == 1:
            return f"a list of {len(items)}, each {items[0]}"
        return f"a list of {len(items)}: [" + ", ".join(items) + "]"
    if _sequence(base):
        least, most = lengths(annotation)
        return f"a list of {least} to {most} items" if most is not None else "a list"
    if isinstance(base, type):
        return f"a {base.__name__}"
    return "any value"


def _engine_only(annotation) -> bool:
    """An annotation that only names engine classes (``np.ndarray``, ``Layer | None``):
    what such an argument must be is the body's to check, not a declaration's."""
    if typing.get_origin(annotation) is Annotated:
        return False
    union = [m for m in members(annotation) if m is not type(None)] or [annotation]
    return all(engine_object(m) and typing.get_origin(m) is None for m in union)


def engine_object(annotation) -> bool:
    """A class an option also takes from Python (an Activation instance): not something
    a config file can write."""
    base = base_type(annotation)
    return isinstance(base, type) and base not in (int, float, bool, str, dict, list,
                                                   tuple, type(None))


# -- checking values -----------------------------------------------------------------
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
    option = next(o for o in _options(cls) if o.name == name)
    return check_value(value, option.annotation, name)


def rename_aliases(given: dict, declared, positional=()) -> dict:
    """``given`` with each option given under an :class:`Alias` under its own name; the
    option and its alias both given (here, or among the ``positional`` names) is a
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
        return tuple(_check(v, a) for v, a in zip(value, args))
    if _sequence(base):
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
    """Decorate an ``__init__`` (or any function) whose parameters are declared: an
    option given under an :class:`Alias` is passed under its own name, an unknown or
    missing one is refused, and each argument given is checked against its annotation
    (:func:`check_value`) before the body runs."""
    signature = inspect.signature(init)
    params = list(signature.parameters.values())
    method = bool(params) and params[0].name == "self"
    constructor = init.__name__ == "__init__"
    own = {p.name for p in params[int(method):]
           if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    passes_on = any(p.kind is p.VAR_KEYWORD for p in params)
    hints = typing.get_type_hints(init, include_extras=True)
    checks = {p.name: hints[p.name] for p in params if p.name in own and p.name in hints
              and not _engine_only(hints[p.name])}

    @functools.wraps(init)
    def wrapper(*args, **kwargs):
        # a constructor takes what its class declares (its bases' options included)
        owner = type(args[0]) if constructor and args else init
        what = owner.__name__ if constructor else init.__qualname__
        declared = _options(owner)
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
        for name, value in list(bound.arguments.items())[int(method):]:
            if name in checks:
                bound.arguments[name] = check_value(value, checks[name], name)
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


def build(registry, name, what: str, **kwargs):
    """``registry[name](**kwargs)``, its options checked against the declaration of the
    entry (an unknown option: ``optimizer 'sgd' takes no option 'momentum'; ...``)."""
    cls = lookup(registry, name, what)
    return cls(**check_options(cls, kwargs, f"{what} {name!r}"))
