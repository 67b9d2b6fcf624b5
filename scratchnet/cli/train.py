"""``scratchnet train`` and ``scratchnet eval``."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

from ..constants import WEIGHTS_RULE
from ..errors import ConfigError, DataError, DivergenceError
from .app import (EXIT_FAILURE, TRAIN_PANEL, app, cell, emit_json, err_console, human_console,
                  make_console)
from .common import (DATA_DIR_HELP, MLFLOW_HELP, MLFLOW_URI_HELP, RUN_DIR_HELP, SET_HELP,
                     config_flags, data_dir_text, run_folder, tracking_overrides)


def _loading(cfg, plan) -> str:
    """What the header says is about to load: ``loading mnist (60,000 + 10,000 images of
    1 x 28 x 28)``, so a long data load is not a silent wait."""
    data = getattr(plan, "data", None)
    if data is None:
        return f"loading {cell(cfg.data.dataset)}"
    shape = plan.input_shape
    if data.targets == "ids":
        each = f"windows of {data.n_features:,} characters"
    elif len(shape) == 2:
        each = f"sequences of {shape[0]:,} steps of {shape[1]:,} features"
    elif data.sample_shape:
        each = f"images of {' x '.join(map(str, data.sample_shape))}"
    else:
        each = f"rows of {data.n_features:,} features"
    return f"loading {cell(data.name)} ({data.n_train:,} + {data.n_test:,} {each})"


def _header(console, cfg, plan) -> None:
    """``training NAME: 2 layers, 8 epochs; loading ...`` on one line, or broken after
    the ``;`` where the terminal is narrower than that (rather than in a word)."""
    name = f"training {cfg.name}"
    what = f": {len(cfg.model.layers)} layers, {cfg.train.epochs} epochs;"
    loading = _loading(cfg, plan)
    apart = "\n" if len(name + what) + 1 + len(loading) > console.width else " "
    console.print(f"[bold]{cell(name)}[/]{what}{apart}{loading}", highlight=False)


@dataclass
class Session:
    """What every experiment of one ``train`` command shares."""

    out: Path
    data_dir: str | None
    resume: Path | None
    plot: bool
    json_out: bool
    console: object  # where tables go: a rich Console, or None with --quiet
    failed: bool = False


@app.command(rich_help_panel=TRAIN_PANEL)
@config_flags
def train(
    configs: Optional[List[Path]] = typer.Argument(
        None, metavar="CONFIG", help="Experiment YAML files, trained in turn (none with "
        "--resume: the run folder holds its config)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    out: Path = typer.Option(Path("runs"), "--out", metavar="DIR", help="Where run folders go."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per run on stdout, "
                                  "nothing else."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or tables."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN_DIR", help="Continue "
                                          "the run in this run folder (@last: the newest; "
                                          "with a larger train.epochs: extend it into a new "
                                          "one)."),
    plot: bool = typer.Option(False, "--plot", help="Write learning curves (curves.png) into "
                              "each run folder (extra 'plot')."),
    health: bool = typer.Option(False, "--health", help="Record and print every layer's "
                                "health at each evaluation (the same as --set "
                                "train.health=true)."),
    mlflow: bool = typer.Option(False, "--mlflow", help=MLFLOW_HELP.format("run")),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", metavar="URI",
                                             help=MLFLOW_URI_HELP),
):
    """Train each experiment, writing a run folder for each."""
    from .. import runs

    runs.check_out_dir(out)
    overrides = [*(overrides or []), *tracking_overrides(mlflow, mlflow_uri),
                 *(["train.health=true"] if health else [])]
    session = Session(out, data_dir_text(data_dir), resume and run_folder(resume), plot,
                      json_out, human_console(json_out, quiet))
    experiments = _experiments(list(configs or []), overrides, session)
    summaries = []
    for cfg, plan in experiments:
        summaries.append(_train_one(cfg, plan, session))
    if session.console is not None and len(experiments) > 1:
        from .render import comparison_table

        session.console.print(comparison_table(summaries))
    if session.failed:
        raise typer.Exit(EXIT_FAILURE)


def _experiments(configs: list[Path], overrides: list[str], session: Session) -> list:
    """Every experiment to train, ``(config, plan)``, checked and planned before any
    trains, with the optional libraries they need: a mistake in the last of a batch stops
    the batch before its first run. A data file that cannot be read is that experiment's
    plan (a DataError): it fails alone, as it would while running."""
    from .. import extras, runs
    from ..config import load_config
    from ..experiment import plan_experiment

    if session.resume is not None:
        if len(configs) > 1:
            raise ConfigError("--resume continues one run; give at most one config")
        if not configs:
            runs.read_run_config(session.resume)  # a clear error for what is not a run folder
            configs = [session.resume / runs.CONFIG]
    if not configs:
        raise ConfigError("Missing argument 'CONFIG...': train needs an experiment file "
                          "(or --resume RUN_DIR)")
    cfgs = [load_config(path, overrides) for path in configs]
    extras.check(*(["plot"] if session.plot else []),
                 *(["mlflow"] if any(c.tracking and c.tracking.mlflow for c in cfgs) else []))
    planned = []
    for cfg in cfgs:
        try:
            planned.append((cfg, plan_experiment(cfg, session.data_dir)))
        except DataError as e:
            planned.append((cfg, e))
    return planned


def _train_one(cfg, plan, session: Session) -> dict:
    """Train one experiment and show how it ended; its summary (a failed one's is its
    name and status). A stopped run (Ctrl-C) ends the command here."""
    from .render import ConsoleReporter, DownloadBar, kept_weights, summary_table
    from .signals import GracefulStop

    download = DownloadBar(err_console)
    stop = GracefulStop(download)
    console = session.console
    reporter = None if console is None else ConsoleReporter(console, cfg.name)
    if console is not None:
        _header(console, cfg, plan)
    try:
        if isinstance(plan, DataError):
            raise plan
        result = _fit(cfg, plan, session, stop, download, reporter)
    except KeyboardInterrupt:  # GracefulStop stopped a download: no run folder yet
        if stop.signum is None:
            raise
        _say(f"interrupted while downloading {download.current}: nothing was saved (no "
             "partial file, no run folder)")
        raise typer.Exit(stop.exit_code) from None
    except (DivergenceError, DataError) as e:
        return _failed(cfg, e, session)
    if session.plot:
        from .. import runs
        from ..plots import learning_curves

        learning_curves([result.run_dir], result.run_dir / runs.PLOT)
    if session.json_out:
        emit_json(result.summary)
    if console is not None:
        console.print(summary_table(result.summary))
    if result.status == "interrupted":
        _say(f"interrupted: weights ({kept_weights(result.summary)}), checkpoint and metrics "
             f"saved in {result.run_dir}\n"
             f"resume with: scratchnet train --resume {shlex.quote(str(result.run_dir))}")
        raise typer.Exit(stop.exit_code)
    return result.summary


def _fit(cfg, plan, session: Session, stop, download, reporter):
    """:func:`~scratchnet.experiment.train_experiment` with Ctrl-C, the download bar and
    the progress display connected."""
    import numpy as np

    from ..experiment import train_experiment

    def on_start(trainer, run_dir):
        stop.attach(trainer, run_dir)
        if session.resume is not None and Path(run_dir) != session.resume:
            _say(f"extending {session.resume} to {cfg.train.epochs} epochs in a new run "
                 f"folder, {run_dir}")
        if reporter is not None:
            trainer.callbacks.append(reporter)

    # A diverging run is reported as one line (DivergenceError), not as NumPy's
    # overflow/invalid-value warnings on the way there.
    with stop, download, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return train_experiment(cfg, out=session.out, data_dir=session.data_dir,
                                    resume=session.resume, on_start=on_start,
                                    progress=download, plan=plan)
        finally:  # before any message: a failed or stopped run leaves no bar behind
            if reporter is not None:
                reporter.close()


def _failed(cfg, error: Exception, session: Session) -> dict:
    """A run that diverged or could not read its data: one line, a row in the comparison,
    and the batch goes on."""
    session.failed = True
    err_console.print(f"[bold red]error:[/] {cell(f'{cfg.name}: {error}')}", markup=True,
                      highlight=False, soft_wrap=True)
    status = "diverged" if isinstance(error, DivergenceError) else "failed"
    if session.json_out:
        emit_json({"name": cfg.name, "status": status, "error": str(error)})
    return {"name": cfg.name, "status": status}


def _say(text: str) -> None:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("eval", rich_help_panel=TRAIN_PANEL,
             short_help="Evaluate a run's weights on the test split, or on a new labelled file.",
             help=f"Evaluate a run's weights on the test split, or on a new labelled file. "
             f"The weights: {WEIGHTS_RULE}.")
def eval_(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help=RUN_DIR_HELP),
    data: Optional[Path] = typer.Option(None, "--data", metavar="FILE", help="Score this "
                                        "labelled file instead of the test split: a .csv "
                                        "with the feature columns and a label column, an "
                                        ".npz of x and y, or an .npy of inputs with "
                                        "--labels; scaled as the run's training data was."),
    target: Optional[str] = typer.Option(None, "--target", metavar="COLUMN", help="The "
                                         "label column of a --data .csv (default: the "
                                         "run's data.target, else 'label')."),
    labels: Optional[Path] = typer.Option(None, "--labels", metavar="FILE", help="The "
                                          "labels (.npy) of a --data .npy file."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing "
                                  "else."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    proba: int = typer.Option(0, "--proba", min=0, metavar="K", help="Also give the K most "
                              "probable classes of test examples (as predict does)."),
    examples: int = typer.Option(10, "--examples", min=1, metavar="N", help="How many test "
                                 "examples --proba shows (the first N)."),
):
    from ..experiment import evaluate_run, load_run
    from .render import LABELS, fmt, pct
    from ..predict import top_classes
    run_dir = run_folder(run_dir)
    loaded = cfg, _, info, _ = load_run(run_dir)  # (it warns of a config edited since)
    report = evaluate_run(run_dir, data_dir_text(data_dir), loaded, data=data, target=target,
                          labels=labels)
    result = {"name": cfg.name, "run_dir": str(run_dir), "task": info["task"],
              **({"data": str(data)} if data is not None else {}), "test": report.scores}
    text = info.get("kind") == "text"  # a class at every step: no table of classes
    if report.task == "classification" and not text:
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
    where = f"{cell(data.name)} metrics" if data is not None else "test metrics"
    t = Table(title=f"{cfg.name}: {where}", show_header=False, box=None)
    for k, v in result["test"].items():
        t.add_row(LABELS.get(k, k), pct(v) if k == "accuracy" else fmt(v))
    console.print(t)
    if info["task"] == "classification" and not text:
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
            pc.add_row(cell(r["class"]), pct(r["precision"]), pct(r["recall"]), pct(r["f1"]),
                       str(r["support"]))
        console.print(pc)
        for r in result.get("examples", []):
            top = ", ".join(f"{cell(e['class'])}: {e['probability']:.3f}" for e in r["top"])
            console.print(f"example {r['index']}: true {cell(r['true'])}, predicted "
                          f"{cell(r['prediction'])} ({top})")
