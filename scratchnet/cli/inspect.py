"""``scratchnet validate``, ``show`` and ``schema``: looking at configs without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError, DataError, NeedsDataFile
from .app import EXIT_USAGE, TOOLS_PANEL, app, cell, err_console, make_console, printable
from .common import DATA_DIR_HELP, SET_HELP, config_flags, data_dir_text


@app.command(rich_help_panel=TOOLS_PANEL)
@config_flags
def validate(
    configs: List[Path] = typer.Argument(..., metavar="CONFIG",
                                         help="Experiment YAML files to check."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
):
    """Check experiment files without training: the schema, then the whole experiment
    (data, every layer's shape, loss and output, optimizer and schedule, memory). Every
    mistake in a file is listed, one line each."""
    from ..config import load_config
    from ..experiment import plan_experiment
    bad = 0
    for path in configs:
        try:
            cfg = load_config(path, overrides)
            plan_experiment(cfg, data_dir_text(data_dir))
        except NeedsDataFile:  # an example to be given the user's file: not a mistake
            err_console.print(f"[yellow]note:[/] {cell(path)}: it reads a data file of "
                              "yours: give it with --set data.path=FILE (or data.path in the "
                              "file) to check the rest", highlight=False, soft_wrap=True)
            print(f"ok: {printable(path)} (needs your data file)")
            continue
        except (ConfigError, DataError) as e:
            bad += 1
            for line in getattr(e, "messages", [str(e)]):
                err_console.print(f"[bold red]invalid:[/] {cell(line)}", highlight=False,
                                  soft_wrap=True, markup=True)
            continue
        print(f"ok: {printable(path)} ({cfg.name})")
    if bad:
        raise typer.Exit(EXIT_USAGE)


def _shape(shape: tuple) -> str:
    return " x ".join(str(n) for n in shape)


#: the most epochs ``show --schedule`` lists (a longer run's are sampled evenly)
SHOWN_RATES = 100


@app.command(rich_help_panel=TOOLS_PANEL)
@config_flags
def show(
    config: Path = typer.Argument(..., metavar="CONFIG", help="An experiment YAML file."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    schedule: bool = typer.Option(False, "--schedule", help="Also print the learning rate "
                                  f"at every epoch (at {SHOWN_RATES} of a longer run)."),
    origin: bool = typer.Option(False, "--origin", help="Say beside each key who set it: "
                                "the file and line (the experiment's or a base's), the --set, "
                                "or default."),
):
    """Print the resolved config (with its bases merged in) and the model summary: each
    layer's output shape and parameters, the rows each split holds and the memory
    training will take."""
    from rich.table import Table
    from ..config import load_config
    from ..experiment import plan_experiment
    from ..nn import LAYERS
    import yaml
    cfg = load_config(config, overrides)
    plan = plan_experiment(cfg, data_dir_text(data_dir))
    console = make_console()
    text = with_origins(cfg) if origin else \
        yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip()
    console.print(text, markup=False, highlight=False)
    table = Table(title=f"model: {cfg.name}")
    for col in ("layer", "type", "inputs", "outputs", "parameters"):
        table.add_column(col, justify="left" if col == "type" else "right")
    shape = _shape
    if any(LAYERS[layer.type].takes_sequences or LAYERS[layer.type].takes_ids
           for layer in cfg.model.layers):  # a batch of sequences: (batch, time, features)
        def shape(dims: tuple) -> str:
            return "(batch, " + ", ".join(str(n) for n in dims) + ")"
    for row in plan.layers:
        table.add_row(str(row["layer"]), row["type"], shape(row["inputs"]),
                      shape(row["outputs"]), f"{row['params']:,}")
    d = plan.data
    rows = "windows" if plan.targets == "ids" else "rows"  # a text's, of seq_len characters
    validation = "the test split" if cfg.data.validation == "test" else \
        f"{plan.n_val:,} {rows}"
    loss = cfg.model.loss if isinstance(cfg.model.loss, str) else cfg.model.loss["name"]
    table.caption = (f"total parameters: {plan.n_params:,}; loss: {loss}\n"
                     f"{d.name}: {plan.n_train:,} training {rows}, validation {validation}, "
                     f"{d.n_test:,} test {rows}; about {plan.memory['total'] / 2**20:,.0f} MiB "
                     "to train")
    console.print(table)
    if schedule:
        t = Table(title=f"learning rate ({cfg.optimizer.decay.type})")
        t.add_column("epoch", justify="right")
        t.add_column("lr", justify="right")
        rows = plan.schedule.sampled_rates(SHOWN_RATES)  # a long run's, summarised
        for epoch, rate in rows:
            t.add_row(str(epoch + 1), f"{rate:.6g}")
        if len(rows) < plan.schedule.epochs:
            t.caption = f"{len(rows)} of {plan.schedule.epochs:,} epochs, evenly spaced"
        console.print(t)


def with_origins(cfg) -> str:
    """The resolved config ``cfg`` as YAML, each value followed by a comment naming who
    set it (:meth:`~scratchnet.config.messages.Origin.set_by`: ``file:line``, ``--set
    KEY=VALUE`` or ``default``; a key given under another of its names, such as a
    plateau's ``min_lr`` as ``final_lr``, by that one), the comments aligned."""
    import yaml
    from pydantic import BaseModel

    from ..config.declared import option_of

    origin = cfg.origin
    rows: list[tuple[str, str | None]] = []  # (the YAML line, its comment)

    def flow(value) -> str:  # a value on one line, as YAML writes it in a list
        return yaml.safe_dump([value], default_flow_style=True, width=10**9).strip()[1:-1]

    def set_by(model, path: tuple, key: str) -> str:
        field = type(model).model_fields.get(key) if isinstance(model, BaseModel) else None
        option = option_of(field) if field is not None else None
        names = (key, *(option.aliases if option is not None else ()))
        return next((who for name in names if (who := origin.set_by((*path, name)))),
                    "default")

    def walk(node: dict, model, path: tuple, indent: str, first: str = "") -> None:
        for i, (key, value) in enumerate(node.items()):
            lead = first if i == 0 and first else indent
            here, inner = (*path, key), getattr(model, key, None)
            if isinstance(value, dict) and value:
                rows.append((f"{lead}{key}:", None))
                walk(value, inner, here, indent + "  ")
            elif isinstance(value, list) and value and all(isinstance(v, dict) and v
                                                           for v in value):
                rows.append((f"{lead}{key}:", None))
                for n, item in enumerate(value):
                    walk(item, inner[n] if isinstance(inner, list) else None, (*here, n),
                         indent + "  ", first=indent + "- ")
            else:
                rows.append((f"{lead}{key}: {flow(value)}", set_by(model, path, key)))

    walk(cfg.to_dict(), cfg, (), "")
    width = max(len(line) for line, comment in rows if comment)
    return "\n".join(line if comment is None else f"{line.ljust(width)}  # {comment}"
                     for line, comment in rows)


@app.command(rich_help_panel=TOOLS_PANEL)
def schema(
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE",
                                          help="Write to this file instead of stdout."),
):
    """Print the JSON Schema of experiment files (for editor completion and checks)."""
    from ..config import json_schema
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        from ..runs import atomic_write_text

        atomic_write_text(output, text)
