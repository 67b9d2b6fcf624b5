"""``scratchnet sweep``, ``compare`` and ``plot``: many runs, side by side."""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from ..errors import ConfigError, DataError, ScratchnetError, WriteError
from ..constants import MAX_RUNS, SELECTABLE, SWEEP_STATE as STATE, WORKER_TIMEOUT
from .app import (EXIT_FAILURE, PLOT_PANEL, SEARCH_PANEL, app, cell, emit_json, err_console,
                  human_console, make_console, printable)
from .common import (DATA_DIR_HELP, MLFLOW_HELP, MLFLOW_URI_HELP, SET_HELP, config_flags,
                     data_dir_text, run_folder, tracking_overrides)

if TYPE_CHECKING:  # loaded when a command runs, so that --help starts at once
    from ..sweep import SweepFolder, SweepTable



class Executor(str, Enum):
    local = "local"
    dask = "dask"


EXECUTOR_HELP = "local: worker processes; dask: an existing Dask cluster (--address)."
ADDRESS_HELP = "The Dask scheduler, tcp://HOST:PORT (with --executor dask)."
WORKER_TIMEOUT_HELP = "How long a Dask cluster may have no workers before the {} stops."


def check_executor(executor: Executor, address: str | None) -> None:
    """--executor and --address, as sweep and tune take them."""
    if executor == Executor.dask and not address:
        raise ConfigError("--executor dask needs --address tcp://HOST:PORT of a running scheduler")
    if address and executor != Executor.dask:
        raise ConfigError("--address is for --executor dask")


def _mean_std(metric: str, stat: dict | None) -> str:
    if not stat or stat["mean"] is None:
        return "-"
    from ..compare import format_metric as _value

    text = _value(metric, stat["mean"])
    if stat["std"] is not None:
        text += f" ± {_value(metric, stat['std'])}"
    return text + ("%" if metric == "accuracy" else "")


def short_error(text: str | None, width: int = 90) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def sweep_tables(table: SweepTable, title: str, width: int) -> list:
    """One row per grid point (metrics as mean ± std over seeds, the best point's status
    marked), laid out for a terminal ``width`` wide by :func:`~scratchnet.cli.render.
    fitted_tables` (turned, points as columns, where the rows would not fit); then the
    caption, and each failed point's error on a line of its own."""
    from rich.text import Text
    from ..compare import METRIC_HEADERS as HEADERS
    from ..config.diff import show_value
    from ..nn.metrics import larger_is_better
    from .render import fitted_tables
    fields = [cell(table.names.get(k, k)) for k in table.keys] + ["runs"] + \
        [HEADERS.get(m, m) for m in table.metrics] + ["status"]
    cells = [[cell(show_value(r["overrides"][k])) for k in table.keys]
             + [f"{r['runs_ok']}/{r['runs']}"]
             + [_mean_std(m, r["metrics"].get(m)) for m in table.metrics]
             + [r["status"] + (" (best)" if r["best"] else "")] for r in table.rows]
    out = fitted_tables(title, [r["point"] for r in table.rows], fields, cells, width,
                        len(table.keys), what="point")
    larger = larger_is_better(table.best_by)
    out.append(Text(f"mean ± std over {table.seeds} seed{'s' if table.seeds != 1 else ''}; "
                    f"best: {'highest' if larger else 'lowest'} mean "
                    f"{HEADERS.get(table.best_by, table.best_by)}"))
    out += [Text(f"{r['point']}: {r['status']}: {printable(short_error(r['error'], 300))}")
            for r in table.rows if r["error"]]
    return out


def _grid_options(items: list[str] | None) -> dict[str, list]:
    from ..sweep import parse_grid_option
    grid: dict[str, list] = {}
    for item in items or []:
        key, values = parse_grid_option(item)
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid")
        grid[key] = values
    return grid


def _run_line(task, entry, done: int, total: int, labels: dict) -> str:
    from .render import fmt, pct
    s = entry.get("summary") or {}
    test = s.get("test") or {}
    if entry["status"] == "completed":
        what = (f"test accuracy {pct(test['accuracy'])}" if test.get("accuracy") is not None
                else f"test MAE {fmt(test.get('mae'))}" if test.get("mae") is not None
                else "completed")
        what = f"[green]{what}[/]"
    else:
        what = f"[red]{entry['status']}[/]: {cell(short_error(entry.get('error'), 120))}"
    return f"[{done}/{total}] {cell(labels[task.point])}, seed {task.seed}: {what}"


