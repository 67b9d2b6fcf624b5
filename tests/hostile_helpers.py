"""What the hostile tests (test_hostile*.py) share: the time limit of one command, the
one-line check of an error, and a small trained run to damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import write_config
from scratchnet.config import load_config
from scratchnet.experiment import train_experiment

LIMIT = 60  # seconds any one command may take before the test fails instead of hanging


def one_line(err: str) -> str:
    """The one line of ``err``, which holds no traceback and no internal error."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished two-epoch digits run (trained in this process, in a second)."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(write_config(out, "tiny"))
    return train_experiment(cfg, out=out / "runs").run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of :func:`trained` that a test may damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))
