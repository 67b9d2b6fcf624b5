"""``make bench``: how long the command line takes to answer, beside NumPy's own import.

Each command runs as a fresh process, interleaved with the others (A B C D A B C D ...)
so that a busy moment of the machine hits all of them alike; the table gives each one's
median wall time and its ratio to ``python -c "import numpy"`` measured in the same run.
The targets: ``--version`` and ``--help`` within 3x that import (0.3 s where it takes
0.1 s), ``validate`` of the quickstart config within 6x (0.6 s).

Then a small run, ``scratchnet train configs/digits_quickstart.yaml -q``: its wall time
less the training time it reports is the fixed cost of a run (target: at most 1 s), and
``python -X importtime`` of the same run says how much of that is importing, library by
library; with MLflow installed, the same run with ``--mlflow`` gives tracking's cost.

    python benchmarks/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
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


#: a run's fixed cost (wall time less training time) may be at most this, in seconds
RUN_TARGET = 1.0
QUICKSTART = str(ROOT / "configs" / "digits_quickstart.yaml")


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
    print("| command | seconds | x numpy's import | target | met |\n"
          "| --- | ---: | ---: | ---: | --- |")
    for name, seconds in median.items():
        target = TARGETS.get(name)
        ratio = seconds / base
        met = "" if target is None else ("yes" if ratio <= target else "NO")
        print(f"| `{name}` | {seconds:.3f} | {ratio:.2f} | "
              f"{'' if target is None else f'<= {target:g}'} | {met} |")


    run_costs(args.repeat)


def _train(out: str, *extra: str) -> tuple[float, float]:
    """One ``train`` of the quickstart: (wall seconds, training seconds it reports)."""
    t0 = time.perf_counter()
    proc = subprocess.run([*SCRATCHNET, "train", QUICKSTART, "-q", "--json", "--out", out,
                           *extra], capture_output=True, text=True, check=True, cwd=ROOT)
    return time.perf_counter() - t0, json.loads(proc.stdout)["seconds"]


def _imports(out: str) -> dict[str, float]:
    """Seconds spent importing, by top-level package, in one such run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "scratchnet", "train",
                           QUICKSTART, "-q", "--out", out], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    own: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, self_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
            if self_us.isdigit():
                own[name.split(".")[0]] += int(self_us) / 1e6
    return dict(sorted(own.items(), key=lambda kv: -kv[1]))


def run_costs(repeat: int) -> None:
    """The fixed cost of a small run, and where it goes."""
    variants = {"train": ()}
    if importlib.util.find_spec("mlflow") is not None:
        variants["train --mlflow"] = ("--mlflow",)
    with tempfile.TemporaryDirectory() as tmp:
        fixed: dict[str, list[float]] = {name: [] for name in variants}
        trained: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(max(3, repeat // 3)):
            for name, extra in variants.items():
                wall, seconds = _train(tmp, *extra)
                fixed[name].append(wall - seconds)
                trained[name].append(seconds)
        imports = _imports(tmp)
    print(f"\nA small run (`scratchnet train configs/digits_quickstart.yaml -q`), median of "
          f"{max(3, repeat // 3)}\n")
    print("| command | training s | fixed s (wall - training) | target | met |\n"
          "| --- | ---: | ---: | ---: | --- |")
    for name in variants:
        cost = statistics.median(fixed[name])
        met = "yes" if cost <= RUN_TARGET else "NO"
        target = f"<= {RUN_TARGET:g}" if name == "train" else ""
        print(f"| `{name}` | {statistics.median(trained[name]):.3f} | {cost:.3f} | {target} | "
              f"{met if target else ''} |")
    total = sum(imports.values())
    top = ", ".join(f"{name} {seconds:.3f}" for name, seconds in list(imports.items())[:8])
    print(f"\nImports of one run: {total:.3f} s in all; the most: {top}")


if __name__ == "__main__":
    main()