@app.command(rich_help_panel=SEARCH_PANEL)
@config_flags
def sweep(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="An experiment "
                                            "YAML file; its sweep: section (grid, seeds) is "
                                            "the default plan."),
    grid: Optional[List[str]] = typer.Option(
        None, "--grid", metavar="KEY=V1,V2,...",
        help="Values to try (repeatable; replaces the file's values for KEY)."),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", min=1, metavar="N", help="Runs per grid point, with seeds seed, "
        "seed+1, ... (default: the file's, else 1)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", min=1, metavar="N",
        help="Worker processes (default: the number of cores; 1 runs in this process)."),
    executor: Executor = typer.Option(Executor.local, "--executor", metavar="local|dask",
                                      help=EXECUTOR_HELP),
    address: Optional[str] = typer.Option(None, "--address", metavar="URL", help=ADDRESS_HELP),
    out: Path = typer.Option(Path("sweeps"), "--out", metavar="DIR",
                             help="Where sweep folders go."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", metavar="SWEEP_DIR",
        help="Continue the sweep in this sweep folder; finished runs are not run again."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    best_by: Optional[str] = typer.Option(
        None, "--best-by", metavar="METRIC",
        help=f"Metric that picks the best point: {', '.join(SELECTABLE)} (default: val_loss)."),
    json_out: bool = typer.Option(False, "--json",
                                  help="The results as JSON on stdout, nothing else."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or table."),
    mlflow: bool = typer.Option(False, "--mlflow", help=MLFLOW_HELP.format("sweep") + " Each "
                                "run is an MLflow run under one parent run for the sweep."),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", metavar="URI",
                                             help=MLFLOW_URI_HELP),
    max_runs: int = typer.Option(MAX_RUNS, "--max-runs", min=1, metavar="N", help="Refuse a "
                                 "plan of more than N runs (grid points x seeds)."),
    worker_timeout: float = typer.Option(WORKER_TIMEOUT, "--worker-timeout", min=0.1,
                                         metavar="SECONDS",
                                         help=WORKER_TIMEOUT_HELP.format("sweep")),
):
    """Train a grid of config values x seeds in parallel; table of mean ± std per point.

    Each run gets its own run folder under one sweep folder, which also holds the table as
    results.csv and results.json, and sweep.json, from which --resume continues."""
    if best_by is not None and best_by not in SELECTABLE:
        raise ConfigError(f"--best-by {best_by!r}: expected one of {', '.join(SELECTABLE)}")
    check_executor(executor, address)
    tracking = tracking_overrides(mlflow, mlflow_uri)
    if resume is not None and tracking:
        raise ConfigError(f"--resume logs to MLflow as the sweep did ({resume / STATE}); "
                          "leave out --mlflow and --mlflow-uri")
    with ExitStack() as stack:
        _sweep(stack, SweepArgs(config, grid, seeds, [*(overrides or []), *tracking], jobs,
                                executor, address, out, resume, data_dir, best_by, json_out,
                                quiet, max_runs, worker_timeout))


def _resume_command(folder: SweepFolder, executor: Executor, address: str | None) -> str:
    dask = f" --executor dask --address {shlex.quote(address)}" if executor == Executor.dask else ""
    return f"scratchnet sweep --resume {shlex.quote(str(folder.path))}{dask}"


@dataclass(frozen=True)
class SweepArgs:
    """What the sweep command was asked (its options, the tracking ones in overrides)."""

    config: Path | None
    grid: list[str] | None
    seeds: int | None
    overrides: list[str]
    jobs: int | None
    executor: Executor
    address: str | None
    out: Path
    resume: Path | None
    data_dir: Path | None
    best_by: str | None
    json_out: bool
    quiet: bool
    max_runs: int
    worker_timeout: float


