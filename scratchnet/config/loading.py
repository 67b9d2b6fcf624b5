"""From an experiment file (and ``--set`` overrides) to a validated config."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from .. import files, runs
from ..errors import ConfigError, ConfigErrors, NeedsDataFile
from .messages import Origin, format_validation_errors, show
from .overrides import apply_override, parse_override
from .schema import ExperimentConfig, refresh, without_legacy
from .bases import load_layered
from .yaml_text import line_numbers


def validate(raw: dict, source: str = "<config>", text: str | None = None,
             default_name: str | None = None, *, lines: dict | None = None,
             overridden: dict[tuple, str] | None = None, saved: bool = False) -> ExperimentConfig:
    """Validate plain data into an :class:`ExperimentConfig`, or raise
    :class:`~scratchnet.errors.ConfigErrors`: one line per mistake, the first as its
    message. Its lines are those of ``text`` (the YAML ``source`` holds), or ``lines``:
    key path -> the ``(file, line)`` that wrote it, for a file built on others
    (:func:`~scratchnet.config.bases.load_layered`). ``overridden`` maps key paths set by
    ``--set`` to the option text, so an error there names the option rather than a line
    of the file. ``saved``: a run folder's config.yaml, which an earlier release may have
    written (its keys of no meaning now are left out). The config remembers where it came
    from (:attr:`ExperimentConfig.origin`), for the checks that follow."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, "
                          f"got {type(raw).__name__}")
    if saved:
        raw = without_legacy(raw)
    refresh()  # a registry entry added since
    if text:
        lines = {k: (source, n) for k, n in line_numbers(text).items()}
    origin = Origin(source, dict(lines or {}), dict(overridden or {}))
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigErrors(format_validation_errors(err, origin)) from None
    except (RecursionError, TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{source}: invalid config: {e}") from None
    if cfg.base is not None:  # data that did not come through load_config
        raise ConfigError(origin.message(("base",), "bases are read with the file that "
                                         "names them (load_config), so base is written in "
                                         "the file, not given by --set or to validate()"))
    if cfg.name is None and default_name:
        cfg.name = default_name
    if cfg.name is not None and not _safe_name(cfg.name):
        raise ConfigError(f"{source}: name: got {cfg.name!r}: use at most {MAX_NAME} letters, "
                          "digits, '.', '_' and '-' (not starting with '.')")
    cfg.origin = origin
    return cfg


#: the longest experiment name: its run folders' names (name, a time stamp, a count) must
#: fit every file system's 255 bytes, with room for a sweep's point and seed
MAX_NAME = 100


def _safe_name(name: str) -> bool:
    return bool(name) and len(name) <= MAX_NAME and all(c.isalnum() or c in "._-" for c in name) \
        and not name.startswith(".")


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment file and the files it builds on (``base``:
    :mod:`~scratchnet.config.bases`), override (``["train.epochs=5", ...]``) and validate
    it (a run folder's config.yaml too: ``train --resume RUN``)."""
    layered = load_layered(path)
    raw = layered.raw
    overridden: dict[tuple, str] = {}
    for item in overrides or []:
        parts, value = parse_override(item)
        apply_override(raw, parts, value)
        overridden[tuple(parts)] = f"--set {item}"
    path = Path(path)
    saved = path.name == runs.CONFIG and (path.parent / runs.DATA).exists()
    cfg = validate(raw, str(path), default_name=path.stem, lines=layered.lines,
                   overridden=overridden, saved=saved)
    check_data_files(cfg)
    if cfg.data.path:
        # Stored absolute in the run's config.yaml, so `eval` works from any folder.
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    return cfg


def check_data_files(cfg: ExperimentConfig) -> None:
    """A data file the experiment names must exist (:func:`data_file_mistake`, located:
    ``file:line: data.path: ...``)."""
    mistake = data_file_mistake(cfg)
    if mistake is not None:
        raise type(mistake)(cfg.origin.message(mistake.key, str(mistake)), key=mistake.key)


def data_file_mistake(cfg: ExperimentConfig) -> ConfigError | None:
    """What is wrong with the data file the experiment names, if anything, keyed
    ``data.path``. A missing one is a mistake in the config (a ConfigError: exit 2, found
    before any training starts); a file that exists but cannot be read or parsed is a
    DataError while running (exit 1). MNIST-style folders are not checked here:
    ``data.path`` is only the first place searched."""
    d, key = cfg.data, ("data", "path")
    kind = _FILE_KINDS.get(d.dataset)
    if kind is None:
        return None
    if not d.path:
        # `path: null` written in the file: an example left for its user to point at their
        # file (validate notes it); no path at all is a mistake
        left_open = key in cfg.origin.lines
        return (NeedsDataFile if left_open else ConfigError)(
            f"required for dataset {d.dataset}; expected the path of {kind} "
            "(--set data.path=FILE)", key=key)
    try:  # "~user" of no user, a name too long for the file system, ...
        path = Path(d.path).expanduser()
        if path.is_file():
            return None
        problem = (f"is {files.kind(path.stat().st_mode)}, not a regular file"
                   if path.exists() else "no such file")
    except (OSError, RuntimeError, ValueError) as e:
        return ConfigError(f"got {show(d.path)}: cannot be used as a path ({type(e).__name__}: "
                           f"{' '.join(str(e).split())[:120]}); expected {kind}", key=key)
    hint = "" if path.is_absolute() else f" (relative paths are read from {Path.cwd()})"
    return ConfigError(f"got {d.path!r}: {problem}; expected {kind}{hint}", key=key)


#: the datasets that are one file the config names, and what that file is
_FILE_KINDS = {"csv": "a CSV file", "npz": "an .npz file"}
