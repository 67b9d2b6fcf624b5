"""Run the notebook's experiments with the real CLI, over five seeds and both stopping
rules, and write the reproduction report.

    make reproduce                                  # report in runs/reproduce/reproduction.md
    make reproduce REPORT=docs/reproduction.md      # the committed report
    python benchmarks/reproduce.py --boston BostonHousing.csv    # adds the Boston rows
    python benchmarks/reproduce.py --only mnist_09_glorot diabetes_linear --seeds 1

Trains configs/mnist_01..11 (the notebook's protocol), configs/mnist_best.yaml (the honest
protocol), the three diabetes regressions and, given your copy of the data with
``--boston CSV``, the three Boston ones, each through ``scratchnet train --json --quiet``,
with each config's own seed and then ``--set seed=N`` for every N of ``--seeds`` (1 2 3 4
by default: five seeds in all). A config that stops at the first evaluation that does not
improve (``train.early_stopping: true``) is trained twice per seed: with our rule (put
back the best evaluated weights, epoch E - eval_every) and with the notebook's
(``--set train.early_stopping=notebook``: the copy taken at the start of epoch E, the
weights after E - 1, never evaluated). Every table says which number comes from which.

Runs already completed in ``--out`` (found by the hash of their resolved config) are read,
not trained again, so an interrupted report continues where it stopped; ``--jobs N``
trains N groups at once.

The tables go between markers in the report (``<!-- mnist -->``, ``<!-- seeds -->``,
``<!-- regression -->``, each closed by ``<!-- /name -->``), so the prose around them
survives re-runs; a report that does not exist yet starts as a copy of
docs/reproduction.md. The default report is under runs/ (untracked); ``--report
docs/reproduction.md`` rewrites the committed one.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS_REPORT = ROOT / "docs" / "reproduction.md"
RULES = {"notebook": "the notebook's rule", "ours": "ours"}

#: config stem -> (the notebook's printed result: accuracy in %, or Boston's (MAE, RMSE);
#: what it printed about stopping); mnist_best and diabetes have nothing to reach
NOTEBOOK: dict[str, tuple] = {
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
    "diabetes_linear": (None, "no notebook number (another data set)"),
    "diabetes_one_hidden": (None, "no notebook number (another data set)"),
    "diabetes_two_hidden": (None, "no notebook number (another data set)"),
    "boston_linear": ((3.52, 5.01), "MAE 3.52, RMSE 5.01"),
    "boston_one_hidden": ((2.60, 4.03), "MAE 2.60, RMSE 4.03"),
    "boston_two_hidden": ((2.45, 3.83), "MAE 2.45, RMSE 3.83"),
}
BOSTON = [s for s in NOTEBOOK if s.startswith("boston")]


def run_cli(stems: list[str], out: str, seed: int | None,
            overrides: list[str]) -> tuple[dict[str, dict], int]:
    """Train the configs (all with ``seed`` when given) in one CLI process; returns
    ``(name -> JSON summary, exit code)``."""
    configs = [f"configs/{s}.yaml" for s in stems]  # run from ROOT, so relative paths work
    cmd = [sys.executable, "-m", "scratchnet", "train", *configs, "--json", "--quiet", "--out", out]
    for item in ([f"seed={seed}"] if seed is not None else []) + overrides:
        cmd += ["--set", item]
    print("running: scratchnet " + shlex.join(cmd[3:]), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    results = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            r = json.loads(line)
            results[r["name"]] = r
    return results, proc.returncode


def finished_runs(out: Path) -> dict[str, dict]:
    """The completed runs already in ``out``, by the hash of their resolved config (what
    an interrupted or extended report reuses instead of training again)."""
    found = {}
    for path in out.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        if summary.get("status") == "completed":
            found[summary["config_hash"]] = summary
    return found


def load_config(stem: str, overrides: list[str] = ()):
    from scratchnet.config import load_config as load

    return load(ROOT / "configs" / f"{stem}.yaml", list(overrides))


def rules_of(cfg) -> tuple[str, ...]:
    """Both rules for a config that stops at the first evaluation that does not improve
    (the notebook's ``early_stopping=True``), ours alone for any other."""
    return tuple(RULES) if cfg.train.early_stopping is True else ("ours",)


# -- reading the runs -----------------------------------------------------------------------
def accuracy(r: dict | None) -> float | None:
    """Test accuracy in % of a completed classification run."""
    if not r or r.get("status") != "completed" or "accuracy" not in r["test"]:
        return None
    return 100 * r["test"]["accuracy"]


def spread(values: list[float], digits: int = 2, unit: str = "") -> str:
    """``mean ± std [min, max]`` (sample standard deviation)."""
    if not values:
        return "no completed run"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{statistics.mean(values):.{digits}f}{unit} ± {std:.{digits}f} "
            f"[{min(values):.{digits}f}, {max(values):.{digits}f}]")


