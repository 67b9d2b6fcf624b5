"""Every install hint names this project's distribution (the name ``scratchnet`` on the
package index belongs to an unrelated project) and an extra that exists."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from scratchnet.extras import DISTRIBUTION, distribution_name, install_hint, require
from scratchnet.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = set(PROJECT["optional-dependencies"])
HINT = re.compile(r"""pip install (?:-e )?['"]?([\w.-]+)\[(\w+)\]""")


def _texts():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                 *sorted((ROOT / "scratchnet").rglob("*.py"))]:
        yield path, path.read_text(encoding="utf-8")


def test_the_distribution_name_is_pyprojects():
    assert PROJECT["name"] == DISTRIBUTION == distribution_name() != "scratchnet"
    assert PROJECT["scripts"] == {"scratchnet": "scratchnet.cli:main"}  # the command stays


def test_every_hint_in_the_code_and_docs_names_it():
    found = 0
    for path, text in _texts():
        for name, extra in HINT.findall(text):
            found += 1
            assert name in (PROJECT["name"], "."), (path.name, name, extra)
            assert extra in EXTRAS, (path.name, extra)
    assert found >= 8  # the hints exist, and this test reads them


@pytest.mark.parametrize("extra", sorted(EXTRAS - {"dev", "bench"}))
def test_runtime_hints_name_it(extra):
    assert install_hint(extra) == f"pip install '{PROJECT['name']}[{extra}]'"


def test_a_missing_extra_is_one_line_with_the_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=re.escape(f"pip install '{PROJECT['name']}[plot]'")):
        from scratchnet.plots import panel_figure
        panel_figure(1)
    with pytest.raises(ConfigError, match=r"needs optuna: pip install 'scratchnet-dlfs\[tune\]'"):
        monkeypatch.setitem(sys.modules, "optuna", None)
        require("tune")
