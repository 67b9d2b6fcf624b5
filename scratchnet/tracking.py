"""Experiment tracking with MLflow (the optional extra ``scratchnet-dlfs[mlflow]``).

A run is logged as one MLflow run: the resolved config flattened to dotted params, every
epoch's training loss and every evaluation's metrics with ``step=epoch``, the test metrics at
the end, the config hash and scratchnet's version as tags, and the run folder's files as
artifacts. A sweep's runs are nested under one parent run. The default store is a SQLite
database beside the run folders (``sqlite:///<runs folder>/mlflow.db``, with artifacts in
``mlartifacts/`` next to it), which ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``
opens.

Tracking never costs a training run: the first MLflow error (a bad URI, an unwritable
database, a server that is down) becomes one :class:`~scratchnet.errors.ScratchnetWarning`
and turns the tracker off; the run goes on and its folder is complete either way. A SQLite
store is looked at before MLflow opens it (:func:`check_sqlite_store`): a FIFO, a folder
that cannot be written or someone else's database is refused, never written into. No MLflow
call may hold training up for more than :data:`TIMEOUT` seconds, and MLflow's own logging
and warnings are kept quiet. ``mlflow`` is imported only when tracking is on.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from contextlib import closing
from pathlib import Path

from . import __version__, files, runs
from .config import config_digest, flatten
from .config.diff import show_value
from .errors import ScratchnetError, ScratchnetWarning
from .extras import require
from .nn import Callback

DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
#: config sections that say how a run is driven or watched, not what it learns
NOT_PARAMS = ("tracking", "tune", "sweep")
#: a run folder's status -> the MLflow run's
STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "pruned": "KILLED"}
TAG = "scratchnet."
#: seconds any one MLflow call (connecting, which creates a new store's tables, included)
#: may take before tracking is given up on; ``$SCRATCHNET_TRACKING_TIMEOUT`` overrides it
TIMEOUT = 60.0
#: tables every MLflow SQL store has: a database without them is not one
MLFLOW_TABLES = frozenset({"alembic_version", "experiments", "runs"})
_SQLITE_MAGIC = b"SQLite format 3\x00"


def default_uri(folder: str | Path) -> str:
    """``sqlite:///<folder>/mlflow.db``, absolute (so it does not depend on the cwd)."""
    return f"sqlite:///{Path(folder).resolve() / DATABASE}"


