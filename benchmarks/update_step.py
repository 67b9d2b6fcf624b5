"""SGD momentum's update three ways, behind the choice in ``scratchnet/nn/blas.py``:
OpenBLAS's ``axpby`` through ctypes (``blas.axpby``, what the optimizer uses), SciPy's
``sscal`` + ``saxpy`` (``scipy.linalg.blas`` has no ``axpby``) and NumPy in place.

    python benchmarks/update_step.py [--threads 1] [--repeats 15]

For the flat float32 parameters of 784 -> width tanh -> 10 at widths 89, 1024 and 4096:
microseconds per update (``v = m*v + lr*g; p -= v``), minimum and median of interleaved
repeats, and whether each way gives the same bits as ``axpby`` under the kernel that runs
(``threadpoolctl`` names it; ``OPENBLAS_CORETYPE`` picks another).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit

import numpy as np
from scipy.linalg import blas as scipy_blas
from threadpoolctl import threadpool_info, threadpool_limits

from scratchnet.nn import blas

LR, MOMENTUM = 0.1, 0.9


def ways(g, v, p) -> dict:
    velocity, apply = blas.axpby(g, v), blas.axpby(v, p)

    def axpby():
        velocity(LR, MOMENTUM)
        apply(-1.0, 1.0)

    def scipy():
        scipy_blas.sscal(MOMENTUM, v)
        scipy_blas.saxpy(g, v, a=LR)
        scipy_blas.saxpy(v, p, a=-1.0)

    def numpy():
        v.__imul__(MOMENTUM)
        v.__iadd__(LR * g)
        p.__isub__(v)
    return {"ctypes axpby": axpby, "scipy sscal+saxpy": scipy, "numpy": numpy}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    threadpool_limits(args.threads, user_api="blas")
    kernels = sorted({lib.get("architecture") for lib in threadpool_info()
                      if lib.get("internal_api") == "openblas"})
    print(f"{args.threads} BLAS thread(s), OpenBLAS kernel(s) {kernels}")
    for width in (89, 1024, 4096):
        n = 784 * width + width + width * 10 + 10
        rng = np.random.default_rng(0)
        g = rng.standard_normal(n).astype(np.float32)
        start = rng.standard_normal((2, n)).astype(np.float32)
        bits = {}
        for name in ways(g, g, g):  # the numbers of three steps from the same start
            v, p = start[0].copy(), start[1].copy()
            for _ in range(3):
                ways(g, v, p)[name]()
            bits[name] = (v.tobytes(), p.tobytes())
        v, p = start[0].copy(), start[1].copy()
        timed = {name: [] for name in bits}
        number = max(1, int(3e6 // n))
        for _ in range(args.repeats):
            for name, step in ways(g, v, p).items():
                timed[name].append(timeit.timeit(step, number=number) / number * 1e6)
        print(f"width {width} ({n:,} numbers):")
        for name, t in timed.items():
            same = "same bits" if bits[name] == bits["ctypes axpby"] else "other bits"
            print(f"  {name:18s} {min(t):9.1f} us min, {statistics.median(t):9.1f} median, "
                  f"{same} as axpby")
    return 0


if __name__ == "__main__":
    sys.exit(main())
