"""``scratchnet train`` and ``scratchnet eval``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional

import typer

from ..constants import WEIGHTS_RULE
from ..errors import ConfigError, DataError, DivergenceError
from .app import EXIT_FAILURE, app, cell, emit_json, err_console, human_console, make_console

SET_HELP = "Override a config value: --set model.layers.0.neurons=128 (repeatable)."
MLFLOW_HELP = ("Log to MLflow (extra 'mlflow'), by default to the SQLite database mlflow.db "
               "beside the {} folders; the same as --set tracking.mlflow=true.")
MLFLOW_URI_HELP = "Log to MLflow at this tracking URI (implies --mlflow)."


def tracking_overrides(mlflow: bool, mlflow_uri: str | None) -> list[str]:
    """``--mlflow`` and ``--mlflow-uri URI`` as the ``--set`` overrides they stand for.

    (Two options rather than one with an optional value: Typer has no optional option
    values, so ``--mlflow`` alone would be an error and ``--mlflow --quiet`` would take
    ``--quiet`` for the URI.)"""
    out = ["tracking.mlflow=true"] if mlflow or mlflow_uri is not None else []
    if mlflow_uri is not None:
        out.append(f"tracking.uri={json.dumps(mlflow_uri)}")  # a YAML string, whatever it holds
    return out


def _loading(cfg, plan) -> str:
    """What the header says is about to load: ``loading mnist (60,000 + 10,000 images of
    1 x 28 x 28)``, so a long data load is not a silent wait."""
    data = getattr(plan, "data", None)
    if data is None:
        return f"loading {cell(cfg.data.dataset)}"
    each = f"images of {' x '.join(map(str, data.sample_shape))}" if data.sample_shape else \
        f"rows of {data.n_features:,} features"
    return f"loading {cell(data.name)} ({data.n_train:,} + {data.n_test:,} {each})"


def _header(console, cfg, plan) -> None:
    """``training NAME: 2 layers, 8 epochs; loading ...`` on one line, or broken after
    the ``;`` where the terminal is narrower than that (rather than in a word)."""
    name = f"training {cfg.name}"
    what = f": {len(cfg.model.layers)} layers, {cfg.train.epochs} epochs;"
    loading = _loading(cfg, plan)
    apart = "\n" if len(name + what) + 1 + len(loading) > console.width else " "
    console.print(f"[bold]{cell(name)}[/]{what}{apart}{loading}", highlight=False)


def _plan_or_failure(cfg, data_dir: Path | None):
    from ..experiment import plan_experiment
    try:
        return plan_experiment(cfg, str(data_dir) if data_dir else None)
    except DataError as e:
        return e


@app.command()
def train(
    configs: Optional[List[Path]] = typer.Argument(
        None, help="Experiment YAML files, trained in turn (none with --resume: the run "
        "folder holds its config)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
    out: Path = typer.Option(Path("runs"), "--out", help="Where run folders go."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per run on stdout, nothing else."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or tables."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding data sets (e.g. <dir>/mnist/)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this "
                                          "run folder (with a larger train.epochs: extend it "
                                          "into a new one)."),
    plot: bool = typer.Option(False, "--plot", help="Write learning curves (curves.png) into each run folder."),
    health: bool = typer.Option(False, "--health", help="Record and print every layer's "
                                "health at each evaluation (the same as --set train.health=true)."),
    mlflow: bool = typer.Option(False, "--mlflow", help=MLFLOW_HELP.format("run")),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", metavar="URI", help=MLFLOW_URI_HELP),
):
    """Train each experiment, writing a run folder for each."""
    from .render import (ConsoleReporter, DownloadBar, comparison_table, kept_weights,
                         summary_table)
    from .signals import GracefulStop
    from ..config import load_config
    import numpy as np
    from .. import runs
    from ..experiment import train_experiment
    runs.check_out_dir(out)
    overrides = [*(overrides or []), *tracking_overrides(mlflow, mlflow_uri),
                 *(["train.health=true"] if health else [])]
    configs = list(configs or [])
    if resume is not None and len(configs) > 1:
        raise ConfigError("--resume continues one run; give at most one config")
    if resume is not None and not configs:
        runs.read_run_config(resume)  # a clear error for what is not a run folder
        configs = [resume / runs.CONFIG]
    if not configs:
        raise ConfigError("Missing argument 'CONFIGS...': train needs an experiment file "
                          "(or --resume RUN_DIR)")
    # Every config is checked, and planned, before any training starts; a data file that
    # cannot be read fails that experiment alone, as it would while running.
    cfgs = [load_config(path, overrides) for path in configs]
    plans = [_plan_or_failure(cfg, data_dir) for cfg in cfgs]
    console = human_console(json_out, quiet)
    summaries, failed = [], False
    for cfg, plan in zip(cfgs, plans):
        download = DownloadBar(err_console)
        stop = GracefulStop(download)
        reporter = None if console is None else ConsoleReporter(console, cfg.name)
        if console is not None:
            _header(console, cfg, plan)
        try:
            if isinstance(plan, DataError):
                raise plan
            # A diverging run is reported as one line (DivergenceError), not as NumPy's
            # overflow/invalid-value warnings on the way there.
            with stop, download, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                def on_start(trainer, run_dir, _cfg=cfg):
                    stop.attach(trainer, run_dir)
                    if resume is not None and Path(run_dir) != resume:
                        err_console.print(f"extending {resume} to {_cfg.train.epochs} epochs in "
                                          f"a new run folder, {run_dir}", markup=False,
                                          highlight=False, soft_wrap=True)
                    if reporter is not None:
                        trainer.callbacks.append(reporter)
                try:
                    result = train_experiment(cfg, out=out, data_dir=str(data_dir) if data_dir
                                              else None, resume=resume, on_start=on_start,
                                              progress=download, plan=plan)
                finally:  # before any message: a failed or stopped run leaves no bar behind
                    if reporter is not None:
                        reporter.close()
        except KeyboardInterrupt:  # GracefulStop stopped a download: no run folder yet
            if stop.signum is None:
                raise
            err_console.print(f"interrupted while downloading {download.current}: nothing was "
                              "saved (no partial file, no run folder)", markup=False,
                              highlight=False, soft_wrap=True)
            raise typer.Exit(stop.exit_code) from None
        except (DivergenceError, DataError) as e:
            failed = True
            err_console.print(f"[bold red]error:[/] {cell(f'{cfg.name}: {e}')}", markup=True,
                              highlight=False, soft_wrap=True)
            status = "diverged" if isinstance(e, DivergenceError) else "failed"
            summaries.append({"name": cfg.name, "status": status})  # a row in the comparison
            if json_out:
                emit_json({"name": cfg.name, "status": status, "error": str(e)})
            continue
        summary = result.summary
        summaries.append(summary)
        if plot:
            from .tools import write_curves
            write_curves([result.run_dir], result.run_dir / runs.PLOT)
        if json_out:
            emit_json(summary)
        if console is not None:
            console.print(summary_table(summary))
        if result.status == "interrupted":
            err_console.print(f"interrupted: weights ({kept_weights(summary)}), checkpoint "
                              f"and metrics saved in {result.run_dir}\n"
                              "resume with: scratchnet train --resume "
                              f"{shlex.quote(str(result.run_dir))}",
                              highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(stop.exit_code)
    if console is not None and len(cfgs) > 1 and summaries:
        console.print(comparison_table(summaries))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


@app.command("eval", help=f"Evaluate a run's weights on the test split. The weights: "
             f"{WEIGHTS_RULE}.")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run folder written by `scratchnet train`."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing else."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding data sets."),
    proba: int = typer.Option(0, "--proba", "--top-k", min=0, metavar="K", help="Also give the K "
                              "most probable classes of test examples (as predict does)."),
    examples: int = typer.Option(10, "--examples", min=1, metavar="N", help="How many test "
                                 "examples --proba shows (the first N)."),
):
    from ..experiment import evaluate_run, load_run
    from .render import fmt, pct
    from ..predict import top_classes
    loaded = cfg, _, info, _ = load_run(run_dir)  # (it warns of a config edited since)
    report = evaluate_run(run_dir, str(data_dir) if data_dir else None, loaded)
    result = {"name": cfg.name, "run_dir": str(run_dir), "task": info["task"],
              "test": report.scores}
    if report.task == "classification":
        result["confusion_matrix"] = report.confusion_matrix().tolist()
        result["per_class"] = report.per_class()
        if proba and report.probabilities is not None:
            classes = info["classes"]
            k = min(proba, len(classes))
            result["examples"] = [
                {"index": i, "true": classes[int(report.y_true[i])],
                 "prediction": classes[int(report.predicted[i])],
                 "top": top_classes(report.probabilities[i], classes, k)}
                for i in range(min(examples, len(report.probabilities)))]
    if json_out:
        emit_json(result)
        return
    from rich.table import Table

    console = make_console()
    t = Table(title=f"{cfg.name}: test metrics", show_header=False, box=None)
    for k, v in result["test"].items():
        t.add_row(k, pct(v) if k == "accuracy" else fmt(v))
    console.print(t)
    if info["task"] == "classification":
        classes = [cell(c) for c in info["classes"]]  # from the data: shown, never obeyed
        cmt = Table(title="confusion matrix (rows: true, columns: predicted)")
        cmt.add_column("")
        for c in classes:
            cmt.add_column(c, justify="right")
        for c, row in zip(classes, result["confusion_matrix"]):
            cmt.add_row(c, *[str(v) for v in row])
        console.print(cmt)
        pc = Table(title="per class")
        for col in ("class", "precision", "recall", "f1", "support"):
            pc.add_column(col, justify="right")
        for r in result["per_class"]:
            pc.add_row(cell(r["class"]), pct(r["precision"]), pct(r["recall"]), pct(r["f1"]), str(r["support"]))
        console.print(pc)
        for r in result.get("examples", []):
            top = ", ".join(f"{cell(e['class'])}: {e['probability']:.3f}" for e in r["top"])
            console.print(f"example {r['index']}: true {cell(r['true'])}, predicted "
                          f"{cell(r['prediction'])} ({top})")
