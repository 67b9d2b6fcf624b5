"""Run the notebook's experiments with the real CLI and write the scoreboard.

    make reproduce                       # or: python benchmarks/reproduce.py
    python benchmarks/reproduce.py --seeds 1 2 3 4     # also the spread over more seeds
    python benchmarks/reproduce.py --only mnist_09_glorot diabetes_linear
    python benchmarks/reproduce.py --seeds 1 2 3 4 --notebook-rule   # the docs' tables

Trains configs/mnist_01..11 (the notebook's protocol), configs/mnist_best.yaml (the
honest protocol) and the three diabetes regression configs, each through
``scratchnet train --json --quiet``, and writes ``docs/reproduction.md``: the notebook's
printed result beside ours (with each config's own seed), the epoch where training
stopped, the best epoch and seconds. With ``--seeds`` every config is trained again with
``--set seed=N`` for each N, and a second table gives, per experiment, the mean, spread
and range over all seeds (the config's own included) and how many runs reached the
notebook's number.

With ``--notebook-rule`` the MNIST configs that evaluate every k > 1 epochs are trained
once more per seed, evaluated after every epoch and never stopped (evaluation draws no
random numbers, so the training is the same run), and a third table compares two readings
of each run: ours (at the first evaluation E whose loss did not improve, put back the
weights of the previous evaluation, E - k) and the notebook's trainer, which at that point
put back a copy it had taken at the *start* of epoch E, i.e. the weights after epoch
E - 1, whose loss it never evaluated (its message says "the model from epoch E - k").

Each table is written between its own markers (``<!-- table -->``, ``<!-- seeds -->``,
``<!-- rule -->``, each closed by ``<!-- /name -->``), so the prose around them survives
re-runs; a run without ``--seeds`` or ``--notebook-rule`` leaves those tables as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: config stem -> (the notebook's printed accuracy in %, or None, what it printed about
#: stopping); the regression rows print the notebook's Boston numbers, which are not
#: comparable with diabetes (another data set), so they have no number to reach.
NOTEBOOK: dict[str, tuple[float | None, str]] = {
    "mnist_01_tanh_sigmoid_mse": (72.58, "50 epochs"),
    "mnist_02_sigmoid_ce": (91.04, "stopped at 24"),
    "mnist_03_relu_ce": (76.38, "stopped at 20"),
    "mnist_04_tanh_ce": (91.01, "stopped at 50"),
    "mnist_05_sigmoid_momentum": (92.12, "stopped at 4"),
    "mnist_06_tanh_momentum": (95.51, "stopped at 50"),
    "mnist_07_linear_decay": (95.91, "stopped at 40"),
    "mnist_08_exponential_decay": (96.06, "stopped at 40"),
    "mnist_09_glorot": (96.96, "stopped at 40"),
    "mnist_10_glorot_dropout": (96.95, "stopped at 50"),
    "mnist_11_glorot_no_dropout": (96.71, "stopped at 40"),
    "mnist_best": (None, "goal: 98.00%"),
    "diabetes_linear": (None, "Boston: MAE 3.52, RMSE 5.01"),
    "diabetes_one_hidden": (None, "Boston: MAE 2.60, RMSE 4.03"),
    "diabetes_two_hidden": (None, "Boston: MAE 2.45, RMSE 3.83"),
}


def notebook_cell(stem: str) -> str:
    printed, stop = NOTEBOOK.get(stem, (None, "-"))
    return f"{printed:.2f}% ({stop})" if printed is not None else stop


def run_cli(stems: list[str], out: str, seed: int | None,
            overrides: tuple[str, ...] = ()) -> tuple[dict[str, dict], int, float]:
    """Train the configs (all with ``seed`` when given) in one CLI process; returns
    ``(name -> JSON summary, exit code, seconds)``."""
    configs = [f"configs/{s}.yaml" for s in stems]  # run from ROOT, so relative paths work
    cmd = [sys.executable, "-m", "scratchnet", "train", *configs, "--json", "--quiet", "--out", out]
    if seed is not None:
        cmd += ["--set", f"seed={seed}"]
    for item in overrides:
        cmd += ["--set", item]
    print("running: scratchnet " + shlex.join(cmd[3:]), file=sys.stderr, flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    results = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            r = json.loads(line)
            results[r["name"]] = r
    return results, proc.returncode, time.time() - t0


def score(r: dict | None) -> float | None:
    """Test accuracy in % (classification) or test RMSE (regression) of a completed run."""
    if not r or r.get("status") != "completed":
        return None
    test = r["test"]
    return 100 * test["accuracy"] if "accuracy" in test else test["rmse"]


def ours_cell(r: dict | None) -> str:
    if not r or r.get("status") != "completed":
        status = r.get("status", "not run") if r else "not run"
        return f"{status}: {(r or {}).get('error', '')}".strip()
    test = r["test"]
    if "accuracy" in test:
        return f"{100 * test['accuracy']:.2f}%"
    return f"MAE {test['mae']:.2f}, RMSE {test['rmse']:.2f}, R² {test['r2']:.3f}"


def main_table(stems: list[str], results: dict[str, dict], seconds: float) -> str:
    rows = []
    for stem in stems:
        r = results.get(stem)
        printed = NOTEBOOK.get(stem, (None, ""))[0]
        ours = score(r)
        diff = f"{ours - printed:+.2f}" if printed is not None and ours is not None else ""
        if r and r.get("status") == "completed":
            stop = f"{r['epochs_run']}" + (" (early)" if r["stopped_early"] else "")
            rest = f"{stop} | {r['best_epoch']} | {r['seconds']:.1f}"
        else:
            rest = " | | "
        rows.append(f"| {stem} | {notebook_cell(stem)} | {ours_cell(r)} | {diff} | {rest} |")
    return (f"Run with `make reproduce` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
            f"{seconds:.0f} s in all; each config's own seed.\n\n"
            "| experiment | notebook | scratchnet (test) | difference (points) | epochs run "
            "| best epoch | seconds |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")


def seeds_table(stems: list[str], per_seed: dict[str, dict[str, dict]], seeds: list[str],
                seconds: float) -> str:
    rows = []
    for stem in stems:
        printed = NOTEBOOK.get(stem, (None, ""))[0]
        values = [score(per_seed[s].get(stem)) for s in seeds]
        done = [v for v in values if v is not None]
        regression = any(r.get(stem, {}).get("task") == "regression" for r in per_seed.values())
        unit = "" if regression else "%"
        if not done:
            rows.append(f"| {stem} | {notebook_cell(stem)} | no completed run | | | | |")
            continue
        spread = statistics.stdev(done) if len(done) > 1 else 0.0
        reached = (f"{sum(v >= printed for v in done)}/{len(done)}" if printed is not None
                   else "")
        each = ", ".join("-" if v is None else f"{v:.2f}" for v in values)
        rows.append(f"| {stem} | {notebook_cell(stem)} | {statistics.mean(done):.2f}{unit} "
                    f"± {spread:.2f} | {min(done):.2f}{unit} | {max(done):.2f}{unit} | {reached} "
                    f"| {each} |")
    what = "test RMSE for regression, test accuracy otherwise"
    return (f"Run with `python benchmarks/reproduce.py --seeds {' '.join(seeds[1:])}` on "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {seconds:.0f} s in all: "
            f"seeds: each config's own, then {', '.join(seeds[1:])} ({what}; mean ± sample "
            "standard deviation).\n\n"
            "| experiment | notebook | mean ± std | min | max | runs ≥ notebook "
            "| per seed (own first) |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")


def read_epochs(run_dir: str) -> dict[int, dict]:
    """epoch -> metrics record of a run evaluated after every epoch."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return {r["epoch"]: r for r in map(json.loads, filter(str.strip, lines))}


