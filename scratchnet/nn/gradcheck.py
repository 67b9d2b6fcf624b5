"""Gradient checks: every analytic gradient against float64 central differences.

``numerical_grad(f, x)`` estimates ``df/dx`` entry by entry as
``(f(x + eps) - f(x - eps)) / (2 eps)``. The checks compare it with what ``backward``
computes for an operation (:func:`check_operation`), a loss (:func:`check_loss`) or a
whole network (:func:`check_network`).

Relative error, used everywhere here, for an analytic gradient ``a`` and a numerical one
``n`` of the same tensor::

    max_i |a_i - n_i| / max(max_i (|a_i| + |n_i|), 1e-8)

the largest absolute disagreement, measured against the largest gradient magnitude in
that tensor (and against 1e-8 when the whole gradient is about zero, so that a zero
gradient compared with zero is not 0/0). Per-tensor rather than per-entry scaling keeps
entries whose gradient is itself tiny from failing on round-off alone, while any wrong
entry of a size that matters still shows. In float64 with ``eps=1e-6`` a correct
gradient scores about 1e-9 or less; :data:`TOLERANCE` is 1e-6.

Randomness is held still during a check: the state of every generator an operation draws
from (a dropout mask) is saved before the analytic pass and put back before each forward
pass, so every evaluation sees the same mask. So is a network's carried state (a stateful
recurrent layer's, :meth:`~scratchnet.nn.NeuralNetwork.carried_state`): every pass starts
from the state the check found, as the training batch it stands for would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..errors import ConfigError, ShapeError

TOLERANCE = 1e-6
EPS = 1e-6


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a - n| / max(max(|a| + |n|), 1e-8)`` (see the module docstring)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ShapeError(f"analytic gradient has shape {a.shape}, numerical {n.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a) + np.abs(n))), 1e-8)
    return float(np.max(np.abs(a - n)) / scale)


def numerical_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = EPS,
                   indices: Iterable[int] | None = None) -> np.ndarray:
    """Central differences of the scalar ``f`` with respect to ``x``.

    ``x`` is perturbed *in place* one entry at a time and ``f(x)`` called, so ``f`` may
    also ignore its argument and read ``x`` through a closure (a parameter's value).
    Each entry is put back exactly afterwards. With ``indices`` (flat positions) only
    those entries are estimated; the others stay 0 in the result.
    """
    if x.dtype != np.float64:
        raise ConfigError(f"gradient checks need a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: x must be contiguous for the perturbation to land
    if not np.shares_memory(flat_x, x):
        raise ShapeError("numerical_grad needs a contiguous array to perturb in place")
    flat_g = grad.reshape(-1)
    for i in (range(x.size) if indices is None else indices):
        original = flat_x[i]
        flat_x[i] = original + eps
        plus = float(f(x))
        flat_x[i] = original - eps
        minus = float(f(x))
        flat_x[i] = original
        flat_g[i] = (plus - minus) / (2 * eps)
    return grad


# -- holding randomness still ------------------------------------------------------------
def _generators(obj) -> list[np.random.Generator]:
    """The generators ``obj`` draws from: its own ``rng`` / ``dropout_rng``, and those of
    the operations or layers it holds."""
    found: list[np.random.Generator] = []

    def visit(o, depth=0):
        for attr in ("rng", "dropout_rng"):
            g = getattr(o, attr, None)
            if isinstance(g, np.random.Generator) and all(g is not h for h in found):
                found.append(g)
        if depth < 3:
            for attr in ("operations", "layers"):
                for child in getattr(o, attr, None) or ():
                    visit(child, depth + 1)

    visit(obj)
    return found


class _FrozenRandomness:
    """Saves generator states; ``reset()`` puts them back (call it before each forward)."""

    def __init__(self, generators: list[np.random.Generator]):
        self.generators = generators
        self.states = [g.bit_generator.state for g in generators]

    def reset(self) -> None:
        for g, s in zip(self.generators, self.states):
            g.bit_generator.state = s


def _as_float64(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise ConfigError(f"gradient checks run in float64; {what} is {x.dtype}")
    return x


# -- operations ---------------------------------------------------------------------------
def check_operation(op, x: np.ndarray, seed: int = 0, eps: float = EPS,
                    tol: float = TOLERANCE) -> dict:
    """Check ``op.backward`` (input gradient) and every parameter gradient it fills.

    ``op`` is any :class:`~scratchnet.core.Operation` (or anything with the same
    ``forward(x, inference)`` / ``backward(grad)`` / ``params()`` contract, such as a built
    layer) whose parameters are float64. The loss is a random projection of the output,
    ``sum(op.forward(x) * R)`` with ``R`` drawn from ``seed``, so every output entry
    contributes with its own weight.

    Returns ``{"input": error or None, "params": {name: error}, "max_rel_error": e,
    "passed": e < tol}`` (``"input"`` is None when the operation does not compute an input
    gradient).
    """
    x = np.array(_as_float64(x, "the input"), copy=True, order="C")
    params = list(op.params())
    for p in params:
        _as_float64(p.value, f"parameter {p.name or '?'}")
    frozen = _FrozenRandomness(_generators(op))
    out = op.forward(x, inference=False)
    R = np.random.default_rng(seed).standard_normal(out.shape)

    # Analytic pass first: a forward pass caches its input, which the numeric pass perturbs.
    input_grad = op.backward(R.copy())
    input_grad = None if input_grad is None else np.array(input_grad, dtype=np.float64)
    param_grads = [np.array(p.grad, dtype=np.float64) for p in params]

    def loss(_=None) -> float:
        frozen.reset()
        return float(np.sum(op.forward(x, inference=False) * R))

    result: dict = {"input": None, "params": {}}
    if input_grad is not None:
        result["input"] = relative_error(input_grad, numerical_grad(loss, x, eps))
    for i, (p, analytic) in enumerate(zip(params, param_grads)):
        name = p.name or f"param{i}"
        if name in result["params"]:  # two parameters with one name keep two rows
            name = f"{name}#{i}"
        result["params"][name] = relative_error(analytic, numerical_grad(loss, p.value, eps))
    frozen.reset()
    errors = [e for e in [result["input"], *result["params"].values()] if e is not None]
    result["max_rel_error"] = max(errors) if errors else 0.0
    result["passed"] = result["max_rel_error"] < tol
    return result


# -- losses -------------------------------------------------------------------------------
def check_loss(loss, prediction: np.ndarray, target: np.ndarray, eps: float = EPS) -> float:
    """Relative error of ``loss.backward()`` against central differences of
    ``loss.forward(prediction, target)`` with respect to the prediction."""
    prediction = np.array(_as_float64(prediction, "the prediction"), copy=True, order="C")
    target = _as_float64(target, "the target")
    loss.forward(prediction, target)
    analytic = np.array(loss.backward(), dtype=np.float64)
    numeric = numerical_grad(lambda p: loss.forward(p, target), prediction, eps)
    return relative_error(analytic, numeric)


# -- networks -----------------------------------------------------------------------------
def check_network(net, X: np.ndarray, y: np.ndarray, max_params_per_tensor: int | None = None,
                  seed: int = 0, eps: float = EPS, tol: float = TOLERANCE) -> list[dict]:
    """Check every parameter gradient of a float64 network against central differences.

    ``net.train_batch(X, y)`` gives the analytic gradients; then each entry of each
    parameter (or, for tensors larger than ``max_params_per_tensor``, that many entries
    drawn at random from ``seed``) is perturbed and the training-mode loss recomputed with
    the same dropout masks and the same carried state. The network's weights, buffers
    (running statistics), carried state and dropout generator are as they were before the
    check when it returns; the parameters' ``grad`` hold the analytic gradients.

    ``X`` is (batch, *sample_shape): rows, images for a convolutional network, sequences
    or ids for a recurrent one.

    Returns one row per parameter tensor, input side first:
    ``{"param": name, "layer": i, "entries": k, "max_rel_error": e, "passed": e < tol}``.
    """
    if np.dtype(net.dtype) != np.float64:
        raise ConfigError(f"check_network needs a float64 network "
                          f"(NeuralNetwork(..., dtype='float64')), got {net.dtype}")
    if max_params_per_tensor is not None and (
            isinstance(max_params_per_tensor, bool) or not isinstance(max_params_per_tensor, int)
            or max_params_per_tensor < 1):
        raise ConfigError(f"max_params_per_tensor must be a positive integer or None, "
                          f"got {max_params_per_tensor!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not net.built:
        net.build(X.shape[1:])
    saved, carried = net.state_dict(), net.carried_state()
    frozen = _FrozenRandomness(_generators(net))
    net.train_batch(X, y)
    owners = [(i, p) for i, layer in enumerate(net.layers) for p in layer.params()]
    analytic = [np.array(p.grad, dtype=np.float64) for _, p in owners]

    def loss(_=None) -> float:
        frozen.reset()
        net.load_carried_state(carried)
        return float(net.loss.forward(net.forward(X, inference=False), y))

    rng = np.random.default_rng(seed)
    rows = []
    for (i, p), a in zip(owners, analytic):
        size = p.value.size
        if max_params_per_tensor is None or size <= max_params_per_tensor:
            idx = np.arange(size)
        else:
            idx = np.sort(rng.choice(size, size=max_params_per_tensor, replace=False))
        numeric = numerical_grad(loss, p.value, eps, indices=idx)
        error = relative_error(a.reshape(-1)[idx], numeric.reshape(-1)[idx])
        rows.append({"param": p.name, "layer": i, "entries": int(len(idx)),
                     "max_rel_error": error, "passed": error < tol})
    # Forward passes in training mode may have moved buffers (running statistics).
    net.load_state_dict(saved)
    net.load_carried_state(carried)
    frozen.reset()
    return rows
