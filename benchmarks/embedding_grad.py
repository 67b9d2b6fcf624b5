"""The embedding's weight gradient: four ways to add gradient rows by id, timed.

``dW[v] = sum of the output-gradient rows at the positions holding id v``, for ids of a
(64, 50) batch (N = 3200 positions) and gradient rows of ``dim`` numbers, float32, one
BLAS thread, into a preallocated (vocab, dim) gradient as a layer keeps it:

* ``add.at``: ``np.add.at(dW, ids, rows)``, the obvious way;
* ``bincount``: one ``np.bincount(ids, weights=rows[:, d])`` per column;
* ``reduceat``: sort the ids, ``np.add.reduceat`` over each run of equal ids (what
  :class:`~scratchnet.nn.embedding.EmbeddingOp` does);
* ``one-hot``: ``one_hot(ids).T @ rows``, a (N, vocab) matrix (small vocabularies only).

Printed: the best of ``--repeats`` runs of each, in ms, per (vocab, dim).

    .venv/bin/python benchmarks/embedding_grad.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

POSITIONS = 64 * 50
SHAPES = [(65, 32), (65, 128), (1000, 64), (30000, 128)]


def add_at(ids, rows, out):
    out.fill(0)
    np.add.at(out, ids, rows)


def bincount(ids, rows, out):
    for d in range(rows.shape[1]):
        out[:, d] = np.bincount(ids, weights=rows[:, d], minlength=len(out))


def reduceat(ids, rows, out):
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    out.fill(0)
    out[ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)


def one_hot(ids, rows, out):
    hot = np.zeros((len(ids), len(out)), rows.dtype)
    hot[np.arange(len(ids)), ids] = 1
    np.matmul(hot.T, rows, out=out)


WAYS = {"add.at": add_at, "bincount": bincount, "reduceat": reduceat, "one-hot": one_hot}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"ms per gradient, {POSITIONS} positions, float32 (best of {args.repeats}):")
    print(f"  {'vocab':>6s} {'dim':>4s}" + "".join(f"{name:>10s}" for name in WAYS))
    with threadpool_limits(1, user_api="blas"):
        for vocab, dim in SHAPES:
            ids = rng.integers(0, vocab, POSITIONS)
            rows = rng.standard_normal((POSITIONS, dim), dtype=np.float32)
            reference = np.zeros((vocab, dim), np.float32)
            add_at(ids, rows, reference)
            cells = []
            for name, way in WAYS.items():
                if name == "one-hot" and vocab * POSITIONS > 10**7:
                    cells.append(f"{'-':>10s}")
                    continue
                out = np.empty((vocab, dim), np.float32)
                way(ids, rows, out)
                np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
                best = float("inf")
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    way(ids, rows, out)
                    best = min(best, time.perf_counter() - t0)
                cells.append(f"{best * 1e3:10.3f}")
            print(f"  {vocab:6d} {dim:4d}" + "".join(cells))


if __name__ == "__main__":
    main()