def artifact_location(uri: str) -> str | None:
    """Beside a SQLite database, ``<its folder>/mlartifacts``; MLflow would otherwise put
    the artifacts of a new experiment in ``./mlruns`` of whatever folder it runs in. A
    server decides for itself (None)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / ARTIFACTS).as_uri()


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (None for any other store, and for memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def check_sqlite_store(path: Path) -> None:
    """Refuse (a ScratchnetError naming ``path``) a SQLite store MLflow should not open:
    anything but a regular file (a FIFO would hang it), a file that is not SQLite, a
    SQLite database of someone else's (it has tables, but not MLflow's: MLflow would add
    its own hundred to it), or a place this process cannot write. Looks read-only and
    creates nothing but the missing folders MLflow would create too."""
    import sqlite3
    import tempfile

    what = "an MLflow SQLite store"
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # SQLite writes its journal beside the file
    except OSError as e:
        raise ScratchnetError(f"{path}: its folder cannot be written ({e.strerror or e}); "
                              f"expected {what}") from None
    if not os.path.lexists(path):
        return
    with files.open_regular(path, float("inf"), what, ScratchnetError) as f:
        head = f.read(len(_SQLITE_MAGIC))
    if not head:
        return  # an empty file is an empty database
    if head != _SQLITE_MAGIC:
        raise ScratchnetError(f"{path}: not a SQLite database; expected {what}")
    if not os.access(path, os.W_OK):
        raise ScratchnetError(f"{path}: cannot be written (permission denied); expected {what}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=5)) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as e:
        raise ScratchnetError(f"{path}: cannot be read as SQLite ({e}); expected {what}") from None
    if tables and not MLFLOW_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ScratchnetError(f"{path}: a SQLite database that is not an MLflow store (its "
                              f"tables: {shown}); scratchnet does not write into it. Name a "
                              "new file, or an MLflow store")


def bounded(fn, seconds: float):
    """``fn()`` on a daemon thread, waited for at most ``seconds``: its result, or its
    exception, or TimeoutError (the thread is left to finish or hang on its own, and
    never holds the process open)."""
    done: dict = {}

    def target():
        try:
            done["value"] = fn()
        except BaseException as e:  # handed to the caller
            done["error"] = e

    thread = threading.Thread(target=target, name="scratchnet-mlflow", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in done:
        raise done["error"]
    return done.get("value")


def quiet_mlflow() -> None:
    """MLflow's log lines (tables being created, retries) and its libraries' warnings off:
    the one warning a failure makes says what matters."""
    for name in ("mlflow", "mlflow.store.db.utils", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"(mlflow|alembic|sqlalchemy)(\.|$)")


class Tracker:
    """One MLflow tracking store and experiment. Every call is guarded: the first failure
    is one warning and turns the tracker off (later calls do nothing)."""

    def __init__(self, uri: str, experiment: str):
        from .data.download import env_seconds

        self.mlflow = require("mlflow")
        self.uri, self.experiment = uri, experiment
        self.timeout = env_seconds("SCRATCHNET_TRACKING_TIMEOUT", TIMEOUT)
        self.client = None
        self.experiment_id: str | None = None
        self.failed = False

    @classmethod
    def of(cls, settings: dict, runs_folder: str | Path, experiment: str) -> "Tracker":
        """From a config's ``tracking:`` section (``uri``, ``experiment``), defaulting to
        the database in ``runs_folder`` and the experiment name ``experiment``."""
        return cls(settings.get("uri") or default_uri(runs_folder),
                   settings.get("experiment") or experiment)

    def guard(self, what: str, fn):
        """``fn()`` (connected first), or None and one warning when MLflow fails or takes
        more than ``timeout`` seconds."""
        if self.failed:
            return None
        doing = what
        try:
            if self.client is None:
                doing = "connecting"
                bounded(self._connect, self.timeout)
                doing = what
            return bounded(fn, self.timeout)
        except Exception as e:  # anything MLflow, SQLAlchemy or the network raise
            self.failed = True
            detail = " ".join(str(e).split())
            detail = detail if len(detail) <= 200 else detail[:197] + "..."
            if not isinstance(e, ScratchnetError):  # ours say what they are
                detail = f"{type(e).__name__}: {detail}"
            warnings.warn(f"MLflow tracking ({self.uri}) failed while {doing}: {detail}; not "
                          "tracking from here on (the run folder has everything)",
                          ScratchnetWarning, stacklevel=3)
            return None

    def _connect(self) -> None:
        # A training run should not wait minutes for a server that is down (MLflow retries
        # 7 times with backoff by default); settings the user made win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        quiet_mlflow()
        database = sqlite_path(self.uri)
        if database is not None:
            check_sqlite_store(database)
        client = self.mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            try:
                self.experiment_id = client.create_experiment(
                    self.experiment, artifact_location=artifact_location(self.uri))
            except Exception:  # another process created it meanwhile
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
                self.experiment_id = found.experiment_id
        self.client = client

    # -- runs --
    def create_run(self, name: str, tags: dict, parent_run_id: str | None = None) -> str | None:
        def create():
            all_tags = {**tags, **({"mlflow.parentRunId": parent_run_id} if parent_run_id else {})}
            return self.client.create_run(self.experiment_id, run_name=name,
                                          tags=all_tags).info.run_id
        return self.guard("creating a run", create)

    def find_run(self, tag: str, value: str) -> str | None:
        """The run whose tag ``tag`` is ``value`` (a resumed run continues its MLflow run)."""
        if "'" in value:
            return None

        def find():
            found = self.client.search_runs([self.experiment_id], max_results=1,
                                            filter_string=f"tags.`{tag}` = '{value}'")
            return found[0].info.run_id if found else None
        return self.guard("looking for the run", find)

    def reopen(self, run_id: str) -> None:
        self.guard("reopening the run", lambda: self.client.update_run(run_id, status="RUNNING"))

    def end_run(self, run_id: str | None, status: str = "FINISHED") -> None:
        if run_id is not None:
            self.guard("ending the run", lambda: self.client.set_terminated(run_id, status=status))

    def log(self, run_id: str | None, params: dict | None = None, metrics: list | None = None,
            tags: dict | None = None, step: int = 0) -> None:
        """Params (values shortened to MLflow's limit), metrics as ``[(key, value,
        step)]`` (non-finite values left out) and tags, in batches of MLflow's size."""
        if run_id is None:
            return
        from mlflow.entities import Metric, Param, RunTag

        limit = _param_limit()
        now = int(time.time() * 1000)
        items = ([Param(k, _shorten(show_value(v), limit)) for k, v in (params or {}).items()],
                 [Metric(k, float(v), now, int(s)) for k, v, s in metrics or []
                  if isinstance(v, (int, float)) and math.isfinite(v)],
                 [RunTag(k, str(v)) for k, v in (tags or {}).items()])
        for kind, batch in zip(("params", "metrics", "tags"), items, strict=True):
            size = 1000 if kind == "metrics" else 100
            for i in range(0, len(batch), size):
                chunk = {kind: batch[i:i + size]}
                # chunk bound now: a batch that times out may still run after the loop moved on
                self.guard(f"logging {kind}",
                           lambda chunk=chunk: self.client.log_batch(run_id, **chunk))

    def log_artifacts(self, run_id: str | None, folder: Path) -> None:
        if run_id is not None:
            self.guard("logging the run folder's files",
                       lambda: self.client.log_artifacts(run_id, str(folder)))


def _param_limit() -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return 500  # MLflow's limit before 2.x
    return MAX_PARAM_VAL_LENGTH


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_params(config: dict) -> dict:
    """The resolved config as dotted params, without the sections that only drive runs."""
    return flatten({k: v for k, v in config.items() if k not in NOT_PARAMS})


#: the numbers of a layer's health entry logged as metrics (``train.health``)
HEALTH_NUMBERS = ("mean", "std", "dead", "inactive", "saturated")


