"""Run folders on disk: atomic writes, weights without pickle, checkpoints.

A run folder ``runs/<name>-<timestamp>/`` holds:

- ``config.yaml``: the resolved experiment (defaults filled in, overrides applied);
- ``data.json``: the fitted scaling, classes and feature names, so evaluation and
  prediction transform inputs exactly as training did;
- ``metrics.jsonl``: one line per evaluation, rewritten as each happens;
- ``weights.safetensors``: the best weights so far (safetensors: no pickle, ever);
- ``checkpoint.safetensors``: the latest resumable training state;
- ``summary.json``: how the run ended, its test metrics, and the config's hash.

Every file is written to a temporary file in the same folder and renamed over the old one,
so a run killed at any moment (even with SIGKILL) leaves the previous version readable.
Each file's contents, tensor by tensor and key by key: ``docs/format.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import ConfigError, DataError, ScratchnetError

CONFIG = "config.yaml"
DATA = "data.json"
METRICS = "metrics.jsonl"
WEIGHTS = "weights.safetensors"
CHECKPOINT = "checkpoint.safetensors"
SUMMARY = "summary.json"
LOCK = ".lock"
PLOT = "curves.png"
HEALTH_PLOT = "health.png"

_META_KEY = "scratchnet"


# The process's umask, read once (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); a run's files get the usual mode
            os.chmod(tmp, 0o666 & ~_UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


# -- weights and checkpoints ----------------------------------------------------------
def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
    """Arrays (and JSON metadata) to a safetensors file, atomically."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                metadata={_META_KEY: json.dumps(meta or {}, default=_jsonable)})
    atomic_write_bytes(path, data)


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a safetensors file written by :func:`save_arrays`. Never unpickles: a file that
    is not safetensors (a pickle, an ``.npz``, garbage) is refused with a DataError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    try:
        arrays = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(_META_KEY, "{}"))
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError, OverflowError) as e:
        raise DataError(f"{path}: not a scratchnet safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        "refusing to load it") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: not a scratchnet safetensors file (its metadata is "
                        f"{type(meta).__name__}, expected a mapping); refusing to load it")
    return arrays, meta


# -- the run folder -------------------------------------------------------------------
def check_out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, expected a folder for run folders")
    return out


def new_run_dir(out: str | Path, name: str) -> Path:
    """Create ``out/<name>-<timestamp>`` without ever reusing an existing folder."""
    out = check_out_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create ({e.strerror})") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = out / (f"{name}-{stamp}" + (f"-{i}" if i else ""))
        try:
            candidate.mkdir()  # fails if it exists: never clobber
            return candidate
        except FileExistsError:
            continue
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
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
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
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG})")
    from .config import parse_yaml

    return parse_yaml(path.read_text(encoding="utf-8"), str(path))


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / METRICS,
                      "".join(json.dumps(r, default=_jsonable) + "\n" for r in records))


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(f"{path}: a line is not valid JSON") from None
    return out
