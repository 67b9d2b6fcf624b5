"""``scratchnet explain``: an experiment in the book's terms, before anything trains (the
library: :mod:`scratchnet.explain`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .app import TOOLS_PANEL, app, emit_json, make_console, printable
from .common import DATA_DIR_HELP, SET_HELP, config_flags, data_dir_text

#: the widest the text gets: prose past 80 columns is hard to read, and it must fit a
#: terminal of 80 (a narrower terminal, or COLUMNS, narrows it)
WIDTH = 80


@app.command(rich_help_panel=TOOLS_PANEL)
@config_flags
def explain(
    config: Path = typer.Argument(..., metavar="CONFIG", help="An experiment YAML file."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead: "
                                  "layers with their operations and shapes, choices, "
                                  "pitfalls with their ids."),
):
    """Explain an experiment before it trains: each layer as its chain of operations with
    the shape of one batch after each, every choice of the file in one sentence, and the
    pitfalls it walks into (docs/explain.md lists them). Nothing is trained and no weight
    is allocated."""
    from ..config import load_config
    from ..experiment import plan_experiment
    from ..explain import explain as explained

    cfg = load_config(config, overrides)
    result = explained(cfg, plan_experiment(cfg, data_dir_text(data_dir)))
    if json_out:
        emit_json(result)
        return
    console = make_console()
    console.width = min(console.width, WIDTH)
    for part in render(result):
        console.print(part)


def render(result: dict) -> list:
    """The explanation as rich renderables, in order."""
    from rich.padding import Padding
    from rich.text import Text

    net, name = result["network"], printable(result["name"])
    parts = [Text(f"The network of {name}, as the book draws it", style="bold"),
             Text(f"One batch: {net['batch']:,} rows (train.batch_size); shapes are "
                  f"{net['axes']}."), _network(net), Text(""),
             Text("The choices, in the book's words", style="bold"), _choices(result["choices"]),
             Text("")]
    pitfalls = result["pitfalls"]
    if not pitfalls:
        return parts + [Text("Pitfalls: none of the rules applies (docs/explain.md lists "
                             "them).", style="bold")]
    parts.append(Text(f"Pitfalls ({len(pitfalls)})", style="bold"))
    for p in pitfalls:
        parts.append(Text.assemble(("! ", "bold yellow"), (p["id"], "bold"), f" ({p['key']})"))
        parts.append(Padding(Text(printable(f"{p['finding']}.")), (0, 0, 0, 2)))
        parts.append(Padding(Text(f"{p['reason']} See {p['docs']}."), (0, 0, 0, 2)))
    return parts


def _network(net: dict):
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from ..explain.choices import size as _shape

    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("layer", no_wrap=True)
    table.add_column("operation", overflow="fold")
    table.add_column("parameters", no_wrap=True)
    table.add_column("shape", justify="right", no_wrap=True)
    def row(*cells, style=None):
        """Cells as Text (nothing in them is rich markup); a list, one line each."""
        table.add_row(*(Text("\n".join(map(printable, c if isinstance(c, list) else [c])))
                        for c in cells), style=style)

    row("input", "", "", _shape(net["input"]["shape"]))
    for op in net["input"]["operations"]:
        row("", f"-> {op['operation']}", "", _shape(op["shape"]))
    for layer in net["layers"]:
        table.add_row(str(layer["layer"]), Text(printable(layer["type"]), style="bold"),
                      f"{layer['params']:,}", "")
        for op in layer["operations"]:
            params = [f"{k} {_shape(v)}" for k, v in op["params"].items()]
            row("", f"-> {op['operation']}", params, _shape(op["shape"]))
            # one statement a line (a column of 40 would cut "h_t = o * tanh(c_t)" in two)
            for line in (part for eq in op["equations"] for part in eq.split("; ")):
                table.add_row("", Padding(Text(printable(line), style="dim"), (0, 0, 0, 3)))
    loss = net["loss"]
    row("loss", f"-> {loss['operation']}", "", f"{_shape(loss['shape'])} -> 1")
    row("", "in all", f"{net['params']:,}", "")
    return table


def _choices(choices: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False,
                  show_edge=False)
    table.add_column("topic", no_wrap=True, style="bold")
    table.add_column("text")
    for c in choices:
        table.add_row(c["topic"], Text(printable(c["text"])))
    return table
