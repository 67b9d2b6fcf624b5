"""``scratchnet report``: one HTML file about runs, to open, keep and send."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..constants import SWEEP_STATE
from .app import PLOT_PANEL, app
from .common import DATA_DIR_HELP, data_dir_text, run_folder

#: the report's file name when none is given
REPORT = "report.html"


@app.command(rich_help_panel=PLOT_PANEL)
def report(
    paths: List[Path] = typer.Argument(..., metavar="FOLDER", help="A run folder (@last: the "
                                       "newest in runs/), several, or a sweep folder."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE",
                                          help="The HTML file to write "
                                          f"(default: {REPORT} in the run or sweep folder "
                                          "given alone, else in the current folder)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP + " For a run's test split."),
):
    """Write one self-contained HTML report of runs (prints its path).

    The run's summary, learning curves, health and gradient flow, its test split (confusion
    matrix, per-class precision and recall, the most confident mistakes drawn, or predictions
    against the truth, or generated text) and config; for several runs, their comparison table and
    curves. Pictures are inline: the file needs no network and no other file."""
    from ..compare import expand_paths
    from ..report import write_report

    paths = [run_folder(p) for p in paths]
    if output is None:
        given_alone = len(paths) == 1 and ((paths[0] / SWEEP_STATE).is_file()
                                           or len(expand_paths(paths)) == 1)
        output = (paths[0] if given_alone else Path(".")) / REPORT
    print(write_report(paths, output, data_dir=data_dir_text(data_dir)))