def stopping_rules(records: dict[int, dict], every: int, epochs: int) -> tuple[int, int]:
    """The epoch whose weights each trainer ends with, given every epoch's test loss:
    ``(ours, the notebook's)``. Both evaluate every ``every`` epochs and stop at the first
    evaluation E whose loss is not below the best; ours then puts back the best evaluated
    weights (epoch E - every), the notebook's the copy taken at the start of epoch E."""
    best, best_epoch = float("inf"), None
    for epoch in range(every, epochs + 1, every):
        loss = records[epoch]["val_loss"]
        if loss < best:
            best, best_epoch = loss, epoch
        else:
            return best_epoch, epoch - 1
    return best_epoch, epochs


def rule_table(stems: list[str], per_seed: dict[str, dict[str, dict]], seconds: float) -> str:
    rows = []
    for stem in stems:
        printed = NOTEBOOK[stem][0]
        ours, theirs, where = [], [], []
        for results in per_seed.values():
            r = results.get(stem)
            if not r or r.get("status") != "completed":
                continue
            cfg = load_train(stem)  # the run itself evaluated every epoch
            records = read_epochs(r["run_dir"])
            mine, nb = stopping_rules(records, cfg["eval_every"], cfg["epochs"])
            ours.append(100 * records[mine]["accuracy"])
            theirs.append(100 * records[nb]["accuracy"])
            where.append(f"{ours[-1]:.2f} → {theirs[-1]:.2f} ({mine}/{nb})")
        if not ours:
            rows.append(f"| {stem} | {notebook_cell(stem)} | no completed run | | | |")
            continue

        def stats(v):
            return f"{statistics.mean(v):.2f}% ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
        rows.append(f"| {stem} | {notebook_cell(stem)} | {stats(ours)} | {stats(theirs)} "
                    f"| {sum(v >= printed for v in theirs)}/{len(theirs)} | {', '.join(where)} |")
    return (f"Run with `python benchmarks/reproduce.py --notebook-rule` on "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {seconds:.0f} s for these "
            f"runs; seeds: each config's own, then the --seeds ones; each run evaluated on "
            "the test split after every epoch, then read with either stopping rule.\n\n"
            "| experiment | notebook | ours: best evaluated weights | notebook's rule: "
            "weights after epoch E - 1 | runs ≥ notebook (its rule) | per seed, own first: "
            "ours → its rule (epochs kept) |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")


