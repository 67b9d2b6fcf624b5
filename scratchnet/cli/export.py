"""``scratchnet export``: a run's weights as an ONNX model."""

from __future__ import annotations

from pathlib import Path

import typer

from ..constants import ONNX_OPSET as OPSET, WEIGHTS_RULE
from .app import app


@app.command(help=f"Write a run's weights as an ONNX model (opset {OPSET}): raw features "
                  "in, as `scratchnet predict` takes them; class probabilities (or the "
                  f"regression output) out. Prints the file's path. The weights: {WEIGHTS_RULE}.")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR",
                                   help="A run folder written by `scratchnet train`."),
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE",
                                help="The ONNX file to write (replaced if it exists)."),
):
    from ..onnx_export import export_run
    print(export_run(run_dir, output))
