"""One run of a sweep, in whatever process runs it (a pool worker, a Dask worker), and
what every pool worker does first (:func:`watch_parent`)."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import warnings
from pathlib import Path

from .. import files, runs
from ..config import validate
from ..errors import ConfigError, DataError, DivergenceError, ScratchnetError

def watch_parent(lifeline) -> None:
    """The initializer of every worker process (``sweep --jobs N``, ``tune --jobs N``).

    Ctrl-C is the parent's to handle: it stops the workers itself, after recording what
    finished. ``lifeline`` is the reading end of a pipe whose writing end only the parent
    holds; when the parent dies, even by SIGKILL, the kernel closes that end, the read
    ends and the worker exits at once, whatever it was doing (its run folder keeps its
    last checkpoint, for ``--resume``). A check of the worker's own parent would not do:
    that is the fork server, which waits for its workers to exit before it does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def wait() -> None:
        try:
            lifeline.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=wait, name="scratchnet-lifeline", daemon=True).start()


def strip_summary(summary: dict | None) -> dict | None:
    if summary is None:
        return None
    return {k: v for k, v in summary.items() if k not in ("config",) and not k.startswith("_")}


def run_task(payload: dict, out: str, data_dir: str | None = None,
             resume_dir: str | None = None) -> dict:
    """Train one sweep run (in whatever process calls it) and describe how it ended.

    Never raises for a failed run: the result's ``status`` is "completed", "diverged",
    "invalid" (a config error), "failed" (anything else) or "interrupted". Warnings
    (NumPy overflow while diverging, say) are collected into ``warnings`` instead of being
    printed. Called with ``resume_dir``, it continues that run folder from its checkpoint
    (and starts afresh if the checkpoint cannot be used).
    """
    from ..experiment import train_experiment

    key = payload["key"]
    result: dict = {"key": key, "status": "failed", "run_dir": None, "summary": None,
                    "error": None, "warnings": []}
    seen: dict = {}

    def on_start(trainer, run_dir):
        seen["run_dir"] = run_dir

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cfg = validate(payload["config"], f"sweep run {key}")
            try:
                res = train_experiment(cfg, out=out, data_dir=data_dir, resume=resume_dir,
                                       on_start=on_start)
            except (ConfigError, DataError):
                if resume_dir is None or "run_dir" in seen:
                    raise
                res = train_experiment(cfg, out=out, data_dir=data_dir, on_start=on_start)
            result.update(status=res.status, run_dir=str(res.run_dir),
                          summary=strip_summary(res.summary))
        except DivergenceError as e:
            result.update(status="diverged", error=str(e))
            run_dir = seen.get("run_dir")
            if run_dir is not None:
                result["run_dir"] = str(run_dir)
                result["summary"] = strip_summary(runs.read_summary(run_dir) or None)
        except ConfigError as e:
            result.update(status="invalid", error=str(e))
        except ScratchnetError as e:
            result.update(status="failed", error=str(e))
        except Exception as e:  # a bug or an environment problem: report it in the row
            result.update(status="failed", error=f"{type(e).__name__}: {e}")
        if result["run_dir"] is None and "run_dir" in seen:
            result["run_dir"] = str(seen["run_dir"])
    msgs = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in msgs:
            msgs.append(text)
    result["warnings"] = msgs[:5]
    return result


def run_task_shipped(payload: dict, data_dir: str | None = None) -> dict:
    """:func:`run_task` into a temporary folder; the run folder's files come back in the
    result (``files``: name -> bytes), so the worker needs no file system in common with
    the machine that started the sweep."""
    with tempfile.TemporaryDirectory(prefix="scratchnet-sweep-") as tmp:
        result = run_task(payload, tmp, data_dir)
        run_dir = result.get("run_dir")
        if run_dir and Path(run_dir).is_dir():
            result["files"] = folder_files(run_dir)
            result["run_dir"] = Path(run_dir).name
    return result


def folder_files(run_dir: str | Path) -> dict[str, bytes]:
    """A run folder's files, name -> bytes, to send back from a remote worker (a sweep's
    run, a tune's trial); ``PlanFolder.materialize`` writes them where they belong."""
    return {p.name: files.read_bytes(p, files.MAX_CHECKPOINT_BYTES, "a run folder's file")
            for p in sorted(Path(run_dir).iterdir())
            if p.is_file() and not p.name.startswith(".")}

