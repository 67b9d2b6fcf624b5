"""Which memory layout makes im2col convolution fastest here? A timing script (not a test)
behind the choice stated in ``scratchnet/nn/conv.py``.

A (N, C, H, W) batch can sit in memory in any axis order behind that shape (a transposed
view). For the two convolutions of the CNN benchmark (MNIST, batch 64, 5x5 "same":
1->16 channels on 28x28, then 16->32 on 14x14), each layout runs one training step's
convolution work: padding, im2col, the forward product, the weight gradient and (second
convolution only: a network's first layer needs no input gradient) the input gradient
with col2im. Float32, one BLAS thread, best of ``--repeats`` runs of ``--steps`` steps;
inputs and output gradients arrive in the layout's own memory order, as they would
inside a network built on it.

Layouts (memory order, then the columns' shape; P = positions per image,
K = C*KH*KW):

* ``NCHW  (K, N*P)``: plain C order; one wide product ``W (F, K) @ cols``, whose
  (F, N, H', W') result is copied to (N, F, H', W').
* ``NCHW  (N, K, P)``: plain C order; a stacked ``matmul`` over the images gives
  (N, F, P), which is C order already; the weight gradient sums N products.
* ``NHWC  (N*P, K)``: channels last (PyTorch's ``channels_last``); one row per output
  position, products (N*P, F) that are the next layer's channels-last input.
* ``CNHW  (K, N*P)``: channel planes of the whole batch; the wide product's
  (F, N, H', W') result is that layout already.
* ``CHWN  (K, P*N)``: the batch innermost (cuda-convnet's layout); a window offset of
  the whole batch is one run of W'*N contiguous numbers, and the product is (F, H', W', N).

``--matmul-only`` also times the wide products alone on prebuilt columns (the same FLOPs
for every layout). ``--pools`` times three ways of 2x2 max pooling, forward and backward
with first-maximum ties, on the benchmark's two pool inputs in batch-innermost memory:
a reshape to (N, C, H', 2, W', 2) with ``max`` over the window axes and ``argmax`` over a
copy of the windows; a loop over the four window offsets with masked copies
(``np.copyto(where=)``); the same loop with arithmetic ufuncs only.

    .venv/bin/python benchmarks/conv_layouts.py --matmul-only --pools
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

N, KS = 64, 5
PAD = KS // 2
CONVS = [(1, 16, 28, False), (16, 32, 14, True)]  # (C, F, H = W, needs input gradient)


def windows(mem, h_axis):
    """Zero-pad the spatial axes ``h_axis, h_axis + 1`` of a memory-order array and view
    its KS x KS windows: the window offsets become two trailing axes."""
    pad = [(0, 0)] * 4
    pad[h_axis] = pad[h_axis + 1] = (PAD, PAD)
    padded = np.pad(mem, pad)
    return padded, sliding_window_view(padded, (KS, KS), axis=(h_axis, h_axis + 1))


_SCRATCH: dict = {}


def scratch(key, shape) -> np.ndarray:
    """A buffer kept from one step to the next (a fresh 20 MB array per step costs page
    faults: about 14 ms of a 42 ms step, measured here)."""
    if key not in _SCRATCH or _SCRATCH[key].shape != shape:
        _SCRATCH[key] = np.empty(shape, np.float32)
    return _SCRATCH[key]


def im2col(window_view, shape) -> np.ndarray:
    """The window view copied, in the view's axis order, into a kept buffer of ``shape``."""
    buf = scratch(("cols",) + shape, window_view.shape)
    np.copyto(buf, window_view)
    return buf.reshape(shape)


