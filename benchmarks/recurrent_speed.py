"""One forward and backward pass of an LSTM and a GRU layer: scratchnet against PyTorch.

Workload: hidden 256, batch 64, 50 steps, 256 input features (``--features``), float32,
one thread (threadpoolctl's BLAS limit; PyTorch: ``torch.set_num_threads(1)``). A pass is
the layer's forward over a (64, 50, 256) batch from a zero state and its backward from an
output gradient at every step, with every weight gradient and the input gradient (the
layer is not a network's first: an embedding or another layer sits below it):

* ``scratchnet``: ``sn.LSTM(256)`` / ``sn.GRU(256)`` built alone, ``forward`` then
  ``backward``;
* ``torch``: ``torch.nn.LSTM`` / ``torch.nn.GRU`` (``batch_first=True``), the input
  requiring its gradient, ``out.backward(grad)`` (when torch is installed).

Each contender runs in its own process, in interleaved rounds (benchmarks/interleaved.py),
and each round times ``--passes`` passes. Printed: the median milliseconds per pass of
each, its range over the rounds, each process's peak memory (its RSS; and how much of it
came with the passes, over the peak after the imports, the data and the model), and
scratchnet / torch per layer type: the median of the rounds' ratios (each round's two runs
are neighbours in time) and the ratio of the two fastest rounds.

Then (``--epochs N`` rounds, 0 to leave it out) a char-level training epoch of
``configs/text_lstm.yaml`` (the book's corpus from ``$SCRATCHNET_DATA_DIR``; skipped
without it): embedding 32 -> stateful LSTM 256 -> dense to the vocabulary, softmax cross
entropy at every step, Adam 0.002, gradients clipped to a global norm of 5, the training
windows in the config's order, 32 streams a batch, state carried from batch to batch and
reset at the epoch's start; no evaluation. ``scratchnet``: ``Trainer.fit`` of the network
the CLI builds from the file; ``torch``: the same model and batches in PyTorch (an
``nn.Embedding``, ``nn.LSTM``, ``nn.Linear``; ``clip_grad_norm_``, ``torch.optim.Adam``),
the carried state detached between batches. A round is one epoch.

    .venv/bin/python benchmarks/recurrent_speed.py [--rounds 9] [--passes 3] [--epochs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from interleaved import interleaved

ROOT = Path(__file__).resolve().parent.parent
HIDDEN, BATCH, STEPS, SEED = 256, 64, 50, 0


def data(features: int):
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, STEPS, features), dtype=np.float32)
    return x, rng.standard_normal((BATCH, STEPS, HIDDEN), dtype=np.float32)


class Scratchnet:
    def __init__(self, kind: str, features: int):
        import scratchnet as sn
        self.x, self.grad = data(features)
        self.layer = {"lstm": sn.LSTM, "gru": sn.GRU}[kind](HIDDEN)
        self.layer.build((STEPS, features), np.random.default_rng(SEED), np.float32)

    def run(self) -> None:
        self.layer.forward(self.x)
        self.layer.backward(self.grad)


class Torch:
    def __init__(self, kind: str, features: int):
        import torch
        torch.set_num_threads(1)
        torch.manual_seed(SEED)
        x, grad = data(features)
        self.x = torch.from_numpy(x).requires_grad_(True)
        self.grad = torch.from_numpy(grad)
        self.layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
            features, HIDDEN, batch_first=True)

    def run(self) -> None:
        self.layer.zero_grad()
        self.x.grad = None
        out, _ = self.layer(self.x)
        out.backward(self.grad)


TEXT_CONFIG = ROOT / "configs" / "text_lstm.yaml"


def text_config():
    from scratchnet.config.loading import load_config
    return load_config(TEXT_CONFIG)


def text_windows(cfg):
    """The training windows (ids in, next ids out), as the CLI cuts them."""
    from scratchnet.experiment.build import prepare_data
    data = prepare_data(cfg)
    return data.X_train, data.Y_train, data.vocabulary.size


class ScratchnetEpoch:
    def __init__(self, kind: str, features: int):
        from scratchnet import Trainer
        from scratchnet.experiment.build import build_network, build_optimizer
        from scratchnet.experiment.plan import plan_experiment
        self.cfg = cfg = text_config()
        self.X, self.Y, _ = text_windows(cfg)
        plan = plan_experiment(cfg)
        net = build_network(cfg, plan.input_shape, sizes=plan.sizes)
        self.trainer = Trainer(net, build_optimizer(cfg), text=True)

    def run(self) -> None:
        self.trainer.fit(self.X, self.Y, epochs=1, batch_size=self.cfg.train.batch_size,
                         seed=self.cfg.seed, shuffle=False)


class TorchEpoch:
    def __init__(self, kind: str, features: int):
        import torch
        torch.set_num_threads(1)
        torch.manual_seed(SEED)
        cfg = text_config()
        X, Y, vocab = text_windows(cfg)
        layers = cfg.model.layers
        self.batch, self.clip = cfg.train.batch_size, cfg.optimizer.clip_norm
        self.X, self.Y = torch.from_numpy(X).long(), torch.from_numpy(Y).long()
        self.embed = torch.nn.Embedding(vocab, layers[0].dim)
        self.lstm = torch.nn.LSTM(layers[0].dim, layers[1].hidden_size, batch_first=True)
        self.dense = torch.nn.Linear(layers[1].hidden_size, vocab)
        self.params = [*self.embed.parameters(), *self.lstm.parameters(),
                       *self.dense.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.optimizer.lr)
        self.loss = torch.nn.CrossEntropyLoss()

    def run(self) -> None:
        import torch
        state = None  # reset at the epoch's start, carried row by row after
        for start in range(0, len(self.X), self.batch):
            x, y = self.X[start:start + self.batch], self.Y[start:start + self.batch]
            self.optimizer.zero_grad()
            out, (h, c) = self.lstm(self.embed(x), state)
            state = (h.detach(), c.detach())
            scores = self.dense(out)
            self.loss(scores.reshape(-1, scores.shape[-1]), y.reshape(-1)).backward()
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            self.optimizer.step()


CONTENDERS = {"scratchnet": Scratchnet, "torch": Torch}
EPOCH_CONTENDERS = {"scratchnet": ScratchnetEpoch, "torch": TorchEpoch}


def worker(name: str, kind: str, passes: int, features: int) -> None:
    """Answer each line on stdin with the seconds of one round (the first line: ready)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        contender = (EPOCH_CONTENDERS if kind == "text" else CONTENDERS)[name](kind, features)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, Linux
        for _ in range(2):  # warm-up: buffers, caches, first-call costs
            contender.run()
        print(json.dumps({"ready": True, "before_mib": before}), flush=True)
        for _ in sys.stdin:
            t0 = time.perf_counter()
            for _ in range(passes):
                contender.run()
            print(json.dumps({"seconds": (time.perf_counter() - t0) / passes}), flush=True)


