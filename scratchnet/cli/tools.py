"""Helpers shared by commands. ``scratchnet sweep``, ``compare`` and ``plot`` live in
:mod:`scratchnet.cli.sweep`, ``gradcheck`` in :mod:`scratchnet.cli.check`."""

from __future__ import annotations

from pathlib import Path


def write_curves(run_dirs: list[Path], output: Path) -> Path:
    """Learning curves of ``run_dirs`` into the PNG ``output`` (``train --plot``)."""
    from ..plots import learning_curves

    return learning_curves(run_dirs, output)