def _sweep(stack, args: SweepArgs):
    from .signals import StopWorkers
    from .. import extras
    from ..sweep import SweepFolder, dask_client, run_sweep, summarize, write_results
    from ..config import load_config
    from .. import runs
    from ..config.diff import short_keys
    client = None
    if args.resume is not None:
        if args.config is not None or args.grid or args.seeds is not None or args.overrides:
            raise ConfigError(f"--resume takes the plan from {args.resume / STATE}; leave out "
                              "CONFIG, --grid, --seeds and --set")
        folder = SweepFolder.open(args.resume, args.max_runs)
        if args.executor == Executor.dask:
            client = stack.enter_context(dask_client(args.address))
    else:
        if args.config is None:
            raise ConfigError("sweep needs an experiment file (or --resume SWEEP_DIR)")
        runs.check_out_dir(args.out)
        cfg = load_config(args.config, args.overrides)
        grid_values = _grid_options(args.grid)
        extras.check(*(["dask"] if args.executor == Executor.dask else []),
                     *(["mlflow"] if cfg.tracking and cfg.tracking.mlflow else []))
        if args.executor == Executor.dask:  # first: an unreachable cluster leaves no folder
            client = stack.enter_context(dask_client(args.address))
        data_dir = str(args.data_dir) if args.data_dir else None
        folder = SweepFolder.create(args.out, cfg, grid_values, args.seeds, data_dir,
                                    args.max_runs)
    console = human_console(args.json_out, args.quiet)
    total = len(folder.tasks)
    labels = {p.id: p.label(short_keys(folder.state["grid"])) for p in folder.points}
    if not args.quiet:
        points, seeds = len(folder.points), folder.state["seeds"]
        err_console.print(f"sweep [bold]{cell(folder.state['name'] or '')}[/]: {points} "
                          f"point{'s' if points != 1 else ''} x {seeds} "
                          f"seed{'s' if seeds != 1 else ''} = {total} "
                          f"run{'s' if total != 1 else ''} in {cell(str(folder.path))}",
                          highlight=False, soft_wrap=True)
    finished = [sum(1 for t in folder.tasks if folder.result(t.key))]

    def on_result(task, entry):
        finished[0] = sum(1 for t in folder.tasks if folder.result(t.key))
        if not args.quiet:
            err_console.print(_run_line(task, entry, finished[0], total, labels), highlight=False,
                              soft_wrap=True)

    stop, failure = StopWorkers(), None
    try:
        with stop:
            progress = run_sweep(folder, jobs=args.jobs, executor=args.executor.value,
                                 client=client,
                                 data_dir=str(args.data_dir) if args.data_dir else None,
                                 on_result=on_result, worker_timeout=args.worker_timeout)
        if progress.skipped and not args.quiet:
            were = "s were" if progress.skipped != 1 else " was"
            err_console.print(f"{progress.skipped} run{were} already finished (not run again)",
                              highlight=False)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers are stopped by now
        folder.save()  # (a signal may have landed between recording a run and saving it)
    except ScratchnetError as e:  # a cluster left without workers, a full disk
        failure = e
    table = summarize(folder, args.best_by)
    try:
        csv_path, json_path = write_results(folder, table)
    except WriteError:
        if stop.signum is None and failure is None:
            raise
    if stop.signum is not None or failure is not None:
        what = (f"{finished[0]} of {total} runs finished and recorded in {folder.path}; "
                f"resume with: {_resume_command(folder, args.executor, args.address)}")
        if failure is not None:
            raise ScratchnetError(f"{failure}; {what}") from None
        err_console.print(f"interrupted: {what}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(stop.exit())
    if args.json_out:
        emit_json(table.to_dict())
    if console is not None:
        title = cell(f"sweep {folder.state['name']}: {folder.path}")
        for part in sweep_tables(table, title, console.width):
            console.print(part)
    if not args.quiet:
        err_console.print(f"results: {csv_path} and {json_path}", highlight=False, soft_wrap=True)
    if any(r["status"] != "ok" for r in table.rows):
        raise typer.Exit(EXIT_FAILURE)


@app.command(rich_help_panel=PLOT_PANEL)
def compare(
    paths: List[Path] = typer.Argument(..., metavar="FOLDER", help="Run folders (@last: "
                                       "the newest in runs/) and/or sweep folders."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout, nothing else."),
):
    """A table of runs: the config keys (and where they ran: environment.*) that differ
    between them, and their metrics."""
    from ..config.diff import differing_keys, flatten, short_keys, show_value
    from ..compare import (METRIC_HEADERS as HEADERS, compared, expand_paths,
                           format_metric as _value, in_config_order, read_run, run_metrics)
    from .render import fitted_tables, run_labels_short
    records = [read_run(d) for d in expand_paths(map(run_folder, paths))]
    keys = in_config_order(differing_keys([compared(r) for r in records]))
    names = short_keys(keys)
    metrics = run_metrics(records)
    if json_out:
        out = {"keys": keys, "runs": []}
        for r in records:
            flat = flatten(compared(r))
            out["runs"].append({"run_dir": r["run_dir"], "name": r["name"], "status": r["status"],
                                "config": {k: flat.get(k) for k in keys}, "metrics": r["metrics"]})
        emit_json(out)
        return
    title = f"{len(records)} run{'s' if len(records) != 1 else ''}" + \
        ("" if keys else " (identical configs)")
    fields = [names[k] for k in keys] + ["status"] + \
        [HEADERS[m] + (" (%)" if m == "accuracy" else "") for m in metrics]
    cells = []
    for r in records:
        flat = flatten(compared(r))
        cells.append([cell(show_value(flat.get(k, "-"))) for k in keys] + [cell(r["status"])]
                     + [_value(m, r["metrics"].get(m)) for m in metrics])
    console = make_console()
    labels = [cell(label) for label in run_labels_short([r["name"] for r in records])]
    for table in fitted_tables(title, labels, fields, cells, console.width, len(keys)):
        console.print(table)
    for label, r in zip(labels, records, strict=True):  # which folder each label is
        console.print(f"{label}: {cell(Path(r['run_dir']).name)}", highlight=False)


@app.command(rich_help_panel=PLOT_PANEL)
def plot(
    paths: List[Path] = typer.Argument(..., metavar="FOLDER", help="Run folders (@last: "
                                       "the newest in runs/) and/or sweep folders."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE",
                                          help="The PNG to write "
                                          "(default: curves.png in the run or sweep folder "
                                          "given alone, else in the current folder)."),
    confusion: bool = typer.Option(True, "--confusion/--no-confusion", help="For a single "
                                   "classification run, add its test confusion matrix."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP + " For the confusion matrix."),
    health: bool = typer.Option(False, "--health", help="Per-layer health instead (runs "
                                "trained with --health): dead, inactive and saturated units, "
                                "update ratios (default file: health.png)."),
    grad_flow: bool = typer.Option(False, "--grad-flow", help="The gradient flow instead (runs "
                                   "trained with --health): each layer's mean and largest "
                                   "|gradient| per evaluation (default file: grad-flow.png)."),
):
    """Learning curves of runs as a PNG (prints its path).

    Loss and validation accuracy (or MAE) per epoch, one line per run, labelled by the
    config keys that differ; a single classification run also gets its confusion matrix.
    With --health: each layer's dead units, inactive and saturated outputs and
    update-to-weight ratio per evaluation (and a recurrent layer's gradient by steps
    back and saturated gates). With --grad-flow: each layer's mean and largest |gradient|
    of its weights, one panel per run, to see where the signal dies."""
    from ..compare import expand_paths, read_run
    from .. import extras, runs
    if health and grad_flow:
        raise ConfigError("--health and --grad-flow draw different pictures; give one")
    extras.check("plot")
    paths = [run_folder(p) for p in paths]
    run_dirs = expand_paths(paths)
    name = runs.HEALTH_PLOT if health else runs.GRAD_FLOW_PLOT if grad_flow else runs.PLOT
    if output is None:
        if len(paths) == 1 and (paths[0] / STATE).is_file():
            output = paths[0] / name
        elif len(run_dirs) == 1:
            output = run_dirs[0] / name
        else:
            output = Path(name)
    from ..health_plots import grad_flow as draw_grad_flow, health_curves
    from ..plots import confusion_matrix_of, learning_curves

    if health or grad_flow:
        print((health_curves if health else draw_grad_flow)(run_dirs, output))
        return

    cm = False
    single = read_run(run_dirs[0]) if len(run_dirs) == 1 else {}
    if confusion and (single.get("summary") or {}).get("task") == "classification":
        try:  # the curves need no data; the confusion matrix does
            cm = confusion_matrix_of(run_dirs[0], data_dir_text(data_dir))
        except DataError as e:
            err_console.print(f"note: no confusion matrix without the test data ({cell(str(e))})",
                              highlight=False, soft_wrap=True)
    print(learning_curves(run_dirs, output, confusion=cm))
