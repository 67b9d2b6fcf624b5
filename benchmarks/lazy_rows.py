"""What keeping MNIST's 8-bit images 8-bit buys and costs: peak memory and epoch time of
``scratchnet train configs/mnist_tanh.yaml`` with the images scaled a batch at a time as
they are gathered (``ScaledRows``, what the command line does) and with a float32 copy of
them made up front, each run in a fresh process, alternating; and the gather of one batch
of 60 rows alone, both ways.

    python benchmarks/lazy_rows.py [--runs 3] [--epochs 3]

MNIST comes from ``$SCRATCHNET_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist_tanh.yaml"


def child(lazy: bool, out: str, epochs: int) -> None:
    """The command line's train, with the data prepared lazily or not."""
    from scratchnet.cli import main as cli
    from scratchnet.experiment import run
    prepare = run.prepare_data
    run.prepare_data = lambda *args, **kwargs: prepare(*args, **{**kwargs, "lazy": lazy})
    cli(["train", str(CONFIG), "--set", f"train.epochs={epochs}", "--set",
         f"train.eval_every={epochs}", "--quiet", "--out", out])


def measure(lazy: bool, epochs: int) -> tuple[float, list[float], float]:
    """Peak RSS (MB), seconds of each epoch and CPU seconds (user and system, start-up
    and data preparation included) of one run in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="scratchnet-lazy-") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(lazy), out,
                                 str(epochs)], cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("lazy_rows: the training run failed")
        metrics = next(Path(out).glob("*/metrics.jsonl")).read_text().splitlines()
        seconds = [json.loads(line)["seconds"] for line in metrics]
    epoch_seconds = [b - a for a, b in itertools.pairwise([0.0, *seconds])]
    return usage.ru_maxrss * 1024 / 1e6, epoch_seconds, usage.ru_utime + usage.ru_stime


def gather_times(repeats: int = 9) -> dict[str, list[float]]:
    """Microseconds per batch of 60 shuffled rows, from ScaledRows and from a float32 copy."""
    from scratchnet.data import ScaledRows, Scaler, load_dataset
    from scratchnet.nn.rows import gather
    X = load_dataset("mnist", data_dir=os.environ["SCRATCHNET_DATA_DIR"]).X_train
    scaler = Scaler("global").fit(X)
    sources = {"8-bit, scaled as read": ScaledRows(X, scaler, "float32"),
               "float32 copy": scaler.transform(X, "float32")}
    perm = np.random.default_rng(0).permutation(len(X))
    out = np.empty((60, X.shape[1]), np.float32)
    times: dict[str, list[float]] = {k: [] for k in sources}
    for _ in range(repeats):
        for name, source in sources.items():
            seconds = timeit.timeit(lambda source=source: [gather(source, perm[b:b + 60], out)
                                                           for b in range(0, len(X), 60)],
                                    number=1)
            times[name].append(seconds / (len(X) // 60) * 1e6)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        lazy, out, epochs = args.child
        child(lazy == "True", out, int(epochs))
        return 0
    results: dict[bool, tuple[list, list, list]] = {True: ([], [], []), False: ([], [], [])}
    for _ in range(args.runs):
        for lazy in (True, False):
            rss, epochs, cpu = measure(lazy, args.epochs)
            results[lazy][0].append(rss)
            results[lazy][1].extend(epochs[:-1])  # the last epoch also evaluates
            results[lazy][2].append(cpu)
    for lazy, (rss, seconds, cpu) in results.items():
        print(f"{'8-bit, scaled as read' if lazy else 'float32 copy':22s} peak RSS "
              f"{max(rss):.0f} MB, seconds per epoch median {statistics.median(seconds):.3f}"
              f" (min {min(seconds):.3f}) over {len(seconds)} epochs; CPU seconds per run "
              f"median {statistics.median(cpu):.2f} (min {min(cpu):.2f})")
    for name, t in gather_times().items():
        print(f"gather, {name:22s} {statistics.median(t):6.1f} us per batch of 60 rows "
              f"(min {min(t):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
