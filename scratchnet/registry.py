"""One lookup for every registry (``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``,
``DATASETS``, ``SCALERS``, ``DTYPES``, ...): a config name to its entry, failing with the
list of valid names."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from .errors import ConfigError


class Registry(dict):
    """A registry some of whose entries are also found under another name (``aliases``:
    alias -> the entry's own name), such as the name an earlier release used. Listings
    (``expected one of``, the README) show the entries' own names only."""

    def __init__(self, entries: Mapping, aliases: Mapping[str, str] | None = None):
        super().__init__(entries)
        self.aliases = dict(aliases or {})

    def __contains__(self, name) -> bool:
        return super().__contains__(name) or name in self.aliases

    def __getitem__(self, name):
        return super().__getitem__(self.aliases.get(name, name))


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
