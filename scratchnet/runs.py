"""Run folders on disk: atomic writes, weights without pickle, checkpoints.

A run folder ``runs/<name>-<timestamp>/`` holds:

- ``config.yaml``: the resolved experiment (defaults filled in, overrides applied);
- ``data.json``: the fitted scaling, classes and feature names, so evaluation and
  prediction transform inputs exactly as training did;
- ``metrics.jsonl``: one line per evaluation, rewritten as each happens;
- ``weights.safetensors``: the run's weights
  (:data:`~scratchnet.constants.WEIGHTS_RULE`; safetensors: no pickle, ever);
- ``checkpoint.safetensors``: the latest resumable training state;
- ``summary.json``: how the run ended, its test metrics, and the config's hash.

Every file is written to a temporary file in the same folder and renamed over the old one,
so a run killed at any moment (even with SIGKILL) leaves the previous version readable.
Each file's contents, tensor by tensor and key by key: ``docs/format.md``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import reprlib
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import files
from .errors import ConfigError, DataError, ScratchnetError, WriteError

CONFIG = "config.yaml"
DATA = "data.json"
METRICS = "metrics.jsonl"
WEIGHTS = "weights.safetensors"
CHECKPOINT = "checkpoint.safetensors"
SUMMARY = "summary.json"
#: a run that extends another: which, and the epochs its schedule is laid out over
EXTENDS = "extends.json"
LOCK = ".lock"
PLOT = "curves.png"
HEALTH_PLOT = "health.png"
GRAD_FLOW_PLOT = "grad-flow.png"

_META_KEY = "scratchnet"


#: what an OSError while writing means, by errno, for the one-line message
_WRITE_PROBLEMS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would be larger than this process may write (ulimit -f)",
    errno.EROFS: "the file system is read-only",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
#: errnos that mean "out of space": what was written before is all there is
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_problem(e: OSError) -> str:
    """What an OSError raised while writing means, in words."""
    return _WRITE_PROBLEMS.get(e.errno, e.strerror or str(e))


def write_error(path: str | Path, e: OSError) -> WriteError:
    """An OSError raised while writing ``path`` as one line naming it and the problem."""
    return WriteError(f"{path}: cannot write: {write_problem(e)}", full=e.errno in _FULL)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half.
    A failed write (a full disk, say) leaves the old file and no temporary one, and is a
    :class:`~scratchnet.errors.WriteError` naming ``path``."""
    path = Path(path)
    try:
        fd, tmp = _temporary(path)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise write_error(path, e) from None
        raise


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, open for writing: ``(fd, its path)``. Created with mode
    0666, which the kernel narrows by the process's umask as for any file (``mkstemp``
    would make it private, and reading the umask means setting it, process-wide)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def json_text(obj: Any) -> str:
    """``obj`` as one line of JSON that every parser reads: NaN and infinities become
    null (``json.dumps`` would write ``NaN``, which is not JSON). For ``--json`` output."""
    return json.dumps(_finite(obj), allow_nan=False, default=str)


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_json(path: str | Path) -> dict:
    """A JSON object (a mapping) from a file scratchnet wrote; anything else, or a file
    that is not a regular file of at most :data:`~scratchnet.files.MAX_JSON_BYTES`, is a
    DataError naming it."""
    path = Path(path)
    text = files.read_text(path, files.MAX_JSON_BYTES, "a JSON file written by scratchnet")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object (a mapping of keys), got "
                        f"{type(obj).__name__}")
    return obj


# -- weights and checkpoints ----------------------------------------------------------
def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
    """Arrays (and JSON metadata) to a safetensors file, atomically."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                metadata={_META_KEY: json.dumps(meta or {}, default=_jsonable)})
    atomic_write_bytes(path, data)


def load_arrays(path: str | Path, limit: int = files.MAX_WEIGHTS_BYTES
                ) -> tuple[dict[str, np.ndarray], dict]:
    """Read a safetensors file written by :func:`save_arrays`, of at most ``limit`` bytes.
    Never unpickles: a file that is not safetensors (a pickle, an ``.npz``, garbage) is
    refused with a DataError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    raw = files.read_bytes(path, limit, "a safetensors file")
    try:
        arrays = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(_META_KEY, "{}"))
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError, OverflowError,
            RecursionError, AttributeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a scratchnet safetensors file ({why}); "
                        "refusing to load it") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: not a scratchnet safetensors file (its metadata is "
                        f"{type(meta).__name__}, expected a mapping); refusing to load it")
    return arrays, meta


