"""The vocabulary of declarations, and reading them: what a constructor's signature says
about each option (:func:`options`), and what an annotation accepts, in words
(:func:`describe`). See :mod:`scratchnet.options`."""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le, Len, Lt

from ..checks import interval


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


#: what an experiment file writes for an option it leaves to its data (:class:`FromData`)
AUTO = "auto"


@dataclass(frozen=True)
class FromData:
    """An option an experiment file may leave to its data: ``auto`` there stands for the
    data's ``size`` (``outputs``: the width its targets need, the number of classes or a
    text's vocabulary, 1 for a value; ``vocabulary``: how many ids a text has), filled in
    when the experiment is built. With ``implied``, leaving the option out means ``auto``
    (an embedding's vocabulary, which only the data knows); ``what`` is its help."""

    size: str
    what: str
    implied: bool = False


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
    def from_data(self) -> FromData | None:
        """Where an experiment file's ``auto`` for this option comes from, if it may."""
        return next((m for m in metadata_of(self.annotation) if isinstance(m, FromData)), None)

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
        if (low, low_open, high) == (1, False, None):
            return "a positive integer"
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
