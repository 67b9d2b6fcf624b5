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
from .extras import require

#: inches per panel and dots per inch: a figure of n panels is (n * 5.5 * DPI) x (4 * DPI) px
PANEL_WIDTH, PANEL_HEIGHT, DPI = 5.5, 4.0, 100
#: more lines than this and the legend is left out (a sweep's table names them instead)
MAX_LEGEND = 20
#: the longest label a line gets in a legend; longer labels give way to the run names,
#: then to ``#1``, ``#2``... with a table under the panels naming each
LABEL_MAX = 32
#: inches a line of that table takes
TABLE_LINE = 0.18


def panel_figure(n_panels: int, rows: int = 1, table: int = 0):
    """A figure of ``n_panels`` panels in ``rows`` rows, its axes in reading order, and,
    with ``table`` lines, an axes under the panels for them (else None): every picture
    scratchnet draws (here, in :mod:`scratchnet.health_plots`, the report's and lr_find's)
    starts from one, and ends with :func:`save_png`."""
    require("plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = math.ceil(n_panels / rows)
    extra = (table + 1) * TABLE_LINE if table else 0
    fig = Figure(figsize=(PANEL_WIDTH * columns, PANEL_HEIGHT * rows + extra), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    if not table:
        return fig, fig.subplots(rows, columns, squeeze=False).ravel()[:n_panels], None
    grid = fig.add_gridspec(rows + 1, columns, height_ratios=[PANEL_HEIGHT] * rows + [extra])
    axes = [fig.add_subplot(grid[i // columns, i % columns]) for i in range(n_panels)]
    table_ax = fig.add_subplot(grid[rows, :])
    table_ax.set_axis_off()
    return fig, axes, table_ax


def draw_table(ax, lines: list[str]) -> None:
    """The lines that say which run each ``#1``, ``#2``... is, one under another."""
    for i, line in enumerate(lines):
        ax.text(0, 1 - (i + 0.5) / len(lines), line, transform=ax.transAxes, fontsize=8,
                family="monospace", va="center", ha="left")


def png_path(output: str | Path) -> Path:
    """``output`` as the path of a PNG to write, or a ConfigError saying why it cannot be
    (a command checks it before its work, so a bad name loses nothing)."""
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise ConfigError(f"{output}: pictures are written as PNG; use a name ending in .png")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: the folder {output.parent} does not exist")
    return output


def save_png(fig, output: str | Path) -> Path:
    """Write ``fig`` to ``output`` (see :func:`png_path`) at the pictures' resolution, in one
    atomic write (a reader never finds half a picture); returns the path written."""
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
        for x, y in zip(*_series(r["history"], key), strict=True):
            by_epoch.setdefault(x, []).append(y)
    xs = sorted(by_epoch)
    return (xs, [float(np.mean(by_epoch[x])) for x in xs], [min(by_epoch[x]) for x in xs],
            [max(by_epoch[x]) for x in xs])


def _draw_curves(axes, groups: list[tuple[int, str, list[dict]]], legend: bool) -> None:
    """Loss (train solid, validation dashed) on ``axes[0]``, the validation metric
    (accuracy, else MAE) on ``axes[1]``; one line per group (the mean over its runs, with
    a band from its lowest to its highest run when it has several), a dot where a line
    has a single point, in the look of the group's number (:func:`_style`); with
    ``legend``, the groups' labels to the right of ``axes[1]``."""
    loss_ax, metric_ax = axes
    records = [r for _, _, group in groups for r in group]
    metric = "accuracy" if any(_series(r["history"], "accuracy")[0] for r in records) else "mae"
    scale = 100 if metric == "accuracy" else 1
    losses = []
    for i, label, group in groups:
        style = _style(i)
        for key, ax, dashed in (("train_loss", loss_ax, False), ("val_loss", loss_ax, True),
                                (metric, metric_ax, False)):
            xs, mean, low, high = _band(group, key)
            k = scale if ax is metric_ax else 1
            dots = ax is metric_ax or len(xs) == 1
            ax.plot(xs, [k * v for v in mean], lw=1.5, color=style["color"],
                    ls="--" if dashed else style["ls"], label=None if dashed else label,
                    **({"marker": "o", "ms": 3} if dots else {}))
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
    metric_ax.set_title(f"validation {'accuracy (%)' if metric == 'accuracy' else 'MAE'}",
                        fontsize=10)
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "MAE")
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for _, _, group in groups for run in group for h in run["history"]]
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs:  # both panels over the same epochs (a metric evaluated once is one dot)
            pad = max(0.5, (max(epochs) - min(epochs)) / 20)
            ax.set_xlim(min(epochs) - pad, max(epochs) + pad)
    if legend:  # beside the panel, never over the lines; short labels keep it narrow
        metric_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1),
                         borderaxespad=0, ncol=1 if len(groups) <= 10 else 2)


def group_runs(records: list[dict]) -> list[tuple[str, list[dict]]]:
    """Runs that differ only in their seed (a sweep's grid point, or the same experiment
    trained again) as one group, labelled by :func:`legend_labels`."""
    labels, members, _ = _grouped(records)
    return list(zip(labels, members, strict=True))


def _grouped(records: list[dict]) -> tuple[list[str], list[list[dict]], list[str]]:
    """:func:`group_runs` as ``(labels, groups, the lines of a table naming #1, #2...)``."""
    from .config.diff import flatten

    groups: dict[str, list[dict]] = {}
    for r in records:
        flat = {k: v for k, v in flatten(r["config"]).items() if k not in ("seed", "name")}
        groups.setdefault(json.dumps(flat, sort_keys=True, default=str), []).append(r)
    members = list(groups.values())
    labels, table = legend_labels([group[0] for group in members])
    seeds = [f" ({len(g)} seeds)" if len(g) > 1 else "" for g in members]
    # no table when the labels tell the groups apart
    return ([label + n for label, n in zip(labels, seeds, strict=True)], members,
            [line + n for line, n in zip(table, seeds, strict=True)] if table else [])


def legend_labels(records: list[dict]) -> tuple[list[str], list[str]]:
    """A short label per run for a legend, and the lines of a table to go with it:

    - the config keys that differ (``lr=0.05``: a sweep's grid), when each label is at
      most :data:`LABEL_MAX` characters;
    - else the runs' names, when they tell the runs apart and are that short;
    - else ``#1``, ``#2``..., with a table line per run naming its folder (runs of
      different experiments whose labels would list dozens of keys)."""
    from .compare import run_labels

    def fit(labels: list[str]) -> bool:
        return len(set(labels)) == len(labels) and all(len(x) <= LABEL_MAX for x in labels)

    by_keys = run_labels(records, ignore=("name", "seed", "tracking"))
    if fit(by_keys):
        return by_keys, []
    names = [r["name"] for r in records]
    if fit(names):
        return names, []
    numbers = [f"#{i}" for i in range(1, len(records) + 1)]
    return numbers, [f"{n:>3}  {Path(r['run_dir']).name}"
                     for n, r in zip(numbers, records, strict=True)]


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
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center",
                            fontsize=6 if n > 10 else 8,
                            color="white" if share[i, j] > 0.5 else "black")


