"""``scratchnet runs``: the run folders of a folder, oldest first."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import TRAIN_PANEL, app, cell, emit_json, make_console


def _age(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``5 days``: how long ago, to the unit that matters."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


@app.command("runs", rich_help_panel=TRAIN_PANEL)
def runs_(
    folder: Path = typer.Argument(Path("runs"), metavar="DIR", help="A folder of run "
                                  "folders (default: runs, where train writes them)."),
    json_out: bool = typer.Option(False, "--json", help="The runs as JSON on stdout, "
                                  "nothing else."),
):
    """List the run folders in DIR, the newest last.

    Each with its experiment's name, status, headline metric, epochs and age. @last names
    the newest wherever a run folder is expected (DIR/@last: the newest in DIR)."""
    import time

    from ..listing import describe, run_folders
    from .render import fmt, pct

    now = time.time()
    rows = [describe(d, now) for d in run_folders(folder)]
    if json_out:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} run{'s' if len(rows) != 1 else ''} in {cell(folder)}")
    for column in ("run folder", "name", "status", "metric", "epochs", "age"):
        table.add_column(column, justify="right" if column in ("epochs", "age") else "left")
    for r in rows:
        value = r["value"]
        metric = ("-" if r["metric"] is None else
                  f"accuracy {pct(value)}" if r["metric"] == "accuracy" else
                  f"{r['metric'].replace('_', ' ')} {fmt(value)}")
        epochs = "-" if r["epochs_run"] is None else \
            f"{r['epochs_run']}/{r['epochs']}" if r["epochs"] else str(r["epochs_run"])
        table.add_row(cell(Path(r["run_dir"]).name), cell(r["name"]), cell(r["status"]),
                      metric, epochs, _age(r["age_seconds"]))
    make_console().print(table)
