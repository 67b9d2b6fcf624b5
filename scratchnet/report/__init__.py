"""``scratchnet report``: one self-contained HTML file about one run, several runs or a
sweep, for a learner to open, keep and send.

    from scratchnet.report import write_report
    write_report(["runs/mnist_best-20261202-002436"], "report.html")

For one run: how it ended, its learning curves, its health and gradient flow (when it
recorded them), what its weights do on the test split as ``scratchnet eval`` computes it
(a classification's confusion matrix, per-class precision and recall and its most
confident mistakes drawn, for images; a regression's predictions against the truth; a
text model's generated text), and its resolved config. For several runs: the comparison
table of ``scratchnet compare``, the learning curves together, their health. The pictures
are those ``scratchnet plot`` draws, inline (:mod:`scratchnet.report.page` says what
else makes the page stand alone).
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__, runs
from ..errors import ConfigError
from .page import document
from .sections import comparison_sections, run_sections, title_of


def build_report(paths: list[str | Path], *, data_dir: str | None = None) -> str:
    """The report's HTML about the run folders and sweep folders ``paths`` (``data_dir``:
    where the test data is found, for a single run's test sections)."""
    from ..compare import expand_paths, read_run

    records = [read_run(d) for d in expand_paths(paths)]
    sections = (run_sections(records[0], data_dir) if len(records) == 1
                else comparison_sections(records))
    title, subtitle = title_of(records)
    return document(title, subtitle, sections,
                f"Made by scratchnet {__version__} (scratchnet report). Everything it shows "
                "is inside this one file: it needs no network and no other file.")


def write_report(paths: list[str | Path], output: str | Path, *,
                 data_dir: str | None = None) -> Path:
    """:func:`build_report` written to ``output`` (a name ending in .html), atomically."""
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"{output}: a report is an HTML file; use a name ending in .html")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: the folder {output.parent} does not exist")
    text = build_report(paths, data_dir=data_dir)
    runs.atomic_write_text(output, text)
    return output