def in_range(target: float, values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if low <= target <= high:
        return "yes"
    return f"no: {target - high:+.2f} above" if target > high else f"no: {low - target:.2f} below"


def kept(r: dict | None) -> str:
    """One run as ``accuracy (epoch of the weights kept)``."""
    value = accuracy(r)
    if value is None:
        return (r or {}).get("status", "not run")
    epoch = r.get("weights_epoch", r.get("best_epoch"))
    return f"{value:.2f} ({epoch})"


# -- the tables -----------------------------------------------------------------------------
def mnist_table(stems, results, seeds) -> str:
    rows = []
    for stem in stems:
        printed, stop = NOTEBOOK.get(stem, (None, "-"))
        cells = [stem, f"{printed:.2f}% ({stop})" if printed is not None else stop]
        for rule in RULES:
            values = [v for v in (accuracy(results[stem].get(rule, {}).get(s)) for s in seeds)
                      if v is not None]
            if rule not in results[stem]:
                cells += ["-", ""]
            else:
                cells += [spread(values, unit="%"),
                          in_range(printed, values) if printed is not None else ""]
        rows.append("| " + " | ".join(cells) + " |")
    return ("| experiment | notebook printed | the notebook's rule | notebook in its range "
            "| ours (best evaluated weights) | notebook in our range |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")


def seeds_table(stems, results, seeds) -> str:
    head = " | ".join(seeds)
    rows = [f"| {stem} | {RULES[rule]} | " + " | ".join(kept(results[stem][rule].get(s))
                                                       for s in seeds) + " |"
            for stem in stems for rule in RULES if rule in results[stem]]
    return (f"| experiment | rule | {head} |\n| --- | --- | {' | '.join('---' for _ in seeds)} |\n"
            + "\n".join(rows) + "\n")


def least_squares(cfg) -> dict:
    """Ordinary least squares on the config's own split (its split seed): test MAE,
    RMSE and R^2, the yardstick for the regressions."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from scratchnet.experiment import load_data

    ds = load_data(cfg)
    pred = LinearRegression().fit(ds.X_train, ds.y_train).predict(ds.X_test)
    error = pred - ds.y_test
    ss_tot = ((ds.y_test - ds.y_test.mean()) ** 2).sum()
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "r2": float(1 - (error ** 2).sum() / ss_tot)}


def regression_table(stems, results, seeds, cfgs) -> str:
    rows = []
    for stem in stems:
        printed, said = NOTEBOOK.get(stem, (None, "-"))
        ols = least_squares(cfgs[stem])
        for rule in RULES:
            runs = [results[stem].get(rule, {}).get(s) for s in seeds]
            runs = [r for r in runs if r and r.get("status") == "completed"]
            if rule not in results[stem]:
                continue
            mae = [r["test"]["mae"] for r in runs]
            cells = [stem, RULES[rule], said, spread(mae),
                     in_range(printed[0], mae) if printed else "",
                     spread([r["test"]["rmse"] for r in runs]),
                     spread([r["test"]["r2"] for r in runs], digits=3),
                     f"MAE {ols['mae']:.2f}, RMSE {ols['rmse']:.2f}, R² {ols['r2']:.3f}"]
            rows.append("| " + " | ".join(cells) + " |")
    return ("| model | rule | notebook printed | test MAE | notebook in range | test RMSE "
            "| test R² | least squares, same split |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")


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
    parser.add_argument("--report", default=None, help="the report to write (default: "
                        "reproduction.md in --out; docs/reproduction.md is the committed one)")
    parser.add_argument("--only", nargs="+", metavar="STEM",
                        help="config stems to run (default: every experiment above)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3, 4], metavar="N",
                        help="seeds after each config's own (default: 1 2 3 4)")
    parser.add_argument("--boston", metavar="CSV", help="your copy of the Boston housing "
                        "data: adds the three Boston regressions")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="CLI processes "
                        "training at once (each runs one rule and seed of a group)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="passed to every run (a quick check: "
                        "--set train.epochs=1)")
    args = parser.parse_args(argv)
    stems = args.only or [s for s in NOTEBOOK if args.boston or s not in BOSTON]
    missing = [s for s in stems if not (ROOT / "configs" / f"{s}.yaml").exists()]
    if missing:
        print(f"no such config: {', '.join(f'configs/{s}.yaml' for s in missing)}",
              file=sys.stderr)
        return 2
    if any(s in BOSTON for s in stems) and not args.boston:
        print("the Boston configs need your copy of the data: --boston BostonHousing.csv",
              file=sys.stderr)
        return 2

    def overrides_of(stem: str) -> list[str]:
        path = [f"data.path={Path(args.boston).resolve()}"] if stem in BOSTON else []
        return path + args.overrides

    t0 = time.time()
    out = str(Path(args.out).resolve())  # the CLI runs in ROOT
    seeds = [None, *args.seeds]
    names = ["own" if s is None else str(s) for s in seeds]
    from scratchnet.experiment import plan_experiment

    cfgs = {stem: load_config(stem, overrides_of(stem)) for stem in stems}
    results = {stem: {rule: {} for rule in rules_of(cfgs[stem])} for stem in stems}
    done = finished_runs(Path(out))
    jobs = []  # (stems, seed, its column, rule, the overrides they all take)
    # one CLI process per (rule, seed, data): Boston's path would break the others
    groups = [[s for s in stems if (s in BOSTON) == boston] for boston in (False, True)]
    for group in filter(None, groups):
        for rule in RULES:
            for seed, name in zip(seeds, names, strict=True):
                extra = ["train.early_stopping=notebook"] if rule == "notebook" else []
                members = []
                for stem in [s for s in group if rule in results[s]]:
                    sets = (([f"seed={seed}"] if seed is not None else []) + extra
                            + overrides_of(stem))
                    found = done.get(load_config(stem, sets).digest())
                    if found:  # trained by an earlier run of this script into --out
                        results[stem][rule][name] = found
                    else:
                        members.append(stem)
                if members:
                    jobs.append((members, seed, name, rule, extra + overrides_of(members[0])))
    trained = sum(len(j[0]) for j in jobs)
    reused = sum(len(v) for rules in results.values() for v in rules.values())
    print(f"{trained} runs to train, {reused} found in {out}", file=sys.stderr, flush=True)
    code = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = pool.map(lambda job: run_cli(job[0], out, job[1], job[4]), jobs)
        for (members, _, name, rule, _), (got, rc) in zip(jobs, finished, strict=True):
            code = code or rc
            for stem in members:
                results[stem][rule][name] = got.get(cfgs[stem].name)
    report = Path(args.report) if args.report else Path(out) / "reproduction.md"
    if not report.exists() and DOCS_REPORT.exists():
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(DOCS_REPORT.read_text())
    own = "each config's own (own)" + (f", then {', '.join(map(str, args.seeds))}"
                                       if args.seeds else "")
    header = (f"Run with `python benchmarks/reproduce.py` on {time.strftime('%Y-%m-%d')}, "
              f"{os.cpu_count()} cores, {time.time() - t0:.0f} s for {trained} runs"
              + (f" ({reused} more read from earlier runs)" if reused else "") + f"; seeds: {own}; "
              "mean ± sample standard deviation [min, max].\n\n")
    regressions = [s for s in stems if plan_experiment(cfgs[s]).data.task == "regression"]
    classes = [s for s in stems if s not in regressions]
    if classes:
        write_section(report, "mnist", header + mnist_table(classes, results, names))
        write_section(report, "seeds", "Test accuracy (epoch of the weights kept):\n\n"
                      + seeds_table(classes, results, names))
    if regressions:
        write_section(report, "regression", header
                      + regression_table(regressions, results, names, cfgs))
    print(f"report: {report}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