def write_section(report: Path, marker: str, table: str) -> None:
    """Put ``table`` between ``<!-- marker -->`` and ``<!-- /marker -->`` in the report,
    appending the section when the markers are missing."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    text = report.read_text() if report.exists() else "# Reproducing the notebook\n"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        text = f"{before}{start}\n{table}{end}{after}"
    else:
        text = f"{text.rstrip()}\n\n{start}\n{table}{end}\n"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "runs" / "reproduce"),
                        help="where the run folders go")
    parser.add_argument("--report", default=str(ROOT / "docs" / "reproduction.md"))
    parser.add_argument("--only", nargs="+", metavar="STEM",
                        help="config stems to run (default: every experiment above)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[], metavar="N",
                        help="also train every config with these seeds (--set seed=N)")
    parser.add_argument("--notebook-rule", action="store_true",
                        help="also read the MNIST runs with the notebook's stopping rule")
    args = parser.parse_args(argv)
    stems = args.only or list(NOTEBOOK)
    missing = [s for s in stems if not (ROOT / "configs" / f"{s}.yaml").exists()]
    if missing:
        print(f"no such config: {', '.join(f'configs/{s}.yaml' for s in missing)}",
              file=sys.stderr)
        return 2
    t0 = time.time()
    out = str(Path(args.out).resolve())  # the CLI runs in ROOT
    results, code, seconds = run_cli(stems, out, None)
    table = main_table(stems, results, seconds)
    print(table)
    report = Path(args.report)
    write_section(report, "table", table)
    if args.seeds:
        per_seed = {"own": results}
        for seed in args.seeds:
            per_seed[str(seed)], seed_code, _ = run_cli(stems, out, seed)
            code = code or seed_code
        table = seeds_table(stems, per_seed, list(per_seed), time.time() - t0)
        print(table)
        write_section(report, "seeds", table)
    # the rules differ only where the notebook evaluated every k > 1 epochs
    rule_stems = [s for s in stems if args.notebook_rule and NOTEBOOK.get(s, (None,))[0]
                  is not None and load_train(s)["eval_every"] > 1
                  and load_train(s)["early_stopping"]]
    if rule_stems:
        t1 = time.time()
        every_epoch = ("train.eval_every=1", "train.early_stopping=false")
        per_seed = {}
        for seed in [None, *args.seeds]:
            per_seed[str(seed)], seed_code, _ = run_cli(rule_stems, out, seed, every_epoch)
            code = code or seed_code
        table = rule_table(rule_stems, per_seed, time.time() - t1)
        print(table)
        write_section(report, "rule", table)
    return code


def load_train(stem: str) -> dict:
    """The ``train`` section of configs/<stem>.yaml, as the CLI resolves it."""
    from scratchnet.config import load_config

    return load_config(ROOT / "configs" / f"{stem}.yaml").train.model_dump()


if __name__ == "__main__":
    sys.exit(main())