def product(a, b) -> np.ndarray:
    """``a @ b`` into a kept buffer (the input gradient's columns)."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    return np.matmul(a, b, out=scratch(("dcols", a.shape, b.shape), shape))


def col2im(dx_pad, dcols, h_axis):
    """Add each window offset's gradient ``dcols[i, j]`` into the padded input gradient,
    shifted by (i, j) along its spatial axes ``h_axis, h_axis + 1``."""
    h, w = dcols.shape[2 + h_axis], dcols.shape[3 + h_axis]
    for i in range(KS):
        for j in range(KS):
            index = [slice(None)] * 4
            index[h_axis], index[h_axis + 1] = slice(i, i + h), slice(j, j + w)
            dx_pad[tuple(index)] += dcols[i, j]


# Each layout takes x and dy as C-contiguous arrays in its memory order, W as
# (F, C, KH, KW), and returns (output in its memory order, dW, dx or None).
def nchw_wide(x, W, dy, input_grad):  # x (N, C, H, W)
    n, c, h, w = x.shape
    f = W.shape[0]
    xp, win = windows(x, 2)  # (N, C, H', W', KH, KW)
    cols = im2col(win.transpose(1, 4, 5, 0, 2, 3), (c * KS * KS, n * h * w))
    W2 = W.reshape(f, -1)
    out = np.ascontiguousarray((W2 @ cols).reshape(f, n, h, w).transpose(1, 0, 2, 3))
    g = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(f, -1)
    dW = g @ cols.T
    if not input_grad:
        return out, dW, None
    dcols = product(W2.T, g).reshape(c, KS, KS, n, h, w).transpose(1, 2, 0, 3, 4, 5)
    dx_pad = np.zeros((c, n) + xp.shape[2:], x.dtype)  # (C, N, Hp, Wp), copied back below
    col2im(dx_pad, dcols, 2)
    return out, dW, np.ascontiguousarray(dx_pad.transpose(1, 0, 2, 3)[:, :, PAD:-PAD, PAD:-PAD])


def nchw_stacked(x, W, dy, input_grad):  # x (N, C, H, W)
    n, c, h, w = x.shape
    f = W.shape[0]
    xp, win = windows(x, 2)
    cols = im2col(win.transpose(0, 1, 4, 5, 2, 3), (n, c * KS * KS, h * w))
    W2 = W.reshape(f, -1)
    out = np.matmul(W2, cols).reshape(n, f, h, w)
    g = dy.reshape(n, f, h * w)
    dW = np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0)
    if not input_grad:
        return out, dW, None
    dcols = product(W2.T, g).reshape(n, c, KS, KS, h, w).transpose(2, 3, 0, 1, 4, 5)
    dx_pad = np.zeros_like(xp)
    col2im(dx_pad, dcols, 2)
    return out, dW, dx_pad[:, :, PAD:-PAD, PAD:-PAD]


def nhwc_rows(x, W, dy, input_grad):  # x (N, H, W, C)
    n, h, w, c = x.shape
    f = W.shape[0]
    xp, win = windows(x, 1)  # (N, H', W', C, KH, KW)
    cols = im2col(win.transpose(0, 1, 2, 4, 5, 3), (n * h * w, KS * KS * c))
    W2 = W.transpose(0, 2, 3, 1).reshape(f, -1)  # (F, KH*KW*C), the columns' order
    out = (cols @ W2.T).reshape(n, h, w, f)
    g = dy.reshape(-1, f)
    dW = (g.T @ cols).reshape(f, KS, KS, c).transpose(0, 3, 1, 2)
    if not input_grad:
        return out, dW, None
    dcols = product(g, W2).reshape(n, h, w, KS, KS, c).transpose(3, 4, 0, 1, 2, 5)
    dx_pad = np.zeros_like(xp)
    col2im(dx_pad, dcols, 1)
    return out, dW, dx_pad[:, PAD:-PAD, PAD:-PAD]


def channels_first(x, W, dy, input_grad, h_axis):
    """Memory (C, N, H, W) (``h_axis`` 2) or (C, H, W, N) (``h_axis`` 1): the channels
    outermost, so the wide product's (F, ...) result is the same layout again."""
    c, rest, f = x.shape[0], x.shape[1:], W.shape[0]
    xp, win = windows(x, h_axis)  # (C, three axes of rest, KH, KW)
    cols = im2col(win.transpose(0, 4, 5, 1, 2, 3), (c * KS * KS, np.prod(rest)))
    W2 = W.reshape(f, -1)
    out = (W2 @ cols).reshape((f,) + rest)
    g = dy.reshape(f, -1)
    dW = g @ cols.T
    if not input_grad:
        return out, dW, None
    dx_pad = np.zeros_like(xp)
    dcols = product(W2.T, g).reshape((c, KS, KS) + rest).transpose(1, 2, 0, 3, 4, 5)
    col2im(dx_pad, dcols, h_axis)
    inner = [slice(None)] * 4
    inner[h_axis] = inner[h_axis + 1] = slice(PAD, -PAD)
    return out, dW, dx_pad[tuple(inner)]


def channel_major(x, W, dy, input_grad):  # x (C, N, H, W)
    return channels_first(x, W, dy, input_grad, 2)


def batch_last(x, W, dy, input_grad):  # x (C, H, W, N)
    return channels_first(x, W, dy, input_grad, 1)


#: name -> (the function, its memory order as NCHW axes)
LAYOUTS = {
    "NCHW  (K, N*P)": (nchw_wide, (0, 1, 2, 3)),
    "NCHW  (N, K, P)": (nchw_stacked, (0, 1, 2, 3)),
    "NHWC  (N*P, K)": (nhwc_rows, (0, 2, 3, 1)),
    "CNHW  (K, N*P)": (channel_major, (1, 0, 2, 3)),
    "CHWN  (K, P*N)": (batch_last, (1, 2, 3, 0)),
}


def in_memory(a: np.ndarray, order) -> np.ndarray:
    """``a`` (N, C, H, W) transposed to the memory order ``order`` and made contiguous."""
    return np.ascontiguousarray(a.transpose(order))


def make_inputs(order, rng):
    arrays = []
    for c, f, h, input_grad in CONVS:
        x = in_memory(rng.standard_normal((N, c, h, h), dtype=np.float32), order)
        dy = in_memory(rng.standard_normal((N, f, h, h), dtype=np.float32), order)
        W = rng.standard_normal((f, c, KS, KS), dtype=np.float32)
        arrays.append((x, W, dy, input_grad))
    return arrays


