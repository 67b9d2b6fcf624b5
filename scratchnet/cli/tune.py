"""``scratchnet tune``: hyperparameter search with Optuna over a config's values."""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from ..errors import ConfigError, ScratchnetError
from ..constants import (HIGHER_IS_BETTER, MAX_RUNS, TUNE_DIRECTIONS, TUNE_FORMS as FORMS,
                         TUNE_METRICS, TUNE_PRUNERS, TUNE_SAMPLERS, TUNE_STATE as STATE,
                         WORKER_TIMEOUT)
from .app import EXIT_FAILURE, SEARCH_PANEL, app, cell, emit_json, err_console, human_console
from .common import DATA_DIR_HELP, SET_HELP, config_flags, data_dir_text
from .sweep import ADDRESS_HELP, EXECUTOR_HELP, WORKER_TIMEOUT_HELP, Executor, check_executor

if TYPE_CHECKING:  # loaded when a command runs, so that --help starts at once
    from rich.table import Table

    from ..tune import TuneFolder, TuneTable


def _choices(setting: str, values: tuple[str, ...]) -> type[Enum]:
    """The values the schema allows for a ``tune:`` setting, as a Typer choice."""
    return Enum(setting.title(), {v: v for v in values}, type=str)


Metric, Direction, Pruner, Sampler = (_choices(s, v) for s, v in (
    ("metric", TUNE_METRICS), ("direction", TUNE_DIRECTIONS), ("pruner", TUNE_PRUNERS),
    ("sampler", TUNE_SAMPLERS)))
SPACE_HELP = (f"A key to search and how: {', '.join(FORMS.values())} (repeatable; replaces "
              "the file's distribution for KEY).")
#: options that make a new plan, refused with --resume (which continues the stored one)
PLAN_OPTIONS = ("CONFIG", "--space", "--set", "--metric", "--direction", "--pruner",
                "--sampler", "--seed", "--storage")


def _space_options(items: list[str] | None) -> tuple[dict, dict]:
    from ..tune import parse_space_option
    space, origins = {}, {}
    for item in items or []:
        key, spec = parse_space_option(item)
        if key in space:
            raise ConfigError(f"--space {key} is given twice; give each key one distribution")
        space[key], origins[key] = spec, f"--space {item}"
    return space, origins


def _show(v) -> str:
    from ..config.diff import show_value
    return f"{v:.4g}" if isinstance(v, float) else show_value(v)


def _metric(metric: str, value) -> str:
    from .render import fmt, pct
    return pct(value) if metric == "accuracy" and value is not None else fmt(value)


def _trial_line(row: dict, done: int, total: int, names: dict, metric: str) -> str:
    from .sweep import short_error
    values = ", ".join(f"{names.get(k, k)}={_show(v)}" for k, v in row["params"].items())
    header = metric.replace("_", " ")
    if row["status"] == "completed":
        what = f"[green]{header} {_metric(metric, row['value'])}[/]"
    elif row["status"] == "pruned":
        what = (f"[yellow]pruned at epoch {row['epochs']}[/] "
                f"({header} {_metric(metric, row['value'])})")
    else:
        what = f"[red]{row['status']}[/]: {cell(short_error(row['error'], 120))}"
    return f"[{done}/{total}] trial {row['trial']}: {cell(values)}: {what}"


def tune_table(table: TuneTable, title: str, top: int) -> Table:
    """The best ``top`` trials, the best in bold green; each value and how it ended."""
    from rich.table import Table
    from .render import fmt
    from .sweep import short_error
    from ..config.diff import short_keys
    names = short_keys(table.keys)
    t = Table(title=title)
    t.add_column("trial", justify="right")
    for k in table.keys:
        t.add_column(cell(names[k]))
    t.add_column(table.metric.replace("_", " "), justify="right")
    t.add_column("epochs", justify="right")
    t.add_column("status")
    for row in table.rows[:top]:
        status = row["status"] + (f": {short_error(row['error'])}" if row["error"] else "")
        t.add_row(str(row["trial"]), *[cell(_show(row["params"].get(k, "-"))) for k in table.keys],
                  _metric(table.metric, row["value"]), fmt(row["epochs"]), cell(status),
                  style="bold green" if row is table.best else None)
    counts = ", ".join(f"{n} {s}" for s, n in table.counts.items() if n)
    shown = f"; the best {top} shown" if len(table.rows) > top else ""
    best = "highest" if table.direction == "maximize" else "lowest"
    t.caption = (f"{counts}{shown}; best: {best} "
                 f"{table.metric.replace('_', ' ')} (the best over each trial's evaluations)")
    return t


