"""From an experiment file (and ``--set`` overrides) to a validated config."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from .. import files
from ..errors import ConfigError, ConfigErrors, NeedsDataFile
from .messages import Origin, format_validation_errors, show
from .overrides import apply_override, parse_override
from .schema import ExperimentConfig
from .yaml_text import line_numbers, load_raw


def validate(raw: dict, source: str = "<config>", text: str | None = None,
             default_name: str | None = None, *,
             overridden: dict[tuple, str] | None = None) -> ExperimentConfig:
    """Validate plain data into an :class:`ExperimentConfig`, or raise
    :class:`~scratchnet.errors.ConfigErrors`: one line per mistake, the first as its
    message. ``overridden`` maps key paths set by ``--set`` to the option text, so an
    error there names the option rather than a line of the file. The config remembers
    where it came from (:attr:`ExperimentConfig.origin`), for the checks that follow."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    origin = Origin(source, line_numbers(text) if text else {}, dict(overridden or {}))
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigErrors(format_validation_errors(err, origin)) from None
    except (RecursionError, TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{source}: invalid config: {e}") from None
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
    """Load, override (``["train.epochs=5", ...]``) and validate an experiment file."""
    raw, text = load_raw(path)
    overridden: dict[tuple, str] = {}
    for item in overrides or []:
        parts, value = parse_override(item)
        apply_override(raw, parts, value)
        overridden[tuple(parts)] = f"--set {item}"
    cfg = validate(raw, str(path), text, default_name=Path(path).stem, overridden=overridden)
    check_data_files(cfg)
    if cfg.data.path:
        # Stored absolute in the run's config.yaml, so `eval` works from any folder.
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    return cfg


def check_data_files(cfg: ExperimentConfig) -> None:
    """A data file the experiment names must exist. A missing one is a mistake in the
    config (a ConfigError: exit 2, found before any training starts); a file that exists
    but cannot be read or parsed is a DataError while running (exit 1). MNIST-style
    folders are not checked here: ``data.path`` is only the first place searched."""
    d = cfg.data
    kind = _FILE_KINDS.get(d.dataset)
    if kind is None:
        return
    where = cfg.origin.locate(("data", "path"))
    if not d.path:
        # `path: null` written in the file: an example left for its user to point at their
        # file (validate notes it); no path at all is a mistake
        left_open = ("data", "path") in cfg.origin.lines
        raise (NeedsDataFile if left_open else ConfigError)(
            f"{where}: data.path: required for dataset {d.dataset}; expected the path of "
            f"{kind} (--set data.path=FILE)")
    try:  # "~user" of no user, a name too long for the file system, ...
        path = Path(d.path).expanduser()
        if path.is_file():
            return
        problem = (f"is {files.kind(path.stat().st_mode)}, not a regular file"
                   if path.exists() else "no such file")
    except (OSError, RuntimeError, ValueError) as e:
        raise ConfigError(f"{where}: data.path: got {show(d.path)}: cannot be used as a "
                          f"path ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                          f"expected {kind}") from None
    hint = "" if path.is_absolute() else f" (relative paths are read from {Path.cwd()})"
    raise ConfigError(f"{where}: data.path: got {d.path!r}: {problem}; expected "
                      f"{kind}{hint}")


#: the datasets that are one file the config names, and what that file is
_FILE_KINDS = {"csv": "a CSV file", "npz": "an .npz file"}
