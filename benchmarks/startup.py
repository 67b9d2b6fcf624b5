"""``make bench``: how long the command line takes to answer, beside NumPy's own import.

Each command runs as a fresh process, interleaved with the others (A B C D A B C D ...)
so that a busy moment of the machine hits all of them alike; the table gives each one's
median wall time and its ratio to ``python -c "import numpy"`` measured in the same run.
The targets: ``--version`` and ``--help`` within 3x that import (0.3 s where it takes
0.1 s), ``validate`` of the quickstart config within 6x (0.6 s).

    python benchmarks/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCHNET = [sys.executable, "-m", "scratchnet"]
COMMANDS = {
    "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
    "scratchnet --version": [*SCRATCHNET, "--version"],
    "scratchnet --help": [*SCRATCHNET, "--help"],
    "scratchnet validate configs/digits_quickstart.yaml":
        [*SCRATCHNET, "validate", str(ROOT / "configs" / "digits_quickstart.yaml")],
}
#: the most each command may take, as a multiple of NumPy's import
TARGETS = {"scratchnet --version": 3.0, "scratchnet --help": 3.0,
           "scratchnet validate configs/digits_quickstart.yaml": 6.0}


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds (default 15)")
    args = parser.parse_args()
    for argv in COMMANDS.values():  # warm the file cache
        _time(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, argv in COMMANDS.items():
            times[name].append(_time(argv))
    median = {name: statistics.median(ts) for name, ts in times.items()}
    base = median["python -c 'import numpy'"]
    print(f"\nStartup: median of {args.repeat} interleaved rounds, each a fresh process\n")
    print(f"| command | seconds | x numpy's import | target | met |\n| --- | ---: | ---: | ---: | --- |")
    for name, seconds in median.items():
        target = TARGETS.get(name)
        ratio = seconds / base
        met = "" if target is None else ("yes" if ratio <= target else "NO")
        print(f"| `{name}` | {seconds:.3f} | {ratio:.2f} | "
              f"{'' if target is None else f'<= {target:g}'} | {met} |")


if __name__ == "__main__":
    main()