def importance_table(importances: dict[str, float]) -> Table:
    from rich.table import Table
    t = Table(title="parameter importances (fANOVA)")
    t.add_column("parameter")
    t.add_column("importance", justify="right")
    for key, value in sorted(importances.items(), key=lambda kv: -kv[1]):
        t.add_row(cell(key), f"{value:.3f}")
    return t


@app.command(rich_help_panel=SEARCH_PANEL)
@config_flags
def tune(
    config: Optional[Path] = typer.Argument(None, metavar="CONFIG", help="An experiment YAML "
                                            "file; its tune: section is the default plan."),
    space: Optional[List[str]] = typer.Option(
        None, "--space", metavar="KEY=DISTRIBUTION", help=SPACE_HELP),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", min=1, help="Trials in the "
                                         "study (default: the file's, else 20); with --resume, "
                                         "the new total."),
    metric: Optional[Metric] = typer.Option(None, "--metric", help="The objective: the best "
                                            "value of this validation metric (default: val_loss)."),
    direction: Optional[Direction] = typer.Option(None, "--direction", help="Default: maximize "
                                                  f"{HIGHER_IS_BETTER}, minimize the others."),
    pruner: Optional[Pruner] = typer.Option(None, "--pruner", help="Stops poor trials at an "
                                            "evaluation (default: median)."),
    sampler: Optional[Sampler] = typer.Option(None, "--sampler", help="How trials are chosen "
                                              "(default: tpe)."),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="N", help="Seeds the sampler: "
                                       "same seed, same trials (the trials' own seed: --set "
                                       "seed=N)."),
    storage: Optional[str] = typer.Option(
        None, "--storage", metavar="URL",
        help="The study's optuna storage (default: sqlite:///<tune folder>/study.db)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, metavar="N",
                             help="Worker processes sharing the study (--executor local)."),
    executor: Executor = typer.Option(Executor.local, "--executor", metavar="local|dask",
                                      help=EXECUTOR_HELP),
    address: Optional[str] = typer.Option(None, "--address", metavar="URL", help=ADDRESS_HELP),
    worker_timeout: float = typer.Option(WORKER_TIMEOUT, "--worker-timeout", min=0.1,
                                         metavar="SECONDS",
                                         help=WORKER_TIMEOUT_HELP.format("tune")),
    out: Path = typer.Option(Path("tunes"), "--out", metavar="DIR", help="Where tune folders go."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="TUNE_DIR",
                                          help="Continue the study in this "
                                          "tune folder (its finished trials count)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    top: int = typer.Option(10, "--top", min=1, help="Rows in the table of the best trials."),
    json_out: bool = typer.Option(False, "--json",
                                  help="The results as JSON on stdout, nothing else."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or tables."),
    max_runs: int = typer.Option(MAX_RUNS, "--max-runs", min=1, metavar="N",
                                 help="Refuse a study of more than N trials."),
):
    """Search hyperparameters with Optuna: each trial a run, poor ones pruned early.

    Trials run under one tune folder, whose study (SQLite by default) a stopped search
    resumes from; the end is a table of the best trials, the parameter importances and
    best.yaml, the best trial's config, which `scratchnet train` runs."""
    from ..tune import TuneFolder, create
    from ..config import load_config
    from ..sweep import dask_client
    from .. import extras, runs
    extras.check("tune", *(["dask"] if executor == Executor.dask else []))
    data = data_dir_text(data_dir)
    check_executor(executor, address)
    with ExitStack() as stack:
        if resume is not None:
            given = [config, space, overrides, metric, direction, pruner, sampler, seed, storage]
            if any(v is not None and v != [] for v in given):
                raise ConfigError(f"--resume takes the plan from {resume / STATE}; leave out "
                                  f"{', '.join(PLAN_OPTIONS)} (--trials sets a new total)")
            folder = TuneFolder.open(resume)
        else:
            if config is None:
                raise ConfigError("tune needs an experiment file (or --resume TUNE_DIR)")
            runs.check_out_dir(out)
            cfg = load_config(config, overrides)
            extras.check(*(["mlflow"] if cfg.tracking and cfg.tracking.mlflow else []))
            values, origins = _space_options(space)
        # before a new folder: an unreachable cluster leaves none
        if address:
            from ..tune.cluster import require_grpc
            require_grpc()
        client = stack.enter_context(dask_client(address)) if address else None
        if resume is None:
            folder = create(out, cfg, values, origins=origins, data_dir=data, source=str(config),
                            trials=trials, metric=metric and metric.value,
                            direction=direction and direction.value,
                            pruner=pruner and pruner.value, sampler=sampler and sampler.value,
                            seed=seed, storage=storage, max_runs=max_runs)
        where = f"on the Dask cluster at {address}" if client is not None else \
            f"{jobs} process{'es' if jobs != 1 else ''}"
        resume_line = f"scratchnet tune --resume {shlex.quote(str(folder.path))}" + (
            f" --executor dask --address {shlex.quote(address)}" if client is not None else "")
        _run(folder, trials if resume is not None else None, jobs, data, top, json_out, quiet,
             max_runs, dict(client=client, worker_timeout=worker_timeout), where, resume_line)


def _run(folder: TuneFolder, trials, jobs, data_dir, top, json_out, quiet, max_runs, cluster,
         where, resume_line) -> None:
    from .signals import StopWorkers
    from ..tune import OUTCOMES, finished, run_study, summarize, trial_row
    from ..config.diff import short_keys
    s = folder.state
    names = short_keys([d.key for d in folder.space])
    total = trials or s["trials"]
    from ..tune import load_study

    done = [len(finished(load_study(folder)))]
    if not quiet:
        what = (f"{done[0]} of {total} trials finished" if done[0]
                else f"{total} trial{'s' if total != 1 else ''}")
        err_console.print(f"tune [bold]{cell(s['name'])}[/]: {what}, {s['metric']} "
                          f"{s['direction']}d, {s['pruner']} pruner, {where}, in "
                          f"{cell(str(folder.path))}", highlight=False, soft_wrap=True)
        if done[0] >= total:
            err_console.print(f"the study already has its {total} trials; none run (raise the "
                              "total with --trials N)", highlight=False, soft_wrap=True)

    def on_trial(trial):
        row = trial_row(folder, trial)
        if row["status"] == "interrupted":
            return
        done[0] += row["status"] in OUTCOMES  # a trial lost with its worker does not count
        if not quiet:
            err_console.print(_trial_line(row, done[0], total, names, s["metric"]),
                              highlight=False, soft_wrap=True)

    stop = StopWorkers()
    try:
        with stop:
            study = run_study(folder, trials=trials, jobs=jobs, data_dir=data_dir,
                              on_trial=on_trial, max_runs=max_runs, **cluster)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers are stopped by now
        done[0] = len(finished(load_study(folder)))  # workers may have finished unreported ones
        err_console.print(f"interrupted: {done[0]} of {total} trials finished; resume with: "
                          f"{resume_line}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(stop.exit()) from None
    except ScratchnetError as e:  # a cluster without workers (a bad config needs no resume)
        if isinstance(e, ConfigError):
            raise
        done[0] = len(finished(load_study(folder)))
        raise ScratchnetError(f"{e}; {done[0]} of {total} trials finished in {folder.path}; "
                              f"resume with: {resume_line}") from None
    table = summarize(folder, study)
    if json_out:
        emit_json(table.to_dict())
    console = human_console(json_out, quiet)
    if console is not None:
        console.print(tune_table(table, f"tune {s['name']}: {folder.path}", top))
        if table.importances:
            console.print(importance_table(table.importances))
    if not quiet:
        for note in table.notes:
            err_console.print(f"note: {cell(note)}", highlight=False, soft_wrap=True)
        if table.best_config is not None:
            err_console.print(f"best config: {table.best_config}; train it with: scratchnet "
                              f"train {table.best_config}", highlight=False, soft_wrap=True)
    if table.best is None:
        err_console.print("[bold red]error:[/] no trial completed, so there is no best config",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE)
