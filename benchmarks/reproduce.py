"""Run the notebook's experiments with the real CLI and write the scoreboard.

    make reproduce            # or: python benchmarks/reproduce.py [--out runs/reproduce]

Trains configs/mnist_01..11 (the notebook's protocol), configs/mnist_best.yaml (the
honest protocol) and the three diabetes regression configs, each through
``scratchnet train --json --quiet``, and writes ``docs/reproduction.md``: the notebook's
printed result beside ours, the epoch where training stopped, and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: config stem -> (the notebook's printed result, what it printed about stopping)
NOTEBOOK = {
    "mnist_01_tanh_sigmoid_mse": ("72.58%", "50/10"),
    "mnist_02_sigmoid_ce": ("91.04%", "stopped at 24"),
    "mnist_03_relu_ce": ("76.38%", "stopped at 20"),
    "mnist_04_tanh_ce": ("91.01%", "stopped at 50"),
    "mnist_05_sigmoid_momentum": ("92.12%", "stopped at 4"),
    "mnist_06_tanh_momentum": ("95.51%", "stopped at 50"),
    "mnist_07_linear_decay": ("95.91%", "stopped at 40"),
    "mnist_08_exponential_decay": ("96.06%", "stopped at 40"),
    "mnist_09_glorot": ("96.96%", "stopped at 40"),
    "mnist_10_glorot_dropout": ("96.95%", "stopped at 50"),
    "mnist_11_glorot_no_dropout": ("96.71%", "stopped at 40"),
    "mnist_best": ("-", "-"),
    "diabetes_linear": ("Boston: MAE 3.52, RMSE 5.01", "50"),
    "diabetes_one_hidden": ("Boston: MAE 2.60, RMSE 4.03", "50"),
    "diabetes_two_hidden": ("Boston: MAE 2.45, RMSE 3.83", "50"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "reproduce"))
    parser.add_argument("--report", default=str(ROOT / "docs" / "reproduction.md"))
    parser.add_argument("--only", nargs="*", help="config stems to run (default: all)")
    args = parser.parse_args()
    stems = args.only or list(NOTEBOOK)
    configs = [ROOT / "configs" / f"{s}.yaml" for s in stems]
    missing = [str(c) for c in configs if not c.exists()]
    if missing:
        print(f"missing configs: {', '.join(missing)}", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "scratchnet", "train", *map(str, configs), "--json", "--quiet",
           "--out", args.out]
    print("running:", " ".join(cmd[2:]), file=sys.stderr)
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    by_name = {r["name"]: r for r in results}
    rows = []
    for stem in stems:
        r = by_name.get(stem)
        nb, nb_stop = NOTEBOOK[stem]
        if r is None or r.get("status") != "completed":
            rows.append(f"| {stem} | {nb} | {r.get('status') if r else 'not run'}: "
                        f"{(r or {}).get('error', '')} | | | |")
            continue
        test = r["test"]
        ours = (f"{100 * test['accuracy']:.2f}%" if "accuracy" in test
                else f"MAE {test['mae']:.2f}, RMSE {test['rmse']:.2f}, R² {test['r2']:.3f}")
        stop = f"{r['epochs_run']}" + (" (early)" if r["stopped_early"] else "")
        rows.append(f"| {stem} | {nb} ({nb_stop}) | {ours} | {stop} | {r['best_epoch']} | "
                    f"{r['seconds']:.1f} |")
    header = (f"Run with `make reproduce` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
              f"{time.time() - t0:.0f} s in all.\n\n"
              "| experiment | notebook | scratchnet (test) | epochs run | best epoch | seconds |\n"
              "| --- | --- | --- | --- | --- | --- |\n")
    table = header + "\n".join(rows) + "\n"
    print(table)
    report = Path(args.report)
    if report.exists() and "<!-- table -->" in report.read_text():
        before, _, rest = report.read_text().partition("<!-- table -->")
        _, _, after = rest.partition("<!-- /table -->")
        report.write_text(f"{before}<!-- table -->\n{table}<!-- /table -->{after}")
    else:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"# Reproducing the notebook\n\n<!-- table -->\n{table}<!-- /table -->\n")
    return 0 if proc.returncode == 0 else proc.returncode


if __name__ == "__main__":
    sys.exit(main())
