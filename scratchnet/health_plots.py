"""Pictures of what ``train --health`` records (:mod:`scratchnet.nn.health`), as PNG files:
each layer's health over the evaluations, the gradient reaching each step of a recurrent
layer, and the gradient flow through the layers.

Drawn as :mod:`scratchnet.plots` draws (matplotlib's object-oriented API, only when a
picture is made); read from run folders through :func:`scratchnet.compare.read_run`.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .nn.health import WEIGHTS, main_weights
from .plots import MAX_LEGEND, draw_table, legend_labels, panel_figure, save_png

#: a layer's line style in the health panels (one colour per run, one style per layer)
LAYER_STYLES = ("-", "--", ":", "-.")
#: a gate's marker in the gate panel (one colour per run, one style per layer)
GATE_MARKERS = {"i": "o", "f": "s", "g": "^", "o": "D", "r": "o", "z": "s", "n": "^"}
#: the most evaluations a picture draws as shades (evenly chosen, the first and the last)
MAX_SHADES = 6
#: the most runs a gradient-flow picture holds, one panel each
MAX_FLOW_PANELS = 12


def _read(run_dirs, what: str) -> list[dict]:
    """The runs of ``run_dirs`` that recorded health; a DataError naming them if none did."""
    from .compare import read_run

    if not run_dirs:
        raise ConfigError(f"{what} needs at least one run folder")
    records = [read_run(d) for d in run_dirs]
    watched = [r for r in records if any(h.get("health") for h in r["history"])]
    if not watched:  # a run that diverged at once, in a sweep, is left out
        raise DataError(f"no health records in {', '.join(r['run_dir'] for r in records)}: "
                        "train with --health (or train.health: true) to record them")
    return watched


def _title(records: list[dict], title: str | None) -> str:
    return title or (records[0]["name"] if len(records) == 1 else f"{len(records)} runs")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _health_series(history: list[dict], layer: int, read) -> tuple[list, list]:
    """Epochs and ``read(entry)`` of one layer's health entries, where it is a number."""
    xs, ys = [], []
    for r in history:
        for entry in r.get("health") or []:
            value = read(entry) if entry.get("layer") == layer else None
            if _number(value):
                xs.append(r["epoch"])
                ys.append(value)
    return xs, ys


def _percent(value):
    return None if value is None else 100 * value


#: the health panels over the evaluations: title, y label, how an entry is read, log scale
HEALTH_PANELS = (
    ("dead units (ReLU family)", "dead units (%)", lambda e: _percent(e.get("dead")), False),
    ("inactive outputs (ReLU family)", "inactive (%)", lambda e: _percent(e.get("inactive")),
     False),
    ("saturated outputs (tanh, sigmoid)", "saturated (%)", lambda e: _percent(e.get("saturated")),
     False),
    ("update / weight (W; recurrent: W_h), rule of thumb 1e-3", "||update|| / ||W||",
     lambda e: main_weights(e.get("params") or {}).get("update_ratio"), True),
)


def _evaluations(history: list[dict], key: str) -> list[tuple[int, dict]]:
    """``(epoch, entry)`` of the evaluations whose health has ``key``, at most
    :data:`MAX_SHADES` of them, evenly chosen, the first and the last always."""
    found = [r for r in history if any(e.get(key) for e in r.get("health") or [])]
    if len(found) > MAX_SHADES:
        found = [found[round(i)] for i in np.linspace(0, len(found) - 1, MAX_SHADES)]
    return [(r["epoch"], r) for r in found]


def _draw_steps_back(ax, records, style) -> None:
    """The norm of each recurrent layer's state gradient against the steps back from the
    last step, one colour per run, one line style per layer, the later evaluations darker."""
    for k, r in enumerate(records):
        shown = _evaluations(r["history"], "state_grad")
        for j, (_, record) in enumerate(shown):
            alpha = 1.0 if len(shown) == 1 else 0.25 + 0.75 * j / (len(shown) - 1)
            for e in record["health"]:
                if e.get("state_grad"):
                    points = zip(e["steps_back"], e["state_grad"], strict=True)
                    xs, ys = zip(*[(x, y) for x, y in points if _number(y) and y > 0]
                                 or [(None, None)], strict=True)
                    if xs[0] is not None:
                        ax.plot(xs, ys, color=f"C{k % 10}", ls=style[e["layer"]], lw=1.5,
                                alpha=alpha)
    ax.set_yscale("log")
    ax.set_title("gradient reaching each step (later evaluations darker)", fontsize=10)
    ax.set_xlabel("steps back from the last step")
    ax.set_ylabel("||dL/dh||")


