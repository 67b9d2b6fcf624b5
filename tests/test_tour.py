"""docs/tour.md: every command on the page runs as written, on cheap data.

The page's sweeps train MNIST. This test runs each ``$ scratchnet ...`` line of its
console blocks through bash (so each step's ``*`` expands as it does for a reader) in a
scratch folder holding the configs, with the substitution the page states appended to
every sweep: ``--set data.dataset=digits --set train.epochs=1 --jobs 1`` (the bundled 8x8
digits, one epoch, in one process). Every command's syntax, key and option is checked, and
every picture the page shows is written by one of its commands.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "docs" / "tour.md"
#: what the page says the test appends to each sweep
CHEAP = "--set data.dataset=digits --set train.epochs=1 --jobs 1"


def tour_commands() -> list[str]:
    """The ``$ scratchnet ...`` lines of the page's console blocks, in order."""
    blocks = re.findall(r"```console\n(.*?)```", TOUR.read_text(), re.S)
    return [line[2:] for block in blocks for line in block.splitlines()
            if line.startswith("$ scratchnet ")]


def test_the_page_states_the_substitution():
    assert f"`{CHEAP}`" in " ".join(TOUR.read_text().split())


@pytest.mark.slow
def test_every_command_runs_and_draws_every_picture(tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "docs" / "tour").mkdir(parents=True)
    commands = tour_commands()
    assert len(commands) >= 6 and sum(c.startswith("scratchnet sweep ") for c in commands) >= 5
    python = shlex.quote(sys.executable)
    for command in commands:
        line = f"{python} -m {command}"
        if command.startswith("scratchnet sweep "):
            line += " " + CHEAP
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        if "--out sweeps/tour/2-loss" in command:  # the page says one point diverges
            assert proc.returncode == 1, proc.stderr
            [results] = (tmp_path / "sweeps" / "tour" / "2-loss").glob("*/results.json")
            status = {(p["overrides"]["model.loss"], p["overrides"]["model.layers.1.activation"]):
                      p["status"] for p in json.loads(results.read_text())["points"]}
            assert status.pop(("mse", "linear")) == "diverged", status
            assert set(status.values()) == {"ok"}, status
            continue
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    pictures = re.findall(r"!\[[^\]]*\]\((tour/[^)]+\.png)\)", TOUR.read_text())
    assert len(pictures) >= 6
    for picture in pictures:
        assert f"-o docs/{picture}" in " ".join(commands), f"no command draws {picture}"
        assert (tmp_path / "docs" / picture).is_file(), picture
        assert (ROOT / "docs" / picture).is_file(), f"docs/{picture} is not committed"


def test_the_readme_sends_learners_to_the_tour_first():
    top = ROOT.joinpath("README.md").read_text().split("## Start here")[0]
    assert "(docs/tour.md)" in top
