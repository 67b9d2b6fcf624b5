"""One lookup for every registry (``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``, ...): a
config name to its entry, failing with the list of valid names."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping

from .errors import ConfigError


def did_you_mean(value, choices) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup(registry: Mapping, name, what: str):
    """``registry[name]``, or a ConfigError naming the valid choices."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown {what} {name!r}{did_you_mean(name, registry)}; "
                          f"expected one of: {', '.join(registry)}") from None


def check_options(cls, name, what: str, options) -> None:
    """Refuse an option ``cls``'s constructor does not take (ConfigError is a ValueError,
    so the config schema's validators use this too)."""
    accepted = list(inspect.signature(cls).parameters)
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
