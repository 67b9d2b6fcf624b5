"""``--set KEY=VALUE``: dotted keys into the raw config, values read as YAML."""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError
from .messages import show
from .yaml_text import check_plain_data, safe_load


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.layers.0.neurons=128"`` -> (["model", "layers", "0", "neurons"], 128).
    The value is read as YAML, so numbers, booleans, null and lists work."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set: bad key {key!r} (use dotted paths like train.epochs)")
    try:
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except Exception as e:  # PyYAML's constructors fail in odd ways on odd tags ("!!int")
        raise ConfigError(f"--set {key}: cannot read the value {show(raw)}: {e}") from None
    check_plain_data(value, f"--set {key}")
    return parts, value


def apply_override(raw: dict, parts: list[str], value: Any, source: str = "--set") -> None:
    """Set ``raw[parts[0]][parts[1]]... = value`` in place; list indices are numbers."""
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{source}: {where}: no list item {part!r} "
                                  f"(the list has {len(node)} items)")
            if last:
                node[int(part)] = value
            else:
                if not isinstance(node[int(part)], (dict, list)):
                    node[int(part)] = {}
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"{source}: {where}: cannot set a key inside {show(node)}")