def nonfinite(arrays: dict[str, np.ndarray]) -> str | None:
    """The name of the first array of ``arrays`` holding a NaN or an infinity, or None."""
    return next((k for k, a in arrays.items()
                 if a.dtype.kind in "fc" and not np.isfinite(a).all()), None)


# -- the run folder -------------------------------------------------------------------
def check_out_dir(out: str | Path) -> Path:
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: is a file, expected a folder for run folders")
    except OSError as e:  # a name too long for the file system, a loop of links, ...
        raise ConfigError(f"--out {out}: cannot be used ({write_problem(e)})") from None
    return out


def new_run_dir(out: str | Path, name: str) -> Path:
    """Create ``out/<name>-<timestamp>`` without ever reusing an existing folder."""
    out = check_out_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create ({write_problem(e)})") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = out / (f"{name}-{stamp}" + (f"-{i}" if i else ""))
        try:
            candidate.mkdir()  # fails if it exists: never clobber
            return candidate
        except FileExistsError:
            continue
        except OSError as e:  # read-only, full, a name too long for the file system, ...
            raise ConfigError(f"--out {out}: cannot create the folder {candidate.name}: "
                              f"{write_problem(e)}") from None
    raise ConfigError(f"could not create a new run folder under {out}")


@contextmanager
def locked(run_dir: str | Path):
    """Hold ``run_dir`` for this process while it trains: a second process that tries to
    train the same folder (two ``--resume`` at once) is refused instead of both writing.
    The lock is the kernel's (``flock`` on ``.lock`` in the folder), so it goes away with
    the process, even one killed with SIGKILL (which leaves the empty file behind)."""
    import fcntl

    path = Path(run_dir) / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ScratchnetError(f"{run_dir}: another process (pid {holder}) is training "
                                  "this run folder; wait for it to end, or stop it") from None
        try:  # the holder before us may have removed the file as we opened it: again
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.unlink(path)  # while still holding it, so nobody locks a file about to go
        os.close(fd)


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(config, sort_keys=False))


def read_run_config(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if not run_dir.is_dir():
        what = "it is a file" if run_dir.exists() else "no such folder"
        raise ConfigError(f"{run_dir}: not a run folder ({what})")
    if not os.path.lexists(path):
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG})")
    from .config import parse_yaml

    return parse_yaml(files.read_text(path, files.MAX_CONFIG_BYTES, "a run's YAML config"),
                      str(path))


def read_summary(run_dir: str | Path) -> dict:
    """A run's ``summary.json`` ({} while it has none), the keys others show checked."""
    path = Path(run_dir) / SUMMARY
    if not os.path.lexists(path):
        return {}
    summary = read_json(path)
    for key in ("name", "status", "config_hash", "run_dir", "task", "error"):
        if summary.get(key) is not None and not isinstance(summary[key], str):
            raise DataError(f"{path}: {key} is {reprlib.repr(summary[key])}; expected a string")
    if summary.get("test") is not None and not isinstance(summary["test"], dict):
        raise DataError(f"{path}: test is {reprlib.repr(summary['test'])}; expected a mapping "
                        "of metrics")
    return summary


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / METRICS,
                      "".join(json.dumps(r, default=_jsonable) + "\n" for r in records))


def _is_record(record) -> bool:
    """A metrics line: numbers (or null) by name, an integer epoch, and with
    ``train --health`` a ``health`` list of one object per layer."""
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        return False
    health = record.get("health", [])
    return isinstance(health, list) and all(isinstance(h, dict) for h in health) and all(
        not isinstance(v, bool) and isinstance(v, (int, float, type(None)))
        for k, v in record.items() if k != "health")


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not os.path.lexists(path):
        return []
    out = []
    text = files.read_text(path, files.MAX_JSON_BYTES, "JSON lines written by scratchnet")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise DataError(f"{path}: line {number} is not valid JSON") from None
            if not _is_record(record):
                raise DataError(f"{path}: line {number} is not an evaluation record (a JSON "
                                "object of numbers with an integer epoch, and a list of "
                                "objects as its health)")
            out.append(record)
    return out
