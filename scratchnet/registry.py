"""One lookup for every registry (``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``,
``DATASETS``, ``SCALERS``, ``DTYPES``, ...): a config name to its entry, failing with the
list of valid names."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping

from .errors import ConfigError


def did_you_mean(value, choices) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup(registry, name, what: str):
    """``registry[name]`` (or ``name`` itself when the registry is a plain collection of
    names), else a ConfigError naming the valid choices."""
    try:
        if isinstance(name, str) and name in registry:
            return registry[name] if isinstance(registry, Mapping) else name
    except TypeError:
        pass
    raise ConfigError(f"unknown {what} {name!r}{did_you_mean(name, registry)}; "
                      f"expected one of: {', '.join(registry)}")


def options_of(cls) -> list[str]:
    """The keyword options ``cls``'s constructor takes, with those a ``**options`` of its
    hands on to the base classes' constructors."""
    names: list[str] = []
    for klass in (cls.__mro__ if isinstance(cls, type) else ()):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # not self
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                  and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names or list(inspect.signature(cls).parameters)


def check_options(cls, name, what: str, options) -> None:
    """Refuse an option ``cls``'s constructor does not take (ConfigError is a ValueError,
    so the config schema's validators use this too)."""
    accepted = options_of(cls)
    for key in options:
        if key not in accepted:
            raise ConfigError(f"{what} {name!r} takes no option {key!r}"
                              f"{did_you_mean(key, accepted)}; options: "
                              f"{', '.join(sorted(accepted)) or 'none'}")


def build(registry: Mapping, name, what: str, **kwargs):
    """Construct ``registry[name](**kwargs)``, refusing options the class does not take."""
    cls = lookup(registry, name, what)
    check_options(cls, name, what, kwargs)
    return cls(**kwargs)
