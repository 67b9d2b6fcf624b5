"""``bench.py --scaling``: where an epoch's time goes, over widths, depths and batch sizes.

For every combination of hidden width (89, 256, 1024, 4096), depth (1, 2, 4 hidden tanh
layers) and batch size (16, 60, 256, 1024) of a 784 -> hidden... -> 10 softmax network
trained with SGD momentum, in float32, one process, three contenders run interleaved
(A B C A B C ...) on the same random data:

* ``Trainer.fit`` for one epoch: the real training loop;
* the same loop written out with a timer around each phase: gather (the shuffled batch's
  rows), forward, loss (forward and gradient), backward, update (the optimizer step);
* the floor: the epoch's matrix products alone (each layer's ``x @ W`` forward, ``x.T @ g``
  weight gradient and, except for the first layer, ``g @ W.T`` input gradient) on
  contiguous slices into preallocated outputs, timed apart as forward and backward
  products.

The table gives the Trainer's epoch as a multiple of the floor and, for each phase, the
time above its share of the floor (gather, loss and update have none) as a percentage of
the floor: the non-matrix time, and where it goes. An epoch is cut to the rows that make
its floor last about ``--seconds`` (at least 20 batches), so the table takes minutes, not
hours; the ratios do not depend on the number of rows.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scratchnet import Dense, NeuralNetwork, SGDMomentum, Trainer  # noqa: E402
from scratchnet.nn.rows import gather  # noqa: E402
from scratchnet.nn.blas import thread_limit  # noqa: E402

FEATURES, CLASSES, LR, MOMENTUM = 784, 10, 0.01, 0.9
WIDTHS, DEPTHS, BATCHES = (89, 256, 1024, 4096), (1, 2, 4), (16, 60, 256, 1024)
PHASES = ("gather", "forward", "loss", "backward", "update")


def sizes(width: int, depth: int) -> list[int]:
    return [FEATURES] + [width] * depth + [CLASSES]


def floor_flops_per_row(width: int, depth: int) -> int:
    dims = sizes(width, depth)
    pairs = list(itertools.pairwise(dims))
    return sum(2 * a * b * (2 if i == 0 else 3) for i, (a, b) in enumerate(pairs))


class Case:
    """One (width, depth, batch) combination: its data, network, trainer and floor."""

    def __init__(self, width: int, depth: int, batch: int, rows: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.batch, self.rows = batch, rows
        self.X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
        self.Y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, rows)]
        layers = [Dense(width, "tanh") for _ in range(depth)] + [Dense(CLASSES, "linear")]
        self.net = NeuralNetwork(layers, "softmax_cross_entropy", seed=seed).build(FEATURES)
        self.trainer = Trainer(self.net, SGDMomentum(LR, momentum=MOMENTUM), blas_threads=None)
        self.optimizer = SGDMomentum(LR, momentum=MOMENTUM)
        self.rng = np.random.default_rng(seed + 1)
        self.epochs = 0
        # the floor's own weights and buffers
        dims = sizes(width, depth)
        self.W = [rng.standard_normal((a, b), dtype=np.float32) * 0.01
                  for a, b in itertools.pairwise(dims)]
        self.dW = [np.empty_like(w) for w in self.W]
        self.acts = [np.empty((batch, b), np.float32) for b in dims[1:]]
        self.grads = [np.full((batch, b), 1e-3, np.float32) for b in dims[1:]]
        self.in_grads = [np.empty((batch, a), np.float32) for a in dims[1:-1]]

    def fit(self) -> float:
        t0 = time.perf_counter()
        self.trainer.fit(self.X, self.Y, epochs=1, batch_size=self.batch, seed=self.epochs,
                         restart=False)
        self.epochs += 1
        return time.perf_counter() - t0

    def phases(self) -> dict[str, float]:
        """The Trainer's loop with a timer around each phase (full batches only)."""
        net, opt, params, b = self.net, self.optimizer, self.net.params(), self.batch
        perm = self.rng.permutation(self.rows)
        xb = np.empty((b, FEATURES), np.float32)
        yb = np.empty((b, CLASSES), np.float32)
        spent = dict.fromkeys(PHASES, 0.0)
        clock = time.perf_counter
        for start in range(0, self.rows - b + 1, b):
            idx = perm[start:start + b]
            t0 = clock()
            gather(self.X, idx, xb)
            gather(self.Y, idx, yb)
            t1 = clock()
            out = net.forward(xb)
            t2 = clock()
            net.loss.forward(out, yb)
            grad = net.loss.backward()
            t3 = clock()
            net.backward(grad)
            t4 = clock()
            opt.step(params, LR)
            t5 = clock()
            spent["gather"] += t1 - t0
            spent["forward"] += t2 - t1
            spent["loss"] += t3 - t2
            spent["backward"] += t4 - t3
            spent["update"] += t5 - t4
        return spent

    def floor(self) -> dict[str, float]:
        W, dW, acts, grads, in_grads, b = (self.W, self.dW, self.acts, self.grads,
                                           self.in_grads, self.batch)
        matmul, clock = np.matmul, time.perf_counter
        fwd = bwd = 0.0
        for start in range(0, self.rows - b + 1, b):
            x = self.X[start:start + b]
            t0 = clock()
            a = x
            for w, out in zip(W, acts, strict=True):
                matmul(a, w, out=out)
                a = out
            t1 = clock()
            for i in range(len(W) - 1, -1, -1):
                below = x if i == 0 else acts[i - 1]
                matmul(below.T, grads[i], out=dW[i])
                if i > 0:
                    matmul(grads[i], W[i].T, out=in_grads[i - 1])
            t2 = clock()
            fwd += t1 - t0
            bwd += t2 - t1
        return {"forward": fwd, "backward": bwd}


