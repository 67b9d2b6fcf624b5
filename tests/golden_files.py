"""The golden arrays in tests/golden/: reading a file, splitting it into cases, and making
the same arrays again with the installed torch (the ``torch_reference`` fixture in
conftest.py offers both to a test)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
GENERATOR = GOLDEN_DIR / "make_torch_golden.py"


def load_golden(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``tests/golden/<name>.npz``: ``load_golden("torch_conv")["conv_a_x"]``."""
    with np.load(GOLDEN_DIR / f"{name}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@functools.cache
def generator():
    """make_torch_golden.py as a module (importing it needs no torch)."""
    spec = importlib.util.spec_from_file_location("make_torch_golden", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def compute_with_torch(name: str) -> dict[str, np.ndarray]:
    """What :func:`load_golden` returns, computed now by the installed torch."""
    import torch

    return generator().compute(name, torch)


def golden_cases(arrays: dict[str, np.ndarray], family: str) -> dict[str, dict]:
    """The cases of one family of a ``<family>_<case>_<field>`` file (torch_conv,
    torch_pool): ``golden_cases(load_golden("torch_pool"), "max")["b"]["dx"]``."""
    cases: dict[str, dict] = {}
    for key, value in arrays.items():
        parts = key.split("_", 2)
        if len(parts) == 3 and parts[0] == family:
            cases.setdefault(parts[1], {})[parts[2]] = value
    return cases


def as_option(value: np.ndarray) -> int | str | tuple[int, int]:
    """A stored stride, padding or size as it was passed to torch: 2, (1, 0) or "same"."""
    if value.ndim:
        return tuple(int(v) for v in value)
    return value.item()
