"""Configs that build on configs: ``base: mnist_tanh.yaml`` (or a list of files) in an
experiment file.

Each base is read (its own bases first), then the file's own keys are laid over them:
mappings merge key by key, anything else (a list, a number, a string, null) replaces what
was there, and the file's own keys win; of several bases, a later one wins over an
earlier. A mapping of another kind than the one under it (another ``name`` or ``type``:
an optimizer, a decay, a loss) replaces it too, since the other kind's keys would mean
something else or nothing (a linear decay's ``final_lr`` is a plateau's floor).
``name`` is the one key a file does not take from its bases: an experiment is named by its
own file (its ``name``, else its stem). A base's path is read relative to the file that
names it. Every key keeps the file and line it was written at, so a mistake in an
inherited value points into the base file.

Reading is bounded: a chain of at most :data:`~scratchnet.config.schema.MAX_BASE_DEPTH`
files, at most :data:`~scratchnet.config.schema.MAX_BASE_FILES` files read in all, and at
most
:data:`~scratchnet.files.MAX_CONFIG_BYTES` of YAML for an experiment and its bases
together (each read through :mod:`scratchnet.files`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import files
from ..errors import ConfigError
from .messages import Origin, show
from .schema import MAX_BASE_DEPTH, MAX_BASE_FILES
from .yaml_text import check_plain_data, line_numbers, load_raw

#: the key that names a file's bases, and the key it never takes from them
BASE, OWN = "base", ("name",)
#: the keys that choose a section's kind (:func:`~scratchnet.config.declared.dispatched`,
#: and the ``{name: ..., <options>}`` of an activation or a loss)
KIND_KEYS = ("name", "type")


@dataclass
class Layered:
    """An experiment file with its bases laid under it: the merged plain data (without
    ``base``), where each key path was written (``(file, line)``), and the files read."""

    raw: dict
    lines: dict[tuple, tuple[str, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def load_layered(path: str | Path) -> Layered:
    """Read the experiment file ``path`` and every base it names (see the module
    docstring); a ConfigError names the file, the line and ``base`` for a base that is
    missing, too deep, one of too many or part of a cycle."""
    reader = _Reader()
    raw, lines = reader.read(Path(path), ())
    check_plain_data(raw, str(path))  # the merged data: still a small experiment
    return Layered(raw, lines, reader.files)


class _Reader:
    """Reads the files of one experiment within the budgets: files and bytes."""

    def __init__(self):
        self.files: list[str] = []
        self.left = files.MAX_CONFIG_BYTES

    def read(self, path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict]:
        """``(raw, lines)`` of ``path`` over its bases; ``chain`` holds the (resolved)
        files that led to it, the experiment file first."""
        if chain:  # a base: the rest of the experiment's bytes
            whole = files.size_text(files.MAX_CONFIG_BYTES)
            raw, text = load_raw(path, self.left, "a base of an experiment file (an "
                                 f"experiment and its bases: {whole} in all)")
        else:
            raw, text = load_raw(path)
        self.files.append(str(path))
        self.left -= len(text.encode())
        lines = {k: (str(path), n) for k, n in line_numbers(text).items()}
        if BASE not in raw:
            return raw, lines
        origin = Origin(str(path), lines)
        value = raw.pop(BASE)
        names = base_names(value, origin)
        chain = (*chain, _resolved(path))
        merged: dict = {}
        merged_lines: dict = {}
        for i, name in enumerate(names):
            loc = (BASE, str(i)) if isinstance(value, list) else (BASE,)
            base = self._base(path, name, chain, origin, loc)
            b_raw, b_lines = self.read(base, chain)
            merged, merged_lines = merge(merged, merged_lines, b_raw, b_lines)
        for key in OWN:  # never inherited
            merged.pop(key, None)
            merged_lines = {k: v for k, v in merged_lines.items() if k[:1] != (key,)}
        return merge(merged, merged_lines, raw, lines)

    def _base(self, path: Path, name: str, chain: tuple[Path, ...], origin: Origin,
              loc: tuple) -> Path:
        """The base file ``name`` that ``path`` names at ``loc``, checked against the
        budgets and the chain (a cycle)."""
        base = path.parent / Path(name).expanduser()
        try:
            target = _resolved(base)
            found = base.is_file()
        except (OSError, RuntimeError, ValueError) as e:  # a name too long, a symlink loop
            raise ConfigError(origin.message(loc, f"got {name!r}: cannot be used as a path "
                                             f"({type(e).__name__})")) from None
        if target in chain:
            cycle = [*chain[chain.index(target):], target]
            raise ConfigError(origin.message(loc, "a cycle of bases: " + " -> ".join(
                _shown(p) for p in cycle) + "; a file cannot build on itself"))
        if not found:
            problem = "no such file" if not os.path.lexists(base) else "not a regular file"
            raise ConfigError(origin.message(loc, f"got {name!r}: {problem} ({_shown(base)}; "
                                             "a base is read relative to the file naming it)"))
        if len(chain) >= MAX_BASE_DEPTH:
            raise ConfigError(origin.message(loc, f"a chain of more than {MAX_BASE_DEPTH} "
                                             "files (a base of a base of ...); expected at "
                                             f"most {MAX_BASE_DEPTH}"))
        if len(self.files) >= MAX_BASE_FILES:
            raise ConfigError(origin.message(loc, f"the experiment reads more than "
                                             f"{MAX_BASE_FILES} files through its bases; "
                                             f"expected at most {MAX_BASE_FILES}"))
        return base


def base_names(value, origin: Origin) -> list[str]:
    """``base`` as a list of file names, or a ConfigError located at ``base``."""
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > MAX_BASE_FILES or not all(isinstance(v, str) and v
                                                            for v in names):
        raise ConfigError(origin.message((BASE,), f"got {show(value)}: expected a file name "
                                         f"or a list of 1 to {MAX_BASE_FILES} file names"))
    return names


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _shown(path: Path) -> str:
    """A file as a message names it: relative to the working folder when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)


def merge(under: dict, under_lines: dict, over: dict, over_lines: dict) -> tuple[dict, dict]:
    """``over`` laid on ``under``: mappings of the same kind merge key by key, anything
    else in ``over`` replaces; the lines follow the values (a key ``over`` replaced keeps
    none of ``under``'s lines beneath it)."""
    replaced: set[tuple] = set()

    def lay(a: dict, b: dict, path: tuple) -> dict:
        out = dict(a)
        for k, v in b.items():
            here = (*path, str(k))
            below = out.get(k)
            if isinstance(v, dict) and isinstance(below, dict) and not any(
                    key in v and key in below and v[key] != below[key] for key in KIND_KEYS):
                out[k] = lay(below, v, here)
            else:
                out[k] = v
                replaced.add(here)
        return out

    raw = lay(under, over, ())
    lines = {k: v for k, v in under_lines.items()
             if not any(k[:n] in replaced for n in range(1, len(k) + 1))}
    lines.update(over_lines)
    return raw, lines
