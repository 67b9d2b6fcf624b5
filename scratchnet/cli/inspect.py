"""``scratchnet validate``, ``show`` and ``schema``: looking at configs without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from ..config import json_schema, load_config
from ..errors import ConfigError, DataError
from ..experiment import build_network, build_optimizer, load_data
from .app import EXIT_USAGE, app, err_console, make_console
from .train import SET_HELP


@app.command()
def validate(
    configs: List[Path] = typer.Argument(..., help="Experiment YAML files to check."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
):
    """Check experiment files without training."""
    bad = 0
    for path in configs:
        try:
            cfg = load_config(path, overrides)
        except ConfigError as e:
            bad += 1
            err_console.print(f"[bold red]invalid:[/] {escape(str(e))}", highlight=False, soft_wrap=True,
                              markup=True)
            continue
        print(f"ok: {path} ({cfg.name})")
    if bad:
        raise typer.Exit(EXIT_USAGE)


@app.command()
def show(
    config: Path = typer.Argument(..., help="An experiment YAML file."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding data sets."),
    lr: bool = typer.Option(False, "--lr", help="Also print the learning rate at every epoch."),
):
    """Print the resolved config and the model summary (each layer's shape and parameters)."""
    cfg = load_config(config, overrides)
    console = make_console()
    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip(), markup=False)
    n_inputs = None
    try:
        n_inputs = load_data(cfg, str(data_dir) if data_dir else None, download=False).n_features
    except DataError as e:
        err_console.print(f"[yellow]note:[/] input width unknown without the data ({escape(str(e))})",
                          highlight=False, soft_wrap=True)
    net = build_network(cfg, n_inputs)
    table = Table(title=f"model: {cfg.name}")
    for col in ("layer", "type", "inputs", "outputs", "parameters"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for row in net.summary():
        table.add_row(str(row["layer"]), row["type"], str(row["inputs"] or "?"),
                      str(row["outputs"]), "?" if row["params"] is None else f"{row['params']:,}")
    table.caption = f"total parameters: {net.n_params:,}; loss: {type(net.loss).__name__}" \
        if net.built else f"loss: {type(net.loss).__name__}"
    console.print(table)
    if lr:
        schedule = build_optimizer(cfg).schedule(cfg.train.epochs)
        t = Table(title=f"learning rate ({cfg.optimizer.decay.type})")
        t.add_column("epoch", justify="right")
        t.add_column("lr", justify="right")
        for epoch, rate in enumerate(schedule.rates(), start=1):
            t.add_row(str(epoch), f"{rate:.6g}")
        console.print(t)


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
):
    """Print the JSON Schema of experiment files (for editor completion and checks)."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        from ..runs import atomic_write_text

        atomic_write_text(output, text)
