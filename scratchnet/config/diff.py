"""Comparing configs: flattened to dotted keys, and the keys whose values differ."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}, "model": {"layers": [{...}]}}`` ->
    ``{"optimizer.lr": 0.1, "model.layers.0.neurons": 64, ...}``."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(config, list) and config and all(isinstance(v, dict) for v in config):
        for i, v in enumerate(config):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        out[prefix] = config
    return out


def differing_keys(configs: list[dict], ignore: Iterable[str] = ("name", "tracking")) -> list[str]:
    """Dotted keys whose values are not the same in every config (in first-seen order).
    By default the name and where a run was tracked do not count: they change nothing a
    run learns."""
    flats = [flatten(c) for c in configs]
    ignore = set(ignore)
    keys: list[str] = []
    for f in flats:
        for k in f:
            if k not in keys and k.split(".")[0] not in ignore and k not in ignore:
                keys.append(k)
    out = []
    for k in keys:
        vals = [json.dumps(f.get(k, "\0missing"), sort_keys=True, default=str) for f in flats]
        if len(set(vals)) > 1:
            out.append(k)
    return out


def show_value(v: Any) -> str:
    """A grid value as a table cell: strings bare, mappings and lists as compact JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, separators=(",", ":"))
    return str(v)


#: a key never shortened to these alone: they say nothing without their section
_TOO_SHORT = {"name", "type", "path"}


def short_keys(keys: Iterable[str]) -> dict[str, str]:
    """Dotted keys shortened by dropping leading parts while they stay unique:
    ``optimizer.lr`` -> ``lr``, ``model.layers.0.activation`` -> ``layers.0.activation``
    (never past a list index: ``activation`` alone would hide which layer)."""
    keys = list(keys)
    out = {}
    for k in keys:
        parts = k.split(".")
        short = k
        for n in range(1, len(parts)):
            if parts[n].isdigit() or parts[n - 1].isdigit():
                continue
            cand = ".".join(parts[n:])
            if cand in _TOO_SHORT:
                continue  # "name" alone would read as the run's name
            if all(other == k or not (other == cand or other.endswith("." + cand))
                   for other in keys):
                short = cand
        out[k] = short
    return out

