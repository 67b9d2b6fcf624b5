"""Seconds per MNIST epoch of the CNN benchmark network: scratchnet, PyTorch and the floor.

Network: conv(1->16, 5x5, same, relu) -> max-pool 2 -> conv(16->32, 5x5, same, relu) ->
max-pool 2 -> flatten -> dense 10; softmax cross entropy, SGD momentum 0.9, batch 64,
float32, at one BLAS thread and again at two (``--threads 1,2``; PyTorch:
``torch.set_num_threads``). Each contender's peak memory (its process's RSS) is printed
beside its time.

Contenders, each in its own process, run interleaved (benchmarks/interleaved.py); each
round trains ``--batches`` batches of the real, shuffled MNIST training images, and the
median round is scaled to an epoch of 60,000 images (938 batches):

* ``scratchnet``: ``Trainer.fit`` on the images as (N, 1, 28, 28);
* ``torch``: the same network in PyTorch CPU eager (when torch is installed);
* ``floor``: the matrix products of those batches alone, as scratchnet's im2col shapes
  them: per batch the two convolutions' forward products and weight gradients, the second
  convolution's input gradient (the first needs none), and the dense layer's three
  products, on prebuilt columns into preallocated outputs.

    .venv/bin/python benchmarks/cnn_speed.py [--batches 150] [--rounds 5] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from interleaved import interleaved

ROOT = Path(__file__).resolve().parents[1]
BATCH, EPOCH_IMAGES, LR, MOMENTUM, SEED = 64, 60_000, 0.05, 0.9, 0


def mnist(n: int):
    """The first ``n`` training images as float32 (n, 1, 28, 28) in [0, 1], one-hot labels."""
    from scratchnet.data import load_dataset
    ds = load_dataset("mnist", download=False)  # from $SCRATCHNET_DATA_DIR
    X = (ds.X_train[:n].reshape(-1, 1, 28, 28) / np.float32(255)).astype(np.float32)
    return X, np.eye(10, dtype=np.float32)[ds.y_train[:n]]


class Scratchnet:
    def __init__(self, X, Y, threads: int = 1):
        import scratchnet as sn
        self.X, self.Y = X, Y
        net = sn.NeuralNetwork([sn.Conv2D(16, 5, activation="relu"), sn.MaxPool2D(2),
                                sn.Conv2D(32, 5, activation="relu"), sn.MaxPool2D(2),
                                sn.Flatten(), sn.Dense(10)], "softmax_cross_entropy",
                               seed=SEED).build((1, 28, 28))
        self.trainer = sn.Trainer(net, sn.SGDMomentum(LR, momentum=MOMENTUM),
                                  blas_threads=threads)
        self.rounds = 0

    def run(self) -> None:
        self.trainer.fit(self.X, self.Y, epochs=1, batch_size=BATCH, seed=self.rounds,
                         restart=False)
        self.rounds += 1


class Torch:
    def __init__(self, X, Y, threads: int = 1):
        import torch
        torch.set_num_threads(threads)
        torch.manual_seed(SEED)
        nn = torch.nn
        self.torch = torch
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
        self.model = nn.Sequential(nn.Conv2d(1, 16, 5, padding="same"), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Conv2d(16, 32, 5, padding="same"),
                                   nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                   nn.Linear(32 * 7 * 7, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss = nn.CrossEntropyLoss()

    def run(self) -> None:
        perm = self.torch.randperm(len(self.X))
        for i in range(0, len(self.X), BATCH):
            idx = perm[i:i + BATCH]
            self.opt.zero_grad()
            self.loss(self.model(self.X[idx]), self.y[idx]).backward()
            self.opt.step()


class Floor:
    def __init__(self, X, Y, threads: int = 1):
        rng = np.random.default_rng(SEED)
        f32 = np.float32
        self.batches = -(-len(X) // BATCH)
        # (weight (F, K), columns (K, P), output gradient (F, P), needs input gradient)
        self.convs = []
        for c, f, hw, input_grad in ((1, 16, 28, False), (16, 32, 14, True)):
            k, p = c * 25, hw * hw * BATCH
            self.convs.append((rng.standard_normal((f, k), dtype=f32),
                               rng.standard_normal((k, p), dtype=f32),
                               rng.standard_normal((f, p), dtype=f32), input_grad,
                               np.empty((f, p), f32), np.empty((f, k), f32),
                               np.empty((k, p), f32)))
        self.dense = (rng.standard_normal((BATCH, 1568), dtype=f32),
                      rng.standard_normal((1568, 10), dtype=f32),
                      rng.standard_normal((BATCH, 10), dtype=f32))

    def run(self) -> None:
        matmul = np.matmul
        x, W, g = self.dense
        for _ in range(self.batches):
            for Wc, cols, gc, input_grad, out, dW, dcols in self.convs:
                matmul(Wc, cols, out=out)
                matmul(gc, cols.T, out=dW)
                if input_grad:
                    matmul(Wc.T, gc, out=dcols)
            x @ W
            x.T @ g
            g @ W.T


CONTENDERS = {"scratchnet": Scratchnet, "torch": Torch, "floor": Floor}


def worker(name: str, batches: int, threads: int) -> None:
    """Answer each line on stdin with the seconds of one round (the first line: ready)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(threads, user_api="blas"):
        contender = CONTENDERS[name](*mnist(batches * BATCH), threads)
        contender.run()  # warm-up: buffers, caches, first-call costs
        print(json.dumps({"ready": True}), flush=True)
        for _ in sys.stdin:
            t0 = time.perf_counter()
            contender.run()
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2",
                        help="BLAS (and PyTorch) thread counts, comma-separated")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(n) for n in str(args.threads).split(",") if n.strip()]
    if args.worker:
        return worker(args.worker, args.batches, counts[0])
    kinds = ["scratchnet", "floor"]
    try:
        import torch  # noqa: F401
        kinds.insert(1, "torch")
    except ImportError:
        print("torch is not installed: pip install torch==2.13.0 to compare", file=sys.stderr)
    names = [f"{kind} {n}T" for n in counts for kind in kinds]
    _, times, peak_mib = interleaved(
        {f"{kind} {n}T": [sys.executable, __file__, "--worker", kind, "--batches",
                          str(args.batches), "--threads", str(n)]
         for n in counts for kind in kinds}, args.rounds, ROOT)
    scale = EPOCH_IMAGES / (args.batches * BATCH)
    epoch = {n: statistics.median(t) * scale for n, t in times.items()}
    print(f"seconds per 60,000-image epoch (median of {args.rounds} rounds of "
          f"{args.batches} batches of {BATCH}, scaled):")
    for n in names:
        spread = f"{min(times[n]) * scale:.1f}-{max(times[n]) * scale:.1f}"
        print(f"  {n:14s} {epoch[n]:6.1f} s  (rounds {spread} s)  peak RSS "
              f"{peak_mib[n]:5.0f} MiB")
    for n in counts:
        s, f, t = (epoch.get(f"{kind} {n}T") for kind in ("scratchnet", "floor", "torch"))
        line = f"{n} thread{'s' if n > 1 else ''}: scratchnet / floor {s / f:.2f} (target <= 2)"
        if t:
            line += f", scratchnet / torch {s / t:.2f} (target <= 1.5)"
        print(line)


if __name__ == "__main__":
    main()
