"""Pictures of runs: learning curves, confusion matrices and per-layer health, as PNG
files.

matplotlib is an optional extra (the ``plot`` extra), imported only when a
picture is drawn. Figures are built with the object-oriented API (``Figure`` rendered by
the Agg canvas), never through ``pyplot``: no global backend is switched, no window opens,
and it works on machines without a display.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from . import runs
from .errors import ConfigError, DataError
from .extras import install_hint

#: inches per panel and dots per inch: a figure of n panels is (n * 5.5 * DPI) x (4 * DPI) px
PANEL_WIDTH, PANEL_HEIGHT, DPI = 5.5, 4.0, 100
#: more lines than this and the legend is left out (a sweep's table names them instead)
MAX_LEGEND = 20


def require_matplotlib() -> None:
    """A ConfigError naming the install command when matplotlib is missing (a command
    that draws at the end of its work asks first)."""
    try:
        import matplotlib.backends.backend_agg  # noqa: F401  (what _figure draws with)
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise ConfigError(f"plotting needs matplotlib: {install_hint('plot')}") from None


def _figure(n_panels: int, rows: int = 1):
    """A figure of ``n_panels`` panels in ``rows`` rows, and its axes in reading order."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = math.ceil(n_panels / rows)
    fig = Figure(figsize=(PANEL_WIDTH * columns, PANEL_HEIGHT * rows), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns, squeeze=False).ravel()[:n_panels]


def png_path(output: str | Path) -> Path:
    """``output`` as the path of a PNG to write, or a ConfigError saying why it cannot be
    (a command checks it before its work, so a bad name loses nothing)."""
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise ConfigError(f"{output}: pictures are written as PNG; use a name ending in .png")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: the folder {output.parent} does not exist")
    return output


def _save(fig, output: str | Path) -> Path:
    output = png_path(output)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    runs.atomic_write_bytes(output, buf.getvalue())
    return output