GFLOPS = 40e9  # about what one core's BLAS does: sizes the epochs, nothing more
MAX_BATCH_SECONDS = 0.5  # a combination whose one batch takes longer is left out


def batch_seconds(width: int, depth: int, batch: int) -> float:
    """About how long one batch's floor takes on one core."""
    return batch * floor_flops_per_row(width, depth) / GFLOPS


def measure(width: int, depth: int, batch: int, seconds: float, rounds: int) -> dict:
    rows = int(seconds * GFLOPS / floor_flops_per_row(width, depth))
    rows = max(3 * batch, min(60000, rows)) // batch * batch
    case = Case(width, depth, batch, rows)
    case.fit(), case.phases(), case.floor()  # warm-up
    fits, phases, floors = [], [], []
    for _ in range(rounds):
        fits.append(case.fit())
        phases.append(case.phases())
        floors.append(case.floor())
    floor = {k: statistics.median(f[k] for f in floors) for k in ("forward", "backward")}
    phase = {k: statistics.median(p[k] for p in phases) for k in PHASES}
    return {"width": width, "depth": depth, "batch": batch, "rows": rows,
            "fit": statistics.median(fits), "floor": floor["forward"] + floor["backward"],
            "floor_parts": floor, "phases": phase}


def row_text(r: dict) -> str:
    floor = r["floor"]
    above = {"gather": r["phases"]["gather"], "loss": r["phases"]["loss"],
             "update": r["phases"]["update"],
             "forward": r["phases"]["forward"] - r["floor_parts"]["forward"],
             "backward": r["phases"]["backward"] - r["floor_parts"]["backward"]}
    per_k = 1000 * 1000 / r["rows"]  # ms per 1,000 rows
    cells = " ".join(f"{100 * above[k] / floor:9.0f}%" for k in PHASES)
    return (f"{r['width']:6d} {r['depth']:5d} {r['batch']:5d} {r['rows']:6d} "
            f"{floor * per_k:9.2f} {r['fit'] / floor:7.2f}x {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter epochs, 2 rounds")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="about how long each floor epoch lasts (default 0.25, quick 0.1)")
    parser.add_argument("--rounds", type=int, default=None, help="measured rounds (default 3)")
    parser.add_argument("--all", action="store_true",
                        help="also the combinations whose one batch takes over 0.5 s")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.1 if args.quick else 0.25)
    rounds = args.rounds or (2 if args.quick else 3)
    ints = lambda text: [int(v) for v in text.split(",") if v.strip()]  # noqa: E731
    print(f"scratchnet cost table: float32, SGD momentum, {args.threads} BLAS thread(s), "
          f"median of {rounds} interleaved rounds after a warm-up")
    print("ratio = Trainer.fit epoch / floor (the matrix products alone); the phase columns "
          "are the time above the floor's share, as % of the floor")
    header = (f"{'width':>6s} {'depth':>5s} {'batch':>5s} {'rows':>6s} {'floor ms':>9s} "
              f"{'ratio':>8s} " + " ".join(f"{k:>10s}" for k in PHASES))
    print(f"{'':32s}{'(per 1k rows)':>13s}")
    print(header)
    print("-" * len(header))
    with thread_limit(args.threads):
        for width in ints(args.widths):
            for depth in ints(args.depths):
                for batch in ints(args.batches):
                    if not args.all and batch_seconds(width, depth, batch) > MAX_BATCH_SECONDS:
                        print(f"{width:6d} {depth:5d} {batch:5d}  left out (one batch's floor "
                              f"~{batch_seconds(width, depth, batch):.0f} s; --all)")
                        continue
                    print(row_text(measure(width, depth, batch, seconds, rounds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