def confusion_matrix_of(run_dir: str | Path,
                        data_dir: str | None = None) -> tuple[np.ndarray, list]:
    """The test-split confusion matrix (rows: true class, columns: predicted) of a
    classification run's weights, and the class names."""
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
    Classification and regression runs get a row of panels each. With ``confusion=True``
    and a single classification run, a third panel shows its test confusion matrix (which needs the
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
    labels, groups, table = _grouped(records)
    legend = 1 < len(groups) <= MAX_LEGEND
    # classification and regression never share an axis: a row of panels each, each
    # with the legend of its own lines
    by_task: dict[str, list[tuple[int, str, list[dict]]]] = {}
    for i, (label, group) in enumerate(zip(labels, groups, strict=True)):
        r = group[0]
        task = (r["summary"] or {}).get("task") or r["config"].get("task", "")
        by_task.setdefault(task, []).append((i, label, group))
    columns = 3 if cm is not None else 2
    fig, axes, table_ax = panel_figure(columns * len(by_task), len(by_task),
                                  len(table) if legend else 0)
    rows = [axes[i * columns:(i + 1) * columns] for i in range(len(by_task))]
    for row, task_groups in zip(rows, by_task.values(), strict=True):
        _draw_curves(row[:2], task_groups, legend)
    if table_ax is not None:
        draw_table(table_ax, table)
    if cm is not None:
        draw_confusion_matrix(axes[2], *cm)
        for row in rows[1:]:
            row[2].set_visible(False)
    if title is None:
        title = records[0]["name"] if len(records) == 1 else f"{len(records)} runs"
    fig.suptitle(title, fontsize=11)
    return save_png(fig, output)
