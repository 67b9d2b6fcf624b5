"""What health's hook in the recurrent backward loop costs: the backward pass of an RNN, an
LSTM and a GRU layer with the hook's test (``grad_probe`` None, health off), without it
(the loop as it was before the hook, copied below), and with the hook armed (health's norm
of every step's state gradient, as on the one batch per epoch health watches).

Workloads (float32, one BLAS thread): the adding problem's (hidden 32, batch 50, 50 steps,
2 features), where the Python of each step weighs most, and a text model's (hidden 256,
batch 64, 100 steps, 64 features). All three contenders run in one process, in
interleaved rounds (the same forward pass, then each one's backward in turn, the order
turning every round), so a busy moment of the machine hits them alike. Printed: the
median milliseconds of a backward pass of each, and the medians of the rounds' ratios
to the loop without the hook.

    .venv/bin/python benchmarks/recurrent_hook.py [--rounds 41]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import scratchnet as sn
from scratchnet.nn.health import _record_norm
from scratchnet.nn.recurrent_ops import RecurrentOp

WORKLOADS = {"adding": (32, 50, 50, 2), "text": (256, 64, 100, 64)}  # H, B, T, F


def _without_hook(self, output_grad, steps, dh):
    """``RecurrentOp._steps_back`` as it was before health's hook."""
    dh.fill(0)
    for t in reversed(range(steps)):
        if self.return_sequences:
            dh += output_grad[:, t]
        elif t == steps - 1:
            dh += output_grad
        yield t


def _backward_ms(layer, grad, op, mode: str) -> float:
    with_hook = RecurrentOp._steps_back
    if mode == "without hook":
        RecurrentOp._steps_back = _without_hook
    op.grad_probe = functools.partial(_record_norm, {}) if mode == "hook armed" else None
    try:
        start = time.perf_counter()
        layer.backward(grad)
        return 1000 * (time.perf_counter() - start)
    finally:
        RecurrentOp._steps_back = with_hook
        op.grad_probe = None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)
    modes = ("without hook", "hook off", "hook armed")
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for workload, (H, B, T, F) in WORKLOADS.items():
            for kind in (sn.RNN, sn.LSTM, sn.GRU):
                layer = kind(H)
                layer.build((T, F), np.random.default_rng(0), np.float32)
                x = rng.standard_normal((B, T, F), dtype=np.float32)
                grad = rng.standard_normal((B, T, H), dtype=np.float32)
                op = layer.operations[0]
                times = {m: [] for m in modes}
                for k in range(args.rounds + 1):  # the first round warms up
                    order = modes[k % 3:] + modes[:k % 3]
                    for mode in order:
                        layer.forward(x)
                        ms = _backward_ms(layer, grad, op, mode)
                        if k:
                            times[mode].append(ms)
                base = times["without hook"]
                ratios = {m: statistics.median(a / b for a, b in zip(times[m], base, strict=True))
                          for m in modes[1:]}
                print(f"{workload:>6} {kind.__name__:<4} backward ms: "
                      + ", ".join(f"{m} {statistics.median(times[m]):.3f}" for m in modes)
                      + "; ratio to without: "
                      + ", ".join(f"{m} {r:.3f}" for m, r in ratios.items()), flush=True)


if __name__ == "__main__":
    main()