def _draw_gates(ax, records, style) -> list:
    """Each gate's saturated share over the evaluations; returns the gates' legend handles."""
    from matplotlib.lines import Line2D

    gates: dict[str, None] = {}
    for k, r in enumerate(records):
        layers = sorted({e["layer"] for h in r["history"] for e in h.get("health") or []
                         if e.get("gates")})
        for layer in layers:
            names = next(e["gates"] for h in r["history"] for e in h.get("health") or []
                         if e.get("layer") == layer and e.get("gates"))
            for name in names:
                xs, ys = _health_series(r["history"], layer,
                                        lambda e, n=name: _percent((e.get("gates") or {}).get(n)))
                gates[name] = None
                ax.plot(xs, ys, color=f"C{k % 10}", ls=style[layer], lw=1.2,
                        marker=GATE_MARKERS.get(name, "o"), ms=4)
    ax.set_ylim(-3, 103)
    ax.set_title("saturated gates (LSTM, GRU): within 0.01 of a limit", fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("saturated (%)")
    return [Line2D([], [], color="black", ls="", marker=GATE_MARKERS.get(g, "o"), label=f"gate {g}")
            for g in gates]


def health_curves(run_dirs: list[str | Path], output: str | Path, *,
                  title: str | None = None) -> Path:
    """Per-layer health over the evaluations of runs trained with ``train.health`` (see
    :mod:`scratchnet.nn.health`), in one PNG: the dead units and the inactive outputs of
    ReLU-family layers, the saturated outputs of tanh and sigmoid layers (all 0-100%), the
    weights' update-to-weight ratio (log scale, the 1e-3 rule of thumb dashed) and, for
    recurrent layers, the gradient reaching each step back from the last (log scale) and
    the LSTM's and GRU's saturated gates; a panel without a layer it applies to is left
    out. One colour per run (labelled by :func:`~scratchnet.plots.legend_labels`), one
    line style per layer; runs without health records (diverged before their first
    evaluation) are left out. Returns ``output``."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    records = _read(run_dirs, "health_curves")
    labels, table = legend_labels(records)
    legend = len(records) <= MAX_LEGEND  # colours name the runs, styles the layers
    entries = [e for r in records for h in r["history"] for e in h.get("health") or []]
    layers = sorted({e["layer"] for e in entries})
    style = {layer: LAYER_STYLES[j % len(LAYER_STYLES)] for j, layer in enumerate(layers)}
    panels = []
    for panel in HEALTH_PANELS:
        series = [(k, layer, _health_series(r["history"], layer, panel[2]))
                  for k, r in enumerate(records) for layer in layers]
        if any(xs for _, _, (xs, _) in series):  # none for dead units of tanh networks
            panels.append((panel, series))
    extra = [draw for key, draw in (("state_grad", _draw_steps_back), ("gates", _draw_gates))
             if any(e.get(key) for e in entries)]
    count = len(panels) + len(extra)
    rows = 1 if count <= 3 else 2
    fig, axes, table_ax = panel_figure(count, rows, len(table) if legend else 0)
    for ((name, ylabel, _, log), series), ax in zip(panels, axes[:len(panels)], strict=True):
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for draw, ax in zip(extra, axes[len(panels):], strict=True):
        handles = draw(ax, records, style)
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    if legend:  # beside the first row's last panel, never over the lines
        handles = [Line2D([], [], color=f"C{k % 10}", lw=2, label=label)
                   for k, label in enumerate(labels)]
        handles += [Line2D([], [], color="black", ls=style[layer], label=f"layer {layer}")
                    for layer in layers]
        axes[math.ceil(count / rows) - 1].legend(handles=handles, fontsize=7, loc="upper left",
                                                 bbox_to_anchor=(1.02, 1), borderaxespad=0)
    if table_ax is not None:
        draw_table(table_ax, table)
    fig.suptitle(_title(records, title), fontsize=11)
    return save_png(fig, output)


# -- gradient flow ----------------------------------------------------------------------------
def _flow_points(record: dict) -> list[tuple[str, float | None, float | None]]:
    """``(label, mean |grad|, max |grad|)`` of each layer's weights in one evaluation's
    health, in the network's order."""
    points = []
    for e in record.get("health") or []:
        for name in WEIGHTS:
            numbers = (e.get("params") or {}).get(name)
            if numbers is not None:
                label = f"{e['layer']}: {e.get('type', '')}" + (f" {name}" if name != "W" else "")
                label = textwrap.fill(label, 20, break_long_words=False)
                points.append((label, numbers.get("grad_mean"), numbers.get("grad_max")))
    return points


def grad_flow(run_dirs: list[str | Path], output: str | Path, *,
              title: str | None = None) -> Path:
    """The gradient flow of runs trained with ``train.health``, one panel per run: each
    layer's weights (``W``; a recurrent layer's ``W_x`` and ``W_h``) along the x axis, in
    the network's order from input to output, and the mean (solid) and the largest
    (dashed) absolute value of their gradient in the last training batch before an
    evaluation, on a log scale shared by the panels; up to :data:`MAX_SHADES` evaluations,
    from pale green (the first) to dark blue (the last). A layer whose gradient is 0 is
    drawn at the floor of the panel as a downward triangle. Where the lines fall off
    towards the input, the signal dies. Returns ``output``."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    records = _read(run_dirs, "grad_flow")
    if len(records) > MAX_FLOW_PANELS:
        raise ConfigError(f"a gradient-flow picture holds at most {MAX_FLOW_PANELS} runs, one "
                          f"panel each; got {len(records)}")
    flows = []
    for r in records:
        shown = [(epoch, _flow_points(h)) for epoch, h in _evaluations(r["history"], "params")]
        shown = [(epoch, p) for epoch, p in shown if p and any(_number(m) for _, m, _ in p)]
        if not shown:
            raise DataError(f"{r['run_dir']}: its health records hold no gradient statistics "
                            "(grad_mean, grad_max): train it again with --health")
        flows.append(shown)
    values = [v for shown in flows for _, p in shown for _, m, x in p for v in (m, x)
              if _number(v) and v > 0]
    floor = 10 ** math.floor(math.log10(min(values))) / 10 if values else 1e-12
    labels, _ = legend_labels(records)
    columns = min(3, len(records))
    fig, axes, _ = panel_figure(len(records), math.ceil(len(records) / columns))
    for ax, shown, label in zip(axes, flows, labels, strict=True):
        ticks = [t for t, _, _ in shown[-1][1]]
        for j, (epoch, points) in enumerate(shown):
            colour = colormaps["viridis_r"](0.2 + 0.8 * j / max(len(shown) - 1, 1))
            for index, ls, marker in ((1, "-", "o"), (2, "--", "^")):
                ys = [p[index] if _number(p[index]) else math.nan for p in points]
                ax.plot(range(len(ys)), [max(y, floor) for y in ys], color=colour, ls=ls,
                        marker=marker, ms=4, lw=1.5,
                        label=f"epoch {epoch}" if index == 1 else None)
                zeros = [i for i, y in enumerate(ys) if y == 0]
                ax.plot(zeros, [floor] * len(zeros), ls="", marker="v", ms=8, color="crimson")
        ax.set_yscale("log")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
        ax.set_xlim(-0.4, len(ticks) - 0.6)
        ax.set_xlabel("layer (input to output)")
        ax.set_ylabel("|gradient| of the weights")
        ax.set_title(label if len(records) > 1 else "", fontsize=10)
        ax.grid(True, alpha=0.3)
        handles = [Line2D([], [], color="black", ls="-", marker="o", label="mean"),
                   Line2D([], [], color="black", ls="--", marker="^", label="largest")]
        ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=7, loc="best")
    low, high = min(a.get_ylim()[0] for a in axes), max(a.get_ylim()[1] for a in axes)
    for ax in axes:  # one scale for every run, so that their panels compare
        ax.set_ylim(max(low, floor / 2), high)
    fig.suptitle(f"gradient flow: {_title(records, title)}", fontsize=11)
    return save_png(fig, output)
