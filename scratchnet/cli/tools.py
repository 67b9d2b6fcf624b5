"""Comparing and plotting runs (filled in by the sweeps/plots work)."""

from __future__ import annotations

from pathlib import Path


def write_curves(run_dirs: list[Path], output: Path) -> Path:
    from ..plots import learning_curves

    return learning_curves(run_dirs, output)
