"""``make bench``: the memory ``show`` and ``validate`` estimate for a config, beside the
peak resident memory of the real run.

Each config trains for ``--epochs`` epochs (1 by default: a run's peak comes in its
first epoch, its first evaluation and its test evaluation; ``--check-epochs`` measures 1
and 2 epochs to show it) as a fresh ``scratchnet train -q`` process, and the peak is
that process's ``ru_maxrss`` (``os.wait4``), the number ``/usr/bin/time -v`` prints as
"Maximum resident set size". The estimate is ``plan_experiment(cfg).memory["total"]``,
what ``show`` prints and ``validate`` checks. The target: every estimate within 30% of
its measured peak. MNIST comes from ``$SCRATCHNET_DATA_DIR``; without it the MNIST
configs are left out; configs that need a file of your own (Boston) are always left out.

    python benchmarks/memory.py [--epochs 1] [--check-epochs] [CONFIG ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
#: the largest |estimate / measured - 1| met
TOLERANCE = 0.30


def peak_rss(config: Path, epochs: int, out: str) -> int:
    """Bytes: the peak resident memory of ``scratchnet train config`` for ``epochs``."""
    proc = subprocess.Popen([sys.executable, "-m", "scratchnet", "train", str(config),
                             "--set", f"train.epochs={epochs}", "-q", "--out", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if status != 0:
        raise SystemExit(f"{config.name}: training failed: {err.strip()}")
    return usage.ru_maxrss * 1024  # kilobytes on Linux


def estimate(config: Path) -> int | None:
    """Bytes ``show`` estimates, or None for a config that cannot be planned here."""
    from scratchnet.config import load_config
    from scratchnet.errors import ScratchnetError
    from scratchnet.experiment import plan_experiment

    try:
        return plan_experiment(load_config(config)).memory["total"]
    except ScratchnetError:  # a file of the user's own (Boston), or MNIST not here
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path,
                        help="configs to measure (default: every one in configs/)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs each run trains (1)")
    parser.add_argument("--check-epochs", action="store_true",
                        help="also measure 2 epochs, to show that 1 reaches the peak")
    args = parser.parse_args()
    configs = args.configs or sorted((ROOT / "configs").glob("*.yaml"))
    print("\nMemory: the estimate of `show` against the peak resident memory of "
          f"`scratchnet train -q` ({args.epochs} epoch{'s' if args.epochs != 1 else ''})\n")
    head = "| config | estimate MiB | measured MiB | estimate / measured |"
    rule = "| --- | ---: | ---: | ---: |"
    if args.check_epochs:
        head, rule = head + " 2 epochs MiB |", rule + " ---: |"
    print(f"{head}\n{rule}", flush=True)
    missed = []
    with tempfile.TemporaryDirectory() as out:
        for config in configs:
            guess = estimate(config)
            if guess is None:
                continue
            measured = peak_rss(config, args.epochs, out)
            ratio = guess / measured
            line = f"| {config.stem} | {guess / MIB:,.0f} | {measured / MIB:,.0f} | {ratio:.2f} |"
            if args.check_epochs:
                line += f" {peak_rss(config, 2, out) / MIB:,.0f} |"
            print(line, flush=True)
            if abs(ratio - 1) > TOLERANCE:
                missed.append(config.stem)
    print(f"\nwithin {TOLERANCE:.0%}: " + ("every config" if not missed else
                                           f"all but {', '.join(missed)}"))


if __name__ == "__main__":
    main()
