"""The golden files keep their source: each is what tests/golden/make_torch_golden.py makes
with the torch it names, and the conv and pool files say what their keys promise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from golden_files import (GENERATOR, GOLDEN_DIR, as_option, generator, golden_cases,
                          load_golden)

NAMES = sorted(generator().FILES)
CONV = golden_cases(load_golden("torch_conv"), "conv")
POOL = {family: golden_cases(load_golden("torch_pool"), family) for family in ("max", "avg")}


def test_every_golden_file_is_made_by_the_script_and_small():
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.npz")) == NAMES
    assert sum(p.stat().st_size for p in GOLDEN_DIR.glob("*.npz")) < 200_000


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_records_its_libraries(name):
    arrays = load_golden(name)
    for library in ("torch", "numpy"):
        version = arrays.pop(f"{library}_version")
        assert version.shape == () and version.dtype.kind == "U" and version.item()
    kinds = {key: value.dtype.kind for key, value in arrays.items()}
    assert set(kinds.values()) <= {"f", "i", "U"}, kinds
    assert all(arrays[key].dtype == np.float64 for key, kind in kinds.items() if kind == "f")


def test_regenerating_gives_the_committed_arrays(tmp_path):
    pytest.importorskip("torch")
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    for name in NAMES:
        with np.load(tmp_path / f"{name}.npz") as made:
            fresh = {key: made[key] for key in made.files}
        committed = load_golden(name)
        assert sorted(fresh) == sorted(committed), name
        for key, value in committed.items():
            if key.endswith("_version"):
                continue  # a newer torch may make the same numbers
            assert fresh[key].shape == value.shape and fresh[key].dtype == value.dtype, key
            if value.dtype.kind == "U":
                assert fresh[key] == value, key
            else:
                np.testing.assert_allclose(fresh[key], value, rtol=1e-12, atol=1e-14,
                                           err_msg=f"{name}: {key}")


# -- what the convolution engineer can rely on -----------------------------------------
def pair(option) -> tuple[int, int]:
    return option if isinstance(option, tuple) else (option, option)


@pytest.mark.parametrize("case", sorted(CONV))
def test_conv_cases_have_the_promised_shapes(case):
    c = CONV[case]
    N, C, H, W = c["x"].shape
    F, C_w, KH, KW = c["W"].shape
    assert C_w == C and c["b"].shape == (F,)
    (sh, sw), padding = pair(as_option(c["stride"])), as_option(c["padding"])
    # "same" (stride 1 only): the output keeps the input's size
    ph, pw = ((KH - 1) // 2, (KW - 1) // 2) if padding == "same" else pair(padding)
    out_shape = (N, F, (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1)
    assert c["out"].shape == c["grad_out"].shape == out_shape
    assert c["dx"].shape == c["x"].shape and c["dW"].shape == c["W"].shape
    np.testing.assert_allclose(c["db"], c["grad_out"].sum(axis=(0, 2, 3)), rtol=1e-12)
    # one output by hand: cross-correlation (no kernel flip) of the top-left window
    x = np.pad(c["x"], ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    first = (x[0, :, :KH, :KW] * c["W"][0]).sum() + c["b"][0]
    assert c["out"][0, 0, 0, 0] == pytest.approx(first, rel=1e-12)


def windows(x, size, stride):
    """(N, C, H', W', size, size): the pooling windows of x."""
    view = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


@pytest.mark.parametrize("family,case", [(f, c) for f in POOL for c in sorted(POOL[f])])
def test_pool_cases_are_window_maxima_and_means(family, case):
    c = POOL[family][case]
    w = windows(c["x"], int(c["size"]), int(c["stride"]))
    reduce = np.max if family == "max" else np.mean
    np.testing.assert_allclose(c["out"], reduce(w, axis=(4, 5)), rtol=1e-12)
    # every window passes on all its gradient
    np.testing.assert_allclose(c["dx"].sum(), c["grad_out"].sum(), rtol=1e-12)


@pytest.mark.parametrize("case", sorted(POOL["max"]))
def test_max_pool_sends_the_gradient_to_the_first_maximum(case):
    """PyTorch's rule where a window holds its maximum more than once: the first in
    row-major order gets the gradient (``_indices`` records the choice)."""
    c = POOL["max"][case]
    size, stride = int(c["size"]), int(c["stride"])
    w = windows(c["x"], size, stride)
    N, C, OH, OW = c["out"].shape
    first = w.reshape(N, C, OH, OW, -1).argmax(axis=-1)  # argmax takes the first
    rows = np.arange(OH)[:, None] * stride + first // size
    cols = np.arange(OW)[None, :] * stride + first % size
    np.testing.assert_array_equal(c["indices"], rows * c["x"].shape[3] + cols)
    dx = np.zeros_like(c["x"]).reshape(N, C, -1)
    for n in range(N):
        for ch in range(C):
            np.add.at(dx[n, ch], c["indices"][n, ch].ravel(), c["grad_out"][n, ch].ravel())
    np.testing.assert_allclose(c["dx"], dx.reshape(c["x"].shape), rtol=1e-12, atol=1e-15)
    if case == "c":  # the ties case does have windows with a repeated maximum
        repeated = (w == c["out"][..., None, None]).sum(axis=(4, 5)) > 1
        assert repeated.sum() >= 5
