"""``scratchnet predict``: a trained run on new inputs (CSV, .npy, PNG/JPEG)."""

from __future__ import annotations

import csv
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import TRAIN_PANEL, app, cell, emit_json, err_console, make_console, printable
from .common import RUN_DIR_HELP, run_folder


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _flat(row: dict) -> list:
    """A row as CSV cells: input, prediction(s), then class/probability pairs."""
    pred = row["prediction"]
    cells = [row["input"], *(pred if isinstance(pred, list) else [pred])]
    for entry in row.get("top", []):
        cells += [entry["class"], f"{entry['probability']:.6g}"]
    return cells


def _header(rows: list[dict]) -> list[str]:
    pred = rows[0]["prediction"]
    names = ([f"prediction_{i + 1}" for i in range(len(pred))] if isinstance(pred, list)
             else ["prediction"])
    k = len(rows[0].get("top", []))
    return ["input", *names,
            *[f"{kind}_{i + 1}" for i in range(k) for kind in ("class", "probability")]]


@app.command(rich_help_panel=TRAIN_PANEL)
def predict(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help=RUN_DIR_HELP),
    inputs: Optional[List[Path]] = typer.Argument(
        None, metavar="INPUT", help="Inputs: .csv (the training feature columns), .npy "
        "arrays, or, for image runs, .png/.jpg pictures (one example each; extra 'images'); "
        "for a text run, UTF-8 text files, each a prefix."),
    texts: Optional[List[str]] = typer.Option(None, "--text", metavar="TEXT", help="A text "
                                              "run: a prefix whose next character to predict "
                                              "(repeatable)."),
    top_k: int = typer.Option(0, "--proba", min=0, metavar="K",
                              help="Also give the K most probable classes and their "
                              "probabilities (a text run: the K likeliest next characters, "
                              "5 by default)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f",
                                     help="table (for people), csv or json (for programs)."),
):
    """Predict with a run's weights (those eval uses): one row per input example (a warning
    when inputs lie far outside the training range); for a text run, the likeliest next
    characters of each prefix (--text, or a text file)."""
    from .. import extras
    from ..experiment import load_run
    from ..predict import IMAGE_SUFFIXES, predict_rows, read_inputs
    from ..ranges import far_outside
    inputs, texts = list(inputs or []), list(texts or [])
    if not inputs and not texts:
        raise ConfigError("predict needs inputs: files (INPUT...), or --text TEXT for a "
                          "text run")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in inputs):
        extras.check("images")
    run_dir = run_folder(run_dir)
    cfg, net, info, _ = load_run(run_dir)
    # a character is shown as Python writes it in a table: ' ' and '\n' are seen
    shown = repr if info.get("kind") == "text" or texts else str
    if shown is repr:
        top_k = top_k or 5
        rows = _next_characters(run_dir, net, info, inputs, texts, top_k)
    else:
        data = read_inputs(inputs, info, dataset=cfg.data.dataset,
                           ignore_columns=[cfg.data.target] if cfg.data.target else [])
        far = far_outside(data.X, info.get("feature_range"), data.names,
                          info["feature_names"])
        if far is not None:
            err_console.print(f"[yellow]warning:[/] {cell(far)}", soft_wrap=True,
                              highlight=False)
        rows = predict_rows(net, info, data, top_k=top_k)
    if fmt is OutputFormat.json:
        emit_json(rows)
    elif fmt is OutputFormat.csv:
        # for programs, as read; a terminal gets the control characters escaped
        shown = printable if sys.stdout.isatty() else (lambda value: value)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(_header(rows))
        writer.writerows([shown(c) for c in _flat(r)] for r in rows)
    else:
        from rich.table import Table

        table = Table(title=f"{cfg.name}: predictions")
        table.add_column("input")
        table.add_column("prediction", justify="right")
        if top_k:
            table.add_column(f"top {min(top_k, len(info['classes']))} (probability)")
        for r in rows:
            pred = r["prediction"]
            text = (", ".join(f"{v:.6g}" for v in pred) if isinstance(pred, list)
                    else f"{pred:.6g}" if isinstance(pred, float) else shown(pred))
            cells = [cell(r["input"]), cell(text)]  # file names and classes: shown, never obeyed
            if top_k:
                cells.append(", ".join(f"{cell(shown(e['class']))}: {e['probability']:.3f}"
                                       for e in r["top"]))
            table.add_row(*cells)
        make_console().print(table)  # (full width in a pipe: names are not cut short)


#: how much of a prefix a row names it by (the rest is left out: ``...``)
SHOWN_PREFIX = 30


def _next_characters(run_dir: Path, net, info: dict, inputs: list[Path], texts: list[str],
                     k: int) -> list[dict]:
    """A text run's rows: each prefix (``--text``, then each text file's whole text) with
    its likeliest next character and the ``k`` likeliest with their probabilities."""
    from ..data.text import read_text
    from ..generate import most_likely_next, run_vocabulary

    vocabulary = run_vocabulary(info, run_dir)
    prefixes = [(t if len(t) <= SHOWN_PREFIX else "..." + t[-SHOWN_PREFIX:], t) for t in texts]
    prefixes += [(path.name, read_text(path)[0]) for path in inputs]
    rows = []
    for name, prefix in prefixes:
        top = most_likely_next(net, vocabulary, prefix, k)
        rows.append({"input": name, "prediction": top[0][0],
                     "top": [{"class": c, "probability": p} for c, p in top]})
    return rows
