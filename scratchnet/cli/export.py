"""``scratchnet export``: a run's weights as an ONNX model."""

from __future__ import annotations

from pathlib import Path

import typer

from ..constants import ONNX_OPSET as OPSET, WEIGHTS_RULE
from .app import TOOLS_PANEL, app
from .common import RUN_DIR_HELP, run_folder


@app.command(rich_help_panel=TOOLS_PANEL,
             short_help=f"Write a run's weights as an ONNX model (opset {OPSET}; extra 'onnx').",
             help=f"Write a run's weights as an ONNX model (opset {OPSET}): raw features in, "
             "as `scratchnet predict` takes them; class probabilities (or the regression "
             f"output) out (extra 'onnx'). Prints the file's path. The weights: {WEIGHTS_RULE}.")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help=RUN_DIR_HELP),
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE",
                                help="The ONNX file to write (replaced if it exists)."),
):
    from .. import extras
    from ..onnx_export import export_run

    extras.check("onnx")
    print(export_run(run_folder(run_dir), output))
