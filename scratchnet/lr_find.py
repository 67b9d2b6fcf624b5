"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", section 3.3; the form of fastai's ``lr_find``), behind ``scratchnet lr-find``.

From a fresh network (initialised from its seed, as :meth:`~scratchnet.nn.Trainer.fit`
starts), train one batch at each of ``batches`` learning rates growing exponentially
from ``start_lr`` to ``end_lr``, with the configured optimizer (its momentum, weight
decay, clipping) and the batches training would draw (the same seed, the same shuffled
order). The optimizer's ``step`` takes each batch's rate as an argument: no stored rate
is changed, and no schedule is consulted (a configured decay or warm-up plays no part).
Dropout stays on, as in training.

Each batch's loss enters an exponentially weighted average, bias-corrected as Adam's
moments are (fastai's smoothed loss, ``beta = 0.98``): ``avg = beta * avg + (1 - beta) *
loss``, ``smoothed = avg / (1 - beta ** k)`` after ``k`` batches. The test stops when the
smoothed loss passes ``stop_factor`` (4) times its lowest value so far, or when a loss is
not finite.

The suggestion is fastai's default rule, ``valley``: the longest run of falling smoothed
loss (a longest decreasing subsequence), and the rate halfway through it. There the loss
falls fast and the rate is far below the one where it stops falling; the rate of the
lowest loss itself is already too high to train at (it is where the loss turns). As
fastai does, the first tenth of the batches (the average has seen few losses) and the
last five (the explosion) are left out of the search.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np

from . import checks
from .errors import ConfigError, DivergenceError, ShapeError
from .nn import NeuralNetwork, Optimizer
from .nn.rows import as_rows, gather
from .nn.blas import thread_limit
from .options import Doc, Ge, Gt, Le, Lt, check_fields

#: batches left out of the valley search at the end (fastai's ``[:-5]``: the explosion)
SKIP_END = 5
#: the fewest points the valley is searched over
MIN_POINTS = 5


@dataclass(frozen=True)
class RangeTest:
    """How the range test runs. ``scratchnet lr-find``'s options are these fields (the
    command line keeps copies of the defaults; a test holds them equal)."""

    start_lr: Annotated[float, Gt(0), Doc("learning rate of the first batch")] = 1e-7
    end_lr: Annotated[float, Gt(0), Doc("learning rate of the last batch")] = 10.0
    batches: Annotated[int, Ge(20), Le(10_000), Doc("batches from start_lr to end_lr")] = 300
    beta: Annotated[float, Ge(0), Lt(1), Doc("weight of the past in the smoothed loss")] = 0.98
    stop_factor: Annotated[float, Gt(1), Doc("stop when the smoothed loss passes this many "
                                             "times its lowest")] = 4.0

    def __post_init__(self):
        check_fields(self)
        if self.end_lr <= self.start_lr:
            raise ConfigError(f"end_lr must be larger than start_lr={self.start_lr:g}, got "
                              f"{self.end_lr:g}", key=("end_lr",))

    def rates(self) -> np.ndarray:
        """(batches,) the learning rate of each batch: ``start_lr * (end_lr / start_lr) **
        (i / (batches - 1))``, from ``start_lr`` to ``end_lr`` exactly."""
        return np.geomspace(self.start_lr, self.end_lr, self.batches)

    @property
    def skip_start(self) -> int:
        """Batches left out of the valley search at the start (fastai's ``num_it // 10``):
        the smoothed loss of the first ones rests on few batches."""
        return self.batches // 10


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate: ``lr`` is the rate of batch ``index``; the valley it
    was found in runs from batch ``valley[0]`` to ``valley[1]`` (inclusive)."""

    lr: float
    index: int
    rule: str
    valley: tuple[int, int]

    @property
    def rounded(self) -> float:
        """``lr`` to two significant digits, as it is shown and set: the test locates a
        rate far more coarsely than that."""
        return float(f"{self.lr:.2g}")


@dataclass
class RangeResult:
    """What :func:`range_test` measured over the ``n`` batches it ran."""

    settings: RangeTest
    #: (n,) the learning rate of each batch
    rates: np.ndarray
    #: (n,) each batch's loss, and the smoothed loss after it
    losses: np.ndarray
    smoothed: np.ndarray
    #: "end" (every batch ran), "exploded" (past stop_factor times the lowest) or
    #: "not finite" (a loss was NaN or infinite; that batch is not recorded)
    stopped: str
    suggestion: Suggestion = field(init=False)

    def __post_init__(self):
        n, skip = len(self.losses), self.settings.skip_start
        if n - skip - SKIP_END < MIN_POINTS:
            raise DivergenceError(
                f"the range test ended after {n} of {self.settings.batches} batches (the loss "
                f"{'was not finite' if self.stopped == 'not finite' else 'exploded'} at "
                f"learning rate {self.stopped_at:.2g}): too few to suggest a rate; start "
                "lower (start_lr) or use more batches")
        self.suggestion = valley(self.rates, self.smoothed, skip)

    @property
    def best(self) -> int:
        """The batch of the lowest smoothed loss."""
        return int(np.argmin(self.smoothed))

    @property
    def stopped_at(self) -> float:
        """The learning rate of the last batch tried (the one whose loss was not finite,
        when that stopped the test)."""
        n = len(self.losses)
        return float(self.settings.rates()[n if self.stopped == "not finite" else n - 1])


def range_test(net: NeuralNetwork, optimizer: Optimizer, X, y: np.ndarray, *,
               batch_size: int, seed: int | None,
               settings: RangeTest = RangeTest()) -> RangeResult:
    """Run the range test on ``X`` (n, *sample shape) (an array or a row source, as
    :meth:`~scratchnet.nn.Trainer.fit` takes) and targets ``y`` (n, outputs).

    The network is initialised again from its seed and the optimizer's state cleared
    first (as ``Trainer.fit`` does); both are left as the test ends them (a later
    ``fit`` starts afresh again). ``seed`` shuffles the rows as training with that seed
    does. Raises :class:`~scratchnet.errors.DivergenceError` when the test ends too soon
    to suggest a rate (start lower)."""
    batch_size = checks.positive_int(batch_size, "batch_size")
    X = as_rows(X, net.dtype, contiguous=True)
    y = np.ascontiguousarray(y, dtype=net.dtype)
    if len(X) == 0 or len(X) != len(y):
        raise ShapeError(f"the range test needs rows and a target for each, got {len(X)} "
                         f"rows and {len(y)} targets")
    net.reset_parameters(X.shape[1:])
    optimizer.reset()
    params, rng, rates = net.params(), np.random.default_rng(seed), settings.rates()
    size = min(batch_size, len(X))
    x_buf = np.empty((size, *X.shape[1:]), net.dtype)
    y_buf = np.empty((size, *y.shape[1:]), net.dtype)
    losses, smoothed, stopped = [], [], "end"
    average, best, perm, start = 0.0, math.inf, None, 0
    with thread_limit(1), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i, lr in enumerate(rates):
            if perm is None or start >= len(X):  # the next pass over the data, reshuffled
                perm, start = rng.permutation(len(X)), 0
            idx = perm[start:start + batch_size]
            start += batch_size
            m = len(idx)
            loss = net.train_batch(gather(X, idx, x_buf[:m]), gather(y, idx, y_buf[:m]))
            if not math.isfinite(loss):
                stopped = "not finite"
                break
            optimizer.step(params, float(lr))
            average = settings.beta * average + (1 - settings.beta) * loss
            losses.append(loss)
            smoothed.append(average / (1 - settings.beta ** (i + 1)))
            best = min(best, smoothed[-1])
            if smoothed[-1] > settings.stop_factor * best:
                stopped = "exploded"
                break
    n = len(losses)
    return RangeResult(settings, rates[:n], np.array(losses), np.array(smoothed), stopped)


def valley(rates: np.ndarray, smoothed: np.ndarray, skip_start: int) -> Suggestion:
    """fastai's ``valley`` rule on the smoothed losses ``smoothed`` (n,) at ``rates``
    (n,), leaving out the first ``skip_start`` and the last :data:`SKIP_END` points.

    The valley ends at the first point that ends a longest strictly decreasing
    subsequence, and starts as many points before it as that subsequence is long; the
    suggestion is the point halfway through it (at a geometric rate grid, halfway in
    log learning rate)."""
    stop = len(smoothed) - SKIP_END
    losses = smoothed[skip_start:stop]
    if len(losses) < 1:
        raise ConfigError(f"no points to search: {len(smoothed)} losses, {skip_start} left "
                          f"out at the start and {SKIP_END} at the end")
    # longest decreasing subsequence ending at each point (patience sorting on -loss)
    tails: list[float] = []
    longest = np.empty(len(losses), dtype=int)
    for i, value in enumerate(-losses):
        k = bisect_left(tails, value)
        tails[k:k + 1] = [value]
        longest[i] = k + 1
    end = int(np.argmax(longest))  # the first point of the greatest length
    first = end - int(longest[end]) + 1
    index = skip_start + first + (end - first) // 2
    return Suggestion(float(rates[index]), index, "valley",
                      (skip_start + first, skip_start + end))


def suggested_overrides(cfg, lr: float) -> list[str]:
    """The ``--set`` overrides that train the experiment ``cfg`` at ``lr``:
    ``optimizer.lr=...``, and, where the configured decay ends (or is floored) above
    ``lr``, which its schedule would refuse, that ``final_lr`` (``min_lr``) scaled by
    ``lr / optimizer.lr``, keeping the ratio the config has."""
    o = cfg.optimizer
    out = [f"optimizer.lr={lr:g}"]
    for key in ("final_lr", "min_lr"):
        value = getattr(o.decay, key, None)
        if value is not None and value > lr:
            out.append(f"optimizer.decay.{key}={float(f'{value * lr / o.lr:.2g}'):g}")
    return out


def draw(result: RangeResult, output: str | Path, *, title: str | None = None) -> Path:
    """The loss of a range test against the learning rate (log scale) as a PNG (extra
    ``plot``): each batch's loss faint, the smoothed loss solid, the valley the suggestion
    was found in shaded and the suggestion marked. The loss axis spans the lowest batch
    loss to a little above where the test stopped (``stop_factor`` times the lowest
    smoothed loss), so the explosion does not flatten the rest. Returns ``output``."""
    from .plots import panel_figure, save_png  # the figure and the PNG every picture is made of

    s = result.suggestion
    fig, (ax,), _ = panel_figure(1)
    ax.plot(result.rates, result.losses, color="C0", alpha=0.25, lw=1, label="batch loss")
    ax.plot(result.rates, result.smoothed, color="C0", lw=2, label="smoothed loss")
    ax.axvspan(result.rates[s.valley[0]], result.rates[s.valley[1]], color="C2", alpha=0.12,
               lw=0, label=f"{s.rule}: longest fall")
    ax.plot([s.lr], [result.smoothed[s.index]], "o", color="C3", ms=8,
            label=f"suggested: {s.rounded:g}")
    ax.axvline(s.lr, color="C3", lw=1, ls="--")
    low, lowest = float(result.losses.min()), float(result.smoothed.min())
    low = min(low, lowest)
    top = max(float(result.smoothed[0]), result.settings.stop_factor * lowest)
    pad = 0.05 * ((top - low) or max(abs(low), 1.0))  # (a flat curve still has a span)
    ax.set_ylim(max(0.0, low - pad), top + pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # below the flat start: empty
    fig.suptitle(title or "learning-rate range test", fontsize=11)
    return save_png(fig, output)