def evaluation_metrics(record: dict) -> list[tuple[str, float, int]]:
    """An evaluation record's numbers as ``(key, value, step=epoch)``; its per-layer
    health as ``health.layers.<i>.<number>`` and ``health.layers.<i>.<param>.<number>``
    (``health.layers.0.W.update_ratio``), so MLflow draws each layer's curve."""
    epoch = record["epoch"]
    out = [(k, v, epoch) for k, v in record.items() if k not in ("epoch", "health")]
    for entry in record.get("health") or []:
        layer = f"health.layers.{entry['layer']}"
        out += [(f"{layer}.{k}", entry[k], epoch) for k in HEALTH_NUMBERS]
        out += [(f"{layer}.{name}.{k}", v, epoch) for name, numbers in entry["params"].items()
                for k, v in numbers.items()]
    return out


class RunTracker(Callback):
    """Logs one run folder to MLflow: :meth:`start` when its folder exists, every epoch
    as it ends (its training loss; an evaluation's numbers too: a trainer callback), and
    :meth:`finish` at the end."""

    def __init__(self, tracker: Tracker, parent_run_id: str | None = None):
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.run_id: str | None = None
        self.run_dir: Path | None = None

    def start(self, run_dir: str | Path, config: dict) -> None:
        self.run_dir = Path(run_dir).resolve()
        t = self.tracker
        self.run_id = t.find_run(TAG + "run_dir", str(self.run_dir))
        if self.run_id is not None:  # a resumed run: its params are logged already
            t.reopen(self.run_id)
            return
        self.run_id = t.create_run(self.run_dir.name, {
            TAG + "run_dir": str(self.run_dir), TAG + "config_hash": config_digest(config),
            TAG + "version": __version__}, self.parent_run_id)
        t.log(self.run_id, params=run_params(config))

    def on_epoch_end(self, trainer, epoch):  # every epoch's loss, evaluations' numbers
        self.tracker.log(self.run_id, metrics=evaluation_metrics(trainer.history.last_row()))

    def finish(self) -> None:
        """The test metrics, the status and the folder's files, read from the folder."""
        if self.run_id is None:
            return
        path = self.run_dir / runs.SUMMARY
        summary = runs.read_json(path) if path.is_file() else {}
        status = summary.get("status", "failed")
        step = summary.get("epochs_run") or 0
        final = [(f"test_{k}", v, step) for k, v in (summary.get("test") or {}).items()]
        if summary.get("best_val_loss") is not None:
            final.append(("best_val_loss", summary["best_val_loss"], step))
        self.tracker.log(self.run_id, metrics=final, tags={TAG + "status": status})
        self.tracker.log_artifacts(self.run_id, self.run_dir)
        self.tracker.end_run(self.run_id, STATUS.get(status, "FAILED"))

    def record(self, run_dir: str | Path) -> None:
        """Log a run folder that has already finished (a sweep's runs, as they come back)."""
        self.start(run_dir, runs.read_run_config(run_dir))
        metrics = [m for r in runs.read_metrics(run_dir) for m in evaluation_metrics(r)]
        self.tracker.log(self.run_id, metrics=metrics)
        self.finish()


class PlanTracking:
    """Many runs planned together (a sweep, a tune), tracked from the process that plans
    them: one MLflow experiment named after the folder, one parent run (its id kept in
    the folder's state, so a resumed plan logs under it again), and each finished run
    logged under it from its run folder as it comes back. Worker processes never log: no
    two processes race on one SQLite file, and remote workers need no MLflow.

    ``folder`` has ``path``, ``state`` (``state["tracking"]``: the settings, None when
    untracked, when every method does nothing) and ``save()``."""

    def __init__(self, tracker: Tracker | None = None, parent: str | None = None):
        self.tracker, self.parent = tracker, parent

    @classmethod
    def open(cls, folder, params: dict) -> "PlanTracking":
        settings = folder.state.get("tracking")
        if not settings:
            return cls()
        tracker = Tracker.of(settings, folder.path.parent, folder.path.name)
        parent = settings.get("parent_run_id")
        if parent is not None:
            tracker.reopen(parent)
            return cls(tracker, parent)
        parent = tracker.create_run(folder.path.name, {TAG + "folder": str(folder.path.resolve()),
                                                       TAG + "version": __version__})
        tracker.log(parent, params=params)
        if parent is not None:
            settings["parent_run_id"] = parent
            folder.save()
        return cls(tracker, parent)

    def record(self, run_dir: Path | None) -> None:
        if self.tracker is not None and run_dir is not None and Path(run_dir).is_dir():
            RunTracker(self.tracker, self.parent).record(run_dir)

    def close(self, status: str = "FINISHED") -> None:
        if self.tracker is not None:
            self.tracker.end_run(self.parent, status)


def tracked_settings(config: dict) -> dict | None:
    """Take the ``tracking`` section out of a plan's base config (its runs are logged by
    :class:`PlanTracking`, not by themselves): the settings when tracking is on, else None."""
    settings = config.pop("tracking", None)
    return settings if settings and settings.get("mlflow") else None
