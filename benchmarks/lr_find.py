"""Does the rate ``scratchnet lr-find`` suggests train as well as the shipped config's own?

    python benchmarks/lr_find.py                        # digits, and MNIST with its data
    python benchmarks/lr_find.py --seeds 1 2 3          # also with --set seed=N
    python benchmarks/lr_find.py --rules valley minimum steep --batches 100 300

For each config (configs/digits_quickstart.yaml, and configs/mnist_tanh.yaml when
$SCRATCHNET_DATA_DIR is set) and each seed (the config's own, then ``--set seed=N``), it
runs ``scratchnet lr-find CONFIG --json`` and trains, through ``scratchnet train --json
--quiet``, the shipped config and the shipped config at each suggested rate with the
``--set`` overrides lr-find prints (docs/lr-find.md). Rules: ``valley`` (what lr-find
suggests) and, read off the same smoothed curve and its same search range, fastai's
other two: ``minimum`` (a tenth of the rate of the lowest loss) and ``steep`` (the rate
where the loss falls fastest per unit of log rate). Prints one markdown table of test
accuracies; the run folders go to a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ["configs/digits_quickstart.yaml", "configs/mnist_tanh.yaml"]
SCRATCHNET = [sys.executable, "-m", "scratchnet"]


def run_json(args: list[str]) -> dict:
    proc = subprocess.run([*SCRATCHNET, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"scratchnet {shlex.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def other_rules(r: dict) -> dict[str, float]:
    """fastai's ``minimum`` and ``steep`` on the smoothed curve of an lr-find report,
    over the points its valley search uses (from its start to the last five)."""
    from scratchnet.lr_find import SKIP_END, RangeTest

    rates, smoothed = np.array(r["rates"]), np.array(r["smoothed"])
    first, stop = RangeTest(batches=r["batches"]).skip_start, len(smoothed) - SKIP_END
    rates, smoothed = rates[first:stop], smoothed[first:stop]
    slope = np.diff(smoothed) / np.diff(np.log(rates))
    return {"minimum": rates[np.argmin(smoothed)] / 10, "steep": rates[np.argmin(slope)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="seeds besides the config's own (--set seed=N)")
    parser.add_argument("--rules", nargs="+", default=["valley"],
                        choices=["valley", "minimum", "steep"])
    parser.add_argument("--batches", type=int, nargs="+", default=[None],
                        help="lr-find --batches (default: lr-find's own)")
    parser.add_argument("--configs", nargs="+", default=None)
    args = parser.parse_args()
    configs = args.configs or [c for c in CONFIGS
                               if "mnist" not in c or os.environ.get("SCRATCHNET_DATA_DIR")]
    from scratchnet.config import load_config
    from scratchnet.lr_find import suggested_overrides

    print("| config | seed | shipped lr: test accuracy | lr-find batches | rule | suggested "
          "lr (`--set`) | test accuracy | difference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as out:
        for config in configs:
            for seed in [None, *args.seeds]:
                seeded = [] if seed is None else ["--set", f"seed={seed}"]
                cfg = load_config(ROOT / config, seeded[1:])
                train = ["train", config, "--json", "--quiet", "--out", out, *seeded]
                shipped = run_json(train)["test"]["accuracy"]
                for batches in args.batches:
                    more = [] if batches is None else ["--batches", str(batches)]
                    r = run_json(["lr-find", config, "--json", *seeded, *more])
                    rules = {"valley": r["suggestion"], **other_rules(r)}
                    for rule in args.rules:
                        lr = float(f"{rules[rule]:.2g}")
                        sets = suggested_overrides(cfg, lr)
                        got = run_json([*train, *[w for s in sets for w in ("--set", s)]])
                        accuracy = got["test"]["accuracy"]
                        print(f"| {Path(config).stem} | {cfg.seed} | {cfg.optimizer.lr:g}: "
                              f"{100 * shipped:.2f}% | {r['batches']} | {rule} | "
                              f"{', '.join(sets)} | {100 * accuracy:.2f}% | "
                              f"{100 * (accuracy - shipped):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
