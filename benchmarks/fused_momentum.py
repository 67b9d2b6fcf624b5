"""An experiment behind issue 20's closing note: what folding SGD momentum's velocity update
into the weight gradient's matrix product would save.

The Trainer computes ``grad = x.T @ g`` (one GEMM into the gradient), then the optimizer
updates ``v = momentum * v + lr * grad`` and ``W -= v`` (two ``axpby`` passes over memory).
Folded, one GEMM writes the velocity directly (``v = lr * (x.T @ g) + momentum * v``,
BLAS's ``beta``) and only ``W -= v`` remains: one pass over the weights fewer, but the
gradient is never stored, so clipping, weight decay, the health checks and gradcheck,
which read it, could not run, and the velocity rounds differently in the last bit.

This script measures it for the first layer of 784 -> width tanh -> 10 on random data,
batches of 60, through ``Trainer.fit`` (the folded run replaces that layer's gradient
product and the optimizer's step, nothing else), interleaved, median of 5 epochs:

    python benchmarks/fused_momentum.py [--widths 256,1024,4096] [--threads 1,2]

It needs NumPy linked to OpenBLAS (the wheels' default).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratchnet import Dense, NeuralNetwork, SGDMomentum, Trainer  # noqa: E402
from scratchnet.nn import blas  # noqa: E402

LR, MOMENTUM, BATCH = 0.1, 0.9, 60
ROWS = {256: 30000, 1024: 12000, 4096: 4800}  # as make bench's width table
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def sgemm():
    lib = blas.library()
    f = getattr(lib, "scipy_cblas_sgemm64_", None) if lib is not None else None
    if f is None:
        sys.exit("fused_momentum: NumPy's BLAS is not the OpenBLAS of NumPy's wheels")
    size, real, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
    f.argtypes = [ctypes.c_int] * 3 + [size] * 3 + [real, ptr, size, ptr, size, real, ptr, size]
    f.restype = None
    return f


def folded(trainer: Trainer, gemm) -> None:
    """Make ``trainer`` write layer 0's velocity in its gradient product (for fits with
    ``restart=False``: a restart builds new arrays, which this would not follow)."""
    params = trainer.net.params()
    first, op = params[0], trainer.net.layers[0].operations[0]
    n = first.value.size
    velocity = np.zeros(params.flat.value.size, np.float32)  # all parameters', end to end
    v_first, v_rest = velocity[:n], velocity[n:]
    p_rest, g_rest = params.flat.value[n:], params.flat.grad[n:]
    rows, cols = first.shape
    rest_velocity, rest_apply = blas.axpby(g_rest, v_rest), blas.axpby(v_rest, p_rest)
    first_apply = blas.axpby(v_first, first.value)

    def param_grad(output_grad):
        x = op.input_
        gemm(ROW_MAJOR, TRANS, NO_TRANS, rows, cols, x.shape[0], LR, x.ctypes.data, rows,
             output_grad.ctypes.data, cols, MOMENTUM, v_first.ctypes.data, cols)

    class Folded(SGDMomentum):
        def step(self, params, lr):  # the rest as now; layer 0's velocity is already made
            rest_velocity(lr, MOMENTUM)
            rest_apply(-1.0, 1.0)
            first_apply(-1.0, 1.0)

    op._param_grad = param_grad
    trainer.optimizer = Folded(LR, momentum=MOMENTUM)


def measure(width: int, threads: int, gemm) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS.get(width, 4800), 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, len(X))]
    trainers = []
    for fold in (False, True):
        net = NeuralNetwork([Dense(width, "tanh"), Dense(10, "linear")],
                            "softmax_cross_entropy", seed=1).build(784)
        trainer = Trainer(net, SGDMomentum(LR, momentum=MOMENTUM), blas_threads=threads)
        if fold:
            folded(trainer, gemm)
        trainers.append(trainer)
    times: list[list[float]] = [[], []]
    for epoch in range(6):  # the first is a warm-up
        for trainer, spent in zip(trainers, times, strict=True):
            t0 = time.perf_counter()
            trainer.fit(X, Y, epochs=1, batch_size=BATCH, seed=epoch, restart=False)
            if epoch:
                spent.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="256,1024,4096")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    gemm = sgemm()
    print(f"{'width':>6s} {'threads':>7s} {'as now s':>9s} {'folded s':>9s} {'folded/now':>11s}")
    for width in (int(w) for w in args.widths.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            now, fold = measure(width, threads, gemm)
            print(f"{width:6d} {threads:7d} {now:9.3f} {fold:9.3f} {fold / now:10.3f}x",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
