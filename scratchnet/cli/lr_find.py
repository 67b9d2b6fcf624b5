"""``scratchnet lr-find``: the learning-rate range test on an experiment's network, data and
optimizer (:mod:`scratchnet.lr_find`), printed, drawn (``-o``) or as JSON."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import SEARCH_PANEL, app, cell, emit_json, err_console, human_console, printable
from .common import DATA_DIR_HELP, SET_HELP, data_dir_text
from .train import _loading

#: copies of :class:`scratchnet.lr_find.RangeTest`'s defaults (this module loads before
#: NumPy; a test holds them equal)
START_LR, END_LR, BATCHES = 1e-7, 10.0, 300

#: how the test ended, in words
STOPPED = {"end": "ran all {batches} batches",
           "exploded": "stopped after {n} of {batches} batches: the smoothed loss passed "
                       "{factor:g} x its lowest at learning rate {at:.2g}",
           "not finite": "stopped after {n} of {batches} batches: the next loss was not finite "
                         "(learning rate {at:.2g})"}


@app.command("lr-find", rich_help_panel=SEARCH_PANEL)
def lr_find(
    config: Path = typer.Argument(..., metavar="CONFIG", help="An experiment YAML file (left "
                                  "unchanged)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    start_lr: float = typer.Option(START_LR, "--start-lr", metavar="X", help="Learning rate "
                                   "of the first batch."),
    end_lr: float = typer.Option(END_LR, "--end-lr", metavar="X", help="Learning rate of the "
                                 "last batch."),
    batches: int = typer.Option(BATCHES, "--batches", metavar="N", help="Batches from "
                                "--start-lr to --end-lr, the rate growing by the same factor "
                                "each batch."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE",
                                          help="Also draw the loss "
                                          "against the learning rate into this PNG (extra "
                                          "'plot')."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing "
                                  "else (the curve included)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
):
    """Find a learning rate with the range test, and the --set line that trains at it.

    Train one batch at each of a range of rates, growing exponentially from tiny, until
    the smoothed loss passes 4 x its lowest (Smith's range test, as fastai's lr_find), and
    suggest a rate (fastai's valley rule) with the --set line that trains at it. The config's optimizer (its momentum...), batch size, dropout
    and seed are used; its decay schedule is not. Nothing is written but -o's picture."""
    if output is not None:  # before any work: nothing is lost to a missing extra or bad name
        from .. import extras
        from ..plots import png_path
        extras.check("plot")
        png_path(output)
    from ..lr_find import RangeTest
    try:
        settings = RangeTest(start_lr=start_lr, end_lr=end_lr, batches=batches)
    except ConfigError as e:
        raise ConfigError(f"--{e.key[0].replace('_', '-')}: {e}") from None
    from ..config import load_config
    from ..experiment import plan_experiment
    overrides = list(overrides or [])
    data = data_dir_text(data_dir)
    cfg = load_config(config, overrides)
    plan = plan_experiment(cfg, data)  # what validate and train accept, and nothing else
    human = human_console(json_out, quiet=False)
    o = cfg.optimizer
    given = [k for k in type(o).model_fields if k in o.model_fields_set - {"name", "lr", "decay"}]
    options = "".join(f", {k} {_shown(getattr(o, k))}" for k in given)
    human.print(f"[bold]lr-find {cell(cfg.name)}[/]: {o.name}{options}, batches of "
                f"{cfg.train.batch_size}, learning rate {start_lr:g} to {end_lr:g} over "
                f"{batches} batches; {_loading(cfg, plan)}", highlight=False, soft_wrap=True)
    if o.decay.type != "none" or len(set(plan.schedule.rates())) > 1:  # (a warm-up alone, too)
        kind = "warm-up" if o.decay.type == "none" else f"{o.decay.type} decay"
        human.print(f"note: the config's {kind} is not used in the test: each batch gets "
                    "the test's own rate", highlight=False, soft_wrap=True)
    try:
        result = _run(cfg, plan, data, settings)
    except KeyboardInterrupt:
        err_console.print("interrupted: nothing was written", highlight=False)
        raise typer.Exit(130) from None
    report = _report(config, cfg, result, overrides, data_dir)
    if output is not None:
        from ..lr_find import draw
        report["picture"] = str(draw(result, output, title=f"{cfg.name}: learning-rate range test"))
    if json_out:
        emit_json(report)
    else:
        _print(report)


def _shown(value) -> str:
    """An option's value as the header shows it (0.9, 1e-08, True)."""
    return format(value, "g") if isinstance(value, float) else str(value)


def _run(cfg, plan, data_dir: str | None, settings):
    """The range test on the experiment built as ``train`` builds it."""
    from .render import DownloadBar
    from ..experiment import as_samples, build_network, build_optimizer, prepare_data
    from ..lr_find import range_test
    with DownloadBar(err_console) as download:
        data = prepare_data(cfg, data_dir, download, plan.targets, lazy=True)
    net = build_network(cfg, plan.input_shape, sizes=plan.sizes)
    return range_test(net, build_optimizer(cfg), as_samples(data.X_train, plan.input_shape),
                      data.Y_train,
                      batch_size=cfg.train.batch_size, seed=cfg.seed, settings=settings)


def _report(config: Path, cfg, result, overrides: list[str], data_dir: Path | None) -> dict:
    from ..lr_find import suggested_overrides
    s, settings, n = result.suggestion, result.settings, len(result.losses)
    suggested = suggested_overrides(cfg, s.rounded)
    words = ["scratchnet", "train", str(config), *[w for o in overrides for w in ("--set", o)],
             *(["--data-dir", str(data_dir)] if data_dir else []),
             *[w for o in suggested for w in ("--set", o)]]
    return {"name": cfg.name, "config": str(config), "optimizer": cfg.optimizer.name,
            "batch_size": cfg.train.batch_size, "start_lr": settings.start_lr,
            "end_lr": settings.end_lr, "batches": settings.batches, "batches_run": n,
            "stopped": result.stopped, "stopped_at": result.stopped_at,
            "stop_factor": settings.stop_factor,
            "rule": s.rule, "suggestion": s.rounded,
            "valley": [float(result.rates[i]) for i in s.valley],
            "lowest": {"lr": float(result.rates[result.best]),
                       "loss": float(result.smoothed[result.best])},
            "set": suggested, "command": shlex.join(words), "picture": None,
            "rates": result.rates, "losses": result.losses, "smoothed": result.smoothed}


def _print(report: dict) -> None:
    low, high = report["valley"]
    print(f"suggested learning rate: {report['suggestion']:g} ({report['rule']}: halfway "
          f"through the longest fall of the smoothed loss, learning rate {low:.2g} to "
          f"{high:.2g})")
    stopped = STOPPED[report["stopped"]].format(
        n=report["batches_run"], batches=report["batches"], factor=report["stop_factor"],
        at=report["stopped_at"])
    print(f"lowest smoothed loss {report['lowest']['loss']:.4g} at learning rate "
          f"{report['lowest']['lr']:.2g}; the test {stopped}")
    print(f"train with it: {printable(report['command'])}")
    if report["picture"]:
        print(f"picture: {printable(report['picture'])}")
