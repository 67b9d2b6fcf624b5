"""Reading YAML safely: plain data only (never Python objects), ``1e-3`` as a number,
no alias bombs, and the line of every key for error messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .. import files
from ..errors import ConfigError


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python object tags), reading ``1e-3`` as a number as
    YAML 1.2 does (YAML 1.1 wants ``1.0e-3`` and would give the string "1e-3"), and
    refusing a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" \
                        or not isinstance(key_node, yaml.ScalarNode):
                    continue  # "<<" merges may be overridden on purpose
                line = key_node.start_mark.line + 1
                if key_node.value in first_line:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} is given twice, at lines "
                        f"{first_line[key_node.value]} and {line}; keep one",
                        key_node.start_mark)
                first_line[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def safe_load(text: str):
    """Parse YAML text safely: plain data only, never Python objects."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def line_numbers(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line of that key in the YAML text (best effort)."""
    lines: dict[tuple, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else None
                lines[path + (k,)] = key.start_mark.line + 1
                walk(value, path + (k,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (str(i),)] = item.start_mark.line + 1
                walk(item, path + (str(i),))

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except (yaml.YAMLError, RecursionError):
        pass
    return lines


def load_raw(path: str | Path, limit: int | None = None,
             what: str = "a YAML experiment file") -> tuple[dict, str]:
    """Read an experiment file safely (no Python object tags) into plain data and its
    text: a regular file of at most ``limit`` bytes (default
    :data:`~scratchnet.files.MAX_CONFIG_BYTES`), ``what`` naming it in a message."""
    limit = files.MAX_CONFIG_BYTES if limit is None else limit
    text = files.read_text(path, limit, what, ConfigError)
    raw = parse_yaml(text, str(path))
    return raw, text


def parse_yaml(text: str, source: str = "<config>") -> dict:
    try:
        raw = safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (e.problem or e.context or "invalid YAML").strip()
        raise ConfigError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except Exception as e:  # PyYAML's constructors fail in odd ways on odd tags ("!!int")
        detail = " ".join(str(e).split())[:200]
        raise ConfigError(f"{source}: invalid YAML: cannot read a value "
                          f"({type(e).__name__}{': ' + detail if detail else ''}); "
                          "check explicit tags such as !!int or !!timestamp") from None
    if raw is None:
        raise ConfigError(f"{source}: the file is empty; expected an experiment mapping")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of experiment keys at the top level, "
                          f"got {type(raw).__name__}")
    check_plain_data(raw, source)
    return raw


#: the most values a config may hold with its YAML aliases expanded
MAX_CONFIG_VALUES = 100_000


def check_plain_data(raw: Any, source: str = "<config>") -> None:
    """Refuse what safe YAML loading still lets through: an alias inside itself (a
    recursive structure) and aliases of aliases that expand to millions of values (a
    "billion laughs" file of a few lines), which would hang or crash when the config is
    written to the run folder."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: a YAML alias refers to the value that contains it "
                              "(a recursive structure); expected plain data")
        active.add(key)
        total = 1 + sum(size(v) for v in (node.values() if isinstance(node, dict) else node))
        active.discard(key)
        if total > MAX_CONFIG_VALUES:
            raise ConfigError(f"{source}: the config holds more than {MAX_CONFIG_VALUES} values "
                              "once its YAML aliases are expanded; expected a small experiment "
                              "file")
        sizes[key] = total
        return total

    try:
        size(raw)
    except RecursionError:
        raise ConfigError(f"{source}: the config is nested too deeply") from None