def compare(names: list[str], kinds: list[str], rounds: int, args, unit: tuple[str, float],
            title: str) -> None:
    """Time each (contender, kind) in interleaved rounds; print the times, the peak memory
    and scratchnet / torch per kind."""
    runs = [(name, kind) for kind in kinds for name in names]
    ready, times, peak_mib = interleaved(
        {run: [sys.executable, __file__, "--worker", *run, "--passes", str(args.passes),
               "--features", str(args.features)] for run in runs}, rounds, ROOT)
    before_mib = {run: message["before_mib"] for run, message in ready.items()}
    label, scale = unit
    print(title)
    median = {run: statistics.median(t) for run, t in times.items()}
    for run in runs:
        spread = f"{min(times[run]) * scale:.1f}-{max(times[run]) * scale:.1f}"
        print(f"  {run[1]:4s} {run[0]:10s} {median[run] * scale:7.1f} {label}  (rounds {spread}"
              f" {label})  peak RSS {peak_mib[run]:4.0f} MiB, of which the work "
              f"{peak_mib[run] - before_mib[run]:4.0f} MiB")
    for kind in kinds:
        if ("torch", kind) in median:
            ours, theirs = times[("scratchnet", kind)], times[("torch", kind)]
            paired = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
            print(f"{kind}: scratchnet / torch {paired:.2f} (median of the rounds' ratios; "
                  f"fastest rounds {min(ours) / min(theirs):.2f}; target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--passes", type=int, default=3, help="passes timed per round")
    parser.add_argument("--features", type=int, default=256, help="input features")
    parser.add_argument("--kinds", default="lstm,gru")
    parser.add_argument("--epochs", type=int, default=5,
                        help="rounds of text_lstm's epoch (0: leave it out)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.passes, args.features)
    names = ["scratchnet"]
    # Looked up, not imported: a child's peak RSS starts from its parent's (Linux carries
    # it over fork and exec), and torch would put 200 MiB in every child's peak.
    if importlib.util.find_spec("torch") is not None:
        names.append("torch")
    else:
        print("torch is not installed: pip install torch==2.13.0 to compare", file=sys.stderr)
    kinds = [k for k in args.kinds.split(",") if k]
    if kinds:
        compare(names, kinds, args.rounds, args, ("ms", 1e3),
                f"ms per forward + backward pass, hidden {HIDDEN}, batch {BATCH}, {STEPS} "
                f"steps, {args.features} features, float32, 1 thread (median of "
                f"{args.rounds} rounds of {args.passes}):")
    if args.epochs and not os.environ.get("SCRATCHNET_DATA_DIR"):
        print("the text_lstm epoch needs the book's corpus: set SCRATCHNET_DATA_DIR",
              file=sys.stderr)
    elif args.epochs:
        args.passes = 1
        compare(names, ["text"], args.epochs, args, ("s", 1.0),
                f"seconds per training epoch of {TEXT_CONFIG.relative_to(ROOT)} (its training "
                f"windows in order, a batch of its streams at a time), float32, 1 thread "
                f"(median of {args.epochs} epochs):")


if __name__ == "__main__":
    main()
