"""Make the golden text of ``scratchnet explain`` for the shipped configs again: one
``<config stem>.txt`` here per ``configs/*.yaml`` that validates without a data file of
the user's, as the real command prints it at 80 columns. Review the diff before you commit
it (``git diff tests/golden/explain``): tests/test_explain.py compares the command's output
with these files.

    .venv/bin/python tests/golden/explain/make_golden.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CONFIGS = ROOT / "configs"
#: the width the text is made at (the widest explain prints)
COLUMNS = 80


def shipped() -> list[Path]:
    """The shipped configs that explain without a data file of the user's."""
    from scratchnet.config import load_config
    from scratchnet.errors import NeedsDataFile

    found = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        try:
            load_config(path)
        except NeedsDataFile:
            continue
        found.append(path)
    return found


def golden(config: Path) -> Path:
    return HERE / f"{config.stem}.txt"


def explain_text(config: Path) -> str:
    """What ``scratchnet explain CONFIG`` prints at :data:`COLUMNS` columns, run from the
    repository's root as the README shows it."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "SCRATCHNET_DEBUG")}
    env.update(COLUMNS=str(COLUMNS), NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "scratchnet", "explain",
                           str(config.relative_to(ROOT))], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return proc.stdout


def main() -> None:
    configs = shipped()
    for config in configs:
        golden(config).write_text(explain_text(config), encoding="utf-8")
    kept = {golden(c) for c in configs}
    for stale in set(HERE.glob("*.txt")) - kept:
        stale.unlink()
    print(f"wrote {len(configs)} files in {HERE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
