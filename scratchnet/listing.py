"""The run folders under a folder, oldest first: what ``scratchnet runs`` lists, and the
newest of them, which ``@last`` names wherever a run folder is expected."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from . import runs
from .compare import read_run
from .errors import ConfigError, ScratchnetError

#: the name that stands for the newest run folder: ``@last`` (in ``runs/``, where ``train``
#: writes by default) or ``DIR/@last`` (in DIR)
LAST = "@last"
#: where ``train`` puts run folders unless told otherwise (its ``--out`` default)
RUNS = Path("runs")


#: the end of a run folder's name: when it was made (``runs.new_run_dir``), and a count
#: for folders made in the same second
_STAMP = re.compile(r"-(\d{8}-\d{6})(?:-(\d+))?$")


def started(run_dir: Path) -> tuple[float, int]:
    """When a run started, and its place among those started in the same second: read
    from its folder's name, which says when it was made; for a folder named otherwise,
    when its ``config.yaml`` was last written."""
    m = _STAMP.search(run_dir.name)
    if m:
        with contextlib.suppress(ValueError):
            when = time.mktime(time.strptime(m.group(1), "%Y%m%d-%H%M%S"))
            return when, int(m.group(2) or 0)
    return (run_dir / runs.CONFIG).lstat().st_mtime, 0


def run_folders(folder: str | Path) -> list[Path]:
    """The run folders directly in ``folder``, the oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    found = [p for p in folder.iterdir()
             if p.is_dir() and not p.is_symlink() and os.path.lexists(p / runs.CONFIG)]
    return sorted(found, key=lambda p: (*started(p), p.name))


def newest(folder: str | Path) -> Path:
    """The run folder in ``folder`` started last."""
    found = run_folders(folder)
    if not found:
        raise ConfigError(f"{folder}: no run folders in it (so nothing for {LAST} to name)")
    return found[-1]


def resolve(path: str | Path) -> Path:
    """``path``, or for ``@last`` / ``DIR/@last`` the newest run folder it names."""
    path = Path(path)
    if path.name != LAST:
        return path
    return newest(RUNS if str(path) == LAST else path.parent)


def _training(run_dir: Path) -> bool:
    """Whether a process holds the run folder's lock now (it is training), found without
    taking the lock for longer than the look."""
    import fcntl

    try:
        fd = os.open(run_dir / runs.LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def describe(run_dir: Path, now: float | None = None) -> dict:
    """One row of ``scratchnet runs``: the folder, the experiment's name, its status, its
    headline metric (test accuracy, else test MAE, else the best validation loss), the
    epochs run of those planned, and its age in seconds. A folder that cannot be read is
    listed with the reason as its status."""
    row = {"run_dir": str(run_dir), "name": run_dir.name, "status": "unreadable",
           "metric": None, "value": None, "epochs_run": None, "epochs": None,
           "age_seconds": max(0.0, (now or time.time()) - started(run_dir)[0])}
    try:
        record = read_run(run_dir)
    except ScratchnetError as e:
        row["error"] = str(e)
        return row
    status = record["status"]
    if status == "incomplete" and _training(run_dir):
        status = "training"
    metric = next((m for m in ("accuracy", "mae", "val_loss") if m in record["metrics"]), None)
    epochs = (record["config"].get("train") or {}).get("epochs")
    run = record["metrics"].get("epochs")  # the summary's epochs_run, if a finite number
    return {**row, "name": record["name"], "status": status, "metric": metric,
            "value": record["metrics"].get(metric),
            "epochs_run": len(record["history"]) if run is None else int(run),
            "epochs": epochs if isinstance(epochs, int) else None}