def best_time(fn, steps, repeats) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def time_matmuls(steps, repeats) -> float:
    rng = np.random.default_rng(0)
    mats = []
    for c, f, h, input_grad in CONVS:
        k, p = c * KS * KS, N * h * h
        mats.append((rng.standard_normal((k, p), dtype=np.float32),
                     rng.standard_normal((f, k), dtype=np.float32),
                     rng.standard_normal((f, p), dtype=np.float32), input_grad))

    def products():
        for cols, W2, g, input_grad in mats:
            W2 @ cols
            g @ cols.T
            if input_grad:
                W2.T @ g
    return best_time(products, steps, repeats)


def check_agreement() -> None:
    """Every layout computes the same output, dW and dx (up to float32 round-off)."""
    ref = None
    for fn, order in LAYOUTS.values():
        back = np.argsort(order)  # memory order -> NCHW
        got = []
        for x, W, dy, _ in make_inputs(order, np.random.default_rng(0)):
            out, dW, dx = fn(x, W, dy, True)
            got.append((out.transpose(back), dW.reshape(W.shape), dx.transpose(back)))
        for (out, dW, dx), (r_out, r_dW, r_dx) in zip(got, ref or got, strict=True):
            np.testing.assert_allclose(out, r_out, rtol=1e-3, atol=1e-3)
            np.testing.assert_allclose(dW, r_dW, rtol=1e-3, atol=2e-2)
            np.testing.assert_allclose(dx, r_dx, rtol=1e-3, atol=1e-3)
        ref = ref or got


OFFSETS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def pool_reshape(x, grad_out):
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = windows.max(axis=(3, 5))
    flat = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    first = flat.argmax(axis=-1)[..., None]  # argmax takes the first of equal values
    dflat = np.zeros_like(flat)
    np.put_along_axis(dflat, first, grad_out[..., None], axis=-1)
    dx = np.empty_like(x)
    dx.reshape(n, c, h // 2, 2, w // 2, 2)[...] = \
        dflat.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return out, dx


def pool_masked(x, grad_out):
    out = x[:, :, 0::2, 0::2].copy(order="K")
    first = np.zeros_like(out, dtype=np.uint8)
    for k, (i, j) in enumerate(OFFSETS[1:], start=1):
        candidate = x[:, :, i::2, j::2]
        greater = candidate > out
        np.copyto(out, candidate, where=greater)
        np.copyto(first, k, where=greater)
    dx = np.zeros_like(x)
    for k, (i, j) in enumerate(OFFSETS):
        dx[:, :, i::2, j::2] = np.where(first == k, grad_out, 0)
    return out, dx


def pool_arithmetic(x, grad_out):
    out = x[:, :, 0::2, 0::2].copy(order="K")
    first = np.zeros_like(out, dtype=np.uint8)
    for k, (i, j) in enumerate(OFFSETS[1:], start=1):
        candidate = x[:, :, i::2, j::2]
        greater = candidate > out
        np.maximum(out, candidate, out=out)
        np.maximum(first, greater * np.uint8(k), out=first)
    dx = np.zeros_like(x)
    for k, (i, j) in enumerate(OFFSETS):
        dx[:, :, i::2, j::2] = grad_out * (first == k)
    return out, dx


def time_pools(steps, repeats) -> None:
    rng = np.random.default_rng(0)
    inputs = []
    for c, h in ((16, 28), (32, 14)):
        x = np.round(rng.standard_normal((N, c, h, h), dtype=np.float32))  # with ties
        x = in_memory(x, (1, 2, 3, 0)).transpose(3, 0, 1, 2)  # batch-innermost memory
        grad_out = np.empty_like(x[:, :, ::2, ::2])
        grad_out[...] = rng.standard_normal(grad_out.shape)
        inputs.append((x, grad_out))
    ways = {"reshape, argmax": pool_reshape, "offsets, masked": pool_masked,
            "offsets, ufuncs": pool_arithmetic}
    for x, grad_out in inputs:  # the three agree, ties included
        results = [fn(x, grad_out) for fn in ways.values()]
        for out, dx in results[1:]:
            assert np.array_equal(out, results[0][0]) and np.array_equal(dx, results[0][1])
    for name, fn in ways.items():
        ms = 1000 * best_time(lambda fn=fn: [fn(*a) for a in inputs], steps, repeats)
        print(f"max pool {name:16s} {ms:6.2f} ms per training step (both pools)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--matmul-only", action="store_true")
    parser.add_argument("--pools", action="store_true")
    args = parser.parse_args()
    check_agreement()
    with threadpool_limits(1, user_api="blas"):
        for name, (fn, order) in LAYOUTS.items():
            arrays = make_inputs(order, np.random.default_rng(0))
            ms = 1000 * best_time(lambda fn=fn, arrays=arrays: [fn(*a) for a in arrays],
                                   args.steps, args.repeats)
            print(f"{name:16s} {ms:7.2f} ms per training step (both convolutions)")
        if args.matmul_only:
            ms = 1000 * time_matmuls(args.steps, args.repeats)
            print(f"{'products alone':16s} {ms:7.2f} ms")
        if args.pools:
            time_pools(args.steps, args.repeats)


if __name__ == "__main__":
    main()