def _series(history: list[dict], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for r in history:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(r["epoch"])
            ys.append(v)
    return xs, ys


def _style(i: int) -> dict:
    """Line ``i``'s look: 20 distinct colours, then the same colours dotted, dash-dotted..."""
    colours = [f"C{k}" for k in range(10)] + [f"tab:{c}" for c in (
        "olive", "cyan", "pink", "brown", "purple", "gray", "orange", "green", "red", "blue")]
    return {"color": colours[i % 20], "ls": ("-", ":", "-.", (0, (5, 1)))[(i // 20) % 4]}


def _band(records: list[dict], key: str) -> tuple[list, list, list, list]:
    """Epochs, the mean of ``key`` over the runs that have it there, and its lowest and
    highest value: a grid point's line and the band its seeds span."""
    by_epoch: dict[int, list[float]] = {}
    for r in records:
        for x, y in zip(*_series(r["history"], key)):
            by_epoch.setdefault(x, []).append(y)
    xs = sorted(by_epoch)
    return (xs, [float(np.mean(by_epoch[x])) for x in xs], [min(by_epoch[x]) for x in xs],
            [max(by_epoch[x]) for x in xs])


def _draw_curves(axes, groups: list[tuple[str, list[dict]]]) -> None:
    """Loss (train solid, validation dashed) on ``axes[0]``, the validation metric
    (accuracy, else MAE) on ``axes[1]``; one line per group (the mean over its runs, with
    a band from its lowest to its highest run when it has several)."""
    loss_ax, metric_ax = axes
    records = [r for _, group in groups for r in group]
    metric = "accuracy" if any(_series(r["history"], "accuracy")[0] for r in records) else "mae"
    scale = 100 if metric == "accuracy" else 1
    losses = []
    for i, (label, group) in enumerate(groups):
        style = _style(i)
        for key, ax, dashed in (("train_loss", loss_ax, False), ("val_loss", loss_ax, True),
                                (metric, metric_ax, False)):
            xs, mean, low, high = _band(group, key)
            k = scale if ax is metric_ax else 1
            ax.plot(xs, [k * v for v in mean], lw=1.5, color=style["color"],
                    ls="--" if dashed else style["ls"], label=None if dashed else label,
                    **({"marker": "o", "ms": 3} if ax is metric_ax else {}))
            if len(group) > 1:
                ax.fill_between(xs, [k * v for v in low], [k * v for v in high],
                                color=style["color"], alpha=0.15, lw=0)
            if ax is loss_ax:
                losses += low + high
    positive = [v for v in losses if v > 0]
    if positive and max(positive) / min(positive) > 20:
        loss_ax.set_yscale("log")
    loss_ax.set_title("loss (solid: train, dashed: validation)", fontsize=10)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    metric_ax.set_title(f"validation {'accuracy (%)' if metric == 'accuracy' else 'MAE'}", fontsize=10)
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "MAE")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if 1 < len(groups) <= MAX_LEGEND:
        metric_ax.legend(fontsize=7, loc="best", ncol=1 if len(groups) <= 10 else 2)


def group_runs(records: list[dict]) -> list[tuple[str, list[dict]]]:
    """Runs that differ only in their seed (a sweep's grid point, or the same experiment
    trained again) as one group, labelled by the config keys that differ between groups."""
    from .compare import run_labels
    from .config.diff import flatten

    groups: dict[str, list[dict]] = {}
    for r in records:
        flat = {k: v for k, v in flatten(r["config"]).items() if k not in ("seed", "name")}
        groups.setdefault(json.dumps(flat, sort_keys=True, default=str), []).append(r)
    members = list(groups.values())
    labels = run_labels([group[0] for group in members], ignore=("name", "seed", "tracking"))
    return [(label + (f" ({len(g)} seeds)" if len(g) > 1 else ""), g)
            for label, g in zip(labels, members)]


def draw_confusion_matrix(ax, cm: np.ndarray, classes: list) -> None:
    """Counts in each cell, colour by the row's share (so rare classes show too)."""
    cm = np.asarray(cm)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    n = len(classes)
    ticks = range(n)
    ax.set_xticks(ticks, [str(c) for c in classes], fontsize=7 if n > 10 else 8)
    ax.set_yticks(ticks, [str(c) for c in classes], fontsize=7 if n > 10 else 8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"test confusion matrix (accuracy {100 * accuracy:.2f}%)", fontsize=10)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=6 if n > 10 else 8,
                            color="white" if share[i, j] > 0.5 else "black")


def confusion_matrix_of(run_dir: str | Path, data_dir: str | None = None) -> tuple[np.ndarray, list]:
    """The test-split confusion matrix (rows: true class, columns: predicted) of a
    classification run's best weights, and the class names."""
    from .experiment import evaluate_run

    report = evaluate_run(run_dir, data_dir)
    if report.task != "classification":
        raise ConfigError(f"{run_dir}: a {report.task} run has no confusion matrix")
    return report.confusion_matrix(), report.classes


def learning_curves(run_dirs: list[str | Path], output: str | Path, *,
                    confusion: bool | tuple = False, data_dir: str | None = None,
                    title: str | None = None) -> Path:
    """Learning curves of one or more runs in one PNG.

    Two panels: the loss per evaluated epoch (train solid, validation dashed) and the
    validation accuracy (MAE for regression). One line per experiment, labelled by the
    config keys that differ between them: runs that differ only in their seed (a sweep's
    grid point) are one line, their mean, in a band from the lowest to the highest.
    Classification and regression runs get a row of panels each. With ``confusion=True`` and a single
    classification run, a third panel shows its test confusion matrix (which needs the
    data, hence ``data_dir``), or ``confusion`` is :func:`confusion_matrix_of`'s result
    already. The curves need no data. Returns ``output``.
    """
    from .compare import read_run

    if not run_dirs:
        raise ConfigError("learning_curves needs at least one run folder")
    records = [read_run(d) for d in run_dirs]
    empty = [r["run_dir"] for r in records if not r["history"]]
    if len(empty) == len(records):
        raise DataError(f"no metrics to plot: {', '.join(empty)} "
                        f"{'has' if len(empty) == 1 else 'have'} no evaluations in {runs.METRICS}")
    cm = confusion if isinstance(confusion, tuple) else None
    if confusion is True and len(records) == 1 \
            and (records[0]["summary"] or {}).get("task") == "classification":
        cm = confusion_matrix_of(run_dirs[0], data_dir)
    # classification and regression never share an axis: a row of panels each
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault((r["summary"] or {}).get("task") or r["config"].get("task", ""), []).append(r)
    columns = 3 if cm is not None else 2
    fig, axes = _figure(columns * len(by_task), len(by_task))
    rows = [axes[i * columns:(i + 1) * columns] for i in range(len(by_task))]
    for row, group in zip(rows, by_task.values()):
        _draw_curves(row[:2], group_runs(group))
    if cm is not None:
        draw_confusion_matrix(axes[2], *cm)
        for row in rows[1:]:
            row[2].set_visible(False)
    if title is None:
        title = records[0]["name"] if len(records) == 1 else f"{len(records)} runs"
    fig.suptitle(title, fontsize=11)
    return _save(fig, output)



#: a layer's line style in the health panels (one colour per run, one style per layer)
LAYER_STYLES = ("-", "--", ":", "-.")


def _health_series(history: list[dict], layer: int, read) -> tuple[list, list]:
    """Epochs and ``read(entry)`` of one layer's health entries, where it is a number."""
    xs, ys = [], []
    for r in history:
        for entry in r.get("health") or []:
            value = read(entry) if entry["layer"] == layer else None
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs.append(r["epoch"])
                ys.append(value)
    return xs, ys


#: the four health panels: title, y label, how an entry is read, log scale
HEALTH_PANELS = (
    ("dead units (ReLU family)", "dead units (%)", lambda e: _percent(e.get("dead")), False),
    ("inactive outputs (ReLU family)", "inactive (%)", lambda e: _percent(e.get("inactive")),
     False),
    ("saturated outputs (tanh, sigmoid)", "saturated (%)", lambda e: _percent(e.get("saturated")),
     False),
    ("update / weight (W), rule of thumb 1e-3", "||update|| / ||W||",
     lambda e: e["params"].get("W", {}).get("update_ratio"), True),
)


def _percent(value):
    return None if value is None else 100 * value


def _health_labels(records: list[dict]) -> list[str]:
    """The config keys that differ (a sweep's grid), or the run names when more than two
    keys differ and the names tell the runs apart (different experiments side by side)."""
    from .compare import run_labels
    from .config.diff import differing_keys

    names = [r["name"] for r in records]
    if len(set(names)) == len(names) and len(differing_keys([r["config"] for r in records])) > 2:
        return names
    return run_labels(records)


def health_curves(run_dirs: list[str | Path], output: str | Path, *,
                  title: str | None = None) -> Path:
    """Per-layer health over the evaluations of runs trained with ``train.health`` (see
    :mod:`scratchnet.nn.health`), in one PNG of up to four panels: the dead units and
    the inactive outputs of ReLU-family layers, the saturated outputs of tanh and sigmoid
    layers (all 0-100%), and the weights' update-to-weight ratio (log scale, the 1e-3
    rule of thumb dashed); a panel without a layer it applies to is left out. One colour
    per run (labelled by :func:`_health_labels`), one line style per layer; runs without
    health records (diverged before their first evaluation) are left out. Returns
    ``output``."""
    from matplotlib.lines import Line2D

    from .compare import read_run

    if not run_dirs:
        raise ConfigError("health_curves needs at least one run folder")
    records = [read_run(d) for d in run_dirs]
    watched = [r for r in records if any(h.get("health") for h in r["history"])]
    if not watched:  # a run that diverged at once, in a sweep, is left out
        raise DataError(f"no health records in {', '.join(r['run_dir'] for r in records)}: "
                        "train with --health (or train.health: true) to record them")
    records = watched
    labels = _health_labels(records)
    layers = sorted({e["layer"] for r in records for h in r["history"] for e in h.get("health") or []})
    style = {layer: LAYER_STYLES[j % len(LAYER_STYLES)] for j, layer in enumerate(layers)}
    panels = []
    for panel in HEALTH_PANELS:
        series = [(k, layer, _health_series(r["history"], layer, panel[2]))
                  for k, r in enumerate(records) for layer in layers]
        if any(xs for _, _, (xs, _) in series):  # none for dead units of tanh networks
            panels.append((panel, series))
    fig, axes = _figure(len(panels), rows=2 if len(panels) == 4 else 1)
    for ((name, ylabel, read, log), series), ax in zip(panels, axes):
        for k, layer, (xs, ys) in series:
            if xs:
                ax.plot(xs, ys, color=f"C{k % 10}", ls=style[layer], marker="o", ms=3, lw=1.5)
        if log:
            ax.set_yscale("log")
            ax.axhline(1e-3, color="grey", lw=1, ls="--")
        else:
            ax.set_ylim(-3, 103)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if len(records) <= MAX_LEGEND:  # colours name the runs, styles the layers
        handles = [Line2D([], [], color=f"C{k % 10}", lw=2, label=label)
                   for k, label in enumerate(labels)]
        handles += [Line2D([], [], color="black", ls=style[layer], label=f"layer {layer}")
                    for layer in layers]
        axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(title or (records[0]["name"] if len(records) == 1 else f"{len(records)} runs"),
                 fontsize=11)
    return _save(fig, output)


def range_test_curve(result, output: str | Path, *, title: str | None = None) -> Path:
    """The loss of a learning-rate range test (:class:`~scratchnet.lr_find.RangeResult`)
    against the learning rate (log scale) as a PNG: each batch's loss faint, the smoothed
    loss solid, the valley the suggestion was found in shaded and the suggestion marked.
    The loss axis spans the lowest batch loss to a little above where the test stopped
    (``stop_factor`` times the lowest smoothed loss), so the explosion does not flatten the
    rest. Returns ``output``."""
    s = result.suggestion
    fig, (ax,) = _figure(1)
    ax.plot(result.rates, result.losses, color="C0", alpha=0.25, lw=1, label="batch loss")
    ax.plot(result.rates, result.smoothed, color="C0", lw=2, label="smoothed loss")
    ax.axvspan(result.rates[s.valley[0]], result.rates[s.valley[1]], color="C2", alpha=0.12,
               lw=0, label=f"{s.rule}: longest fall")
    ax.plot([s.lr], [result.smoothed[s.index]], "o", color="C3", ms=8,
            label=f"suggested: {s.rounded:g}")
    ax.axvline(s.lr, color="C3", lw=1, ls="--")
    low = float(min(result.losses.min(), result.smoothed.min()))
    top = max(float(result.smoothed[0]), result.settings.stop_factor * float(result.smoothed.min()))
    pad = 0.05 * ((top - low) or max(abs(low), 1.0))  # (a flat curve still has a span)
    ax.set_ylim(max(0.0, low - pad), top + pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # below the flat start: empty
    fig.suptitle(title or "learning-rate range test", fontsize=11)
    return _save(fig, output)
