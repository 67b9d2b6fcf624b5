"""How results look to a person: rich tables and progress, never on stdout with --json."""

from __future__ import annotations

import math
import os
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..nn import Callback


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}f}"
    return str(value)


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def metric_columns(task: str) -> list[str]:
    return ["accuracy"] if task == "classification" else ["mae", "rmse", "r2"]


class ConsoleReporter(Callback):
    """What ``train`` shows while a run trains: a row per epoch on ``console`` (the
    training loss; the validation columns at evaluations, with the health lines of
    ``--health`` under them), and on ``bar_console``, when it is a terminal, one progress
    bar for the whole run: the epoch, the epoch's running mean loss, samples per second,
    time elapsed and the time the rest of the run will take. The bar is cleared when the
    fit ends, is stopped (Ctrl-C) or fails (:meth:`close`); it is never left behind, and
    where the bar's console is not a terminal (a log file, CI) there is none: the rows
    are one plain line per epoch."""

    def __init__(self, console: Console, name: str, bar_console: Console | None = None):
        self.console = console
        self.name = name
        self.bar_console = console if bar_console is None else bar_console
        self.task = "classification"  # read from the trainer when the fit starts
        self.progress: Progress | None = None
        self.bar = None
        self._header_done = False

    def on_fit_start(self, trainer):
        self.epochs = trainer.fit_args["epochs"]
        self.batch_size = trainer.fit_args["batch_size"]
        self.task = trainer.history.task
        self._loss_sum, self._batches, self._seen, self._t0 = 0.0, 0, 0, time.perf_counter()
        if self.bar_console.is_terminal:
            from rich.progress import TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.bar_console, transient=True)
            self.progress.start()

    def on_epoch_start(self, trainer, epoch):
        self._loss_sum, self._batches = 0.0, 0
        if self.progress is not None:
            description = f"{self.name} epoch {epoch + 1}/{self.epochs}"
            if self.bar is None:
                self.bar = self.progress.add_task(description, total=None, loss="-", rate="")
            self.progress.update(self.bar, description=description)

    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        self._loss_sum += loss
        self._batches += 1
        self._seen += self.batch_size
        if self.progress is None:
            return
        done = epoch * n_batches + batch + 1
        if self._seen == self.batch_size:  # the fit's first batch: a resumed run starts part-way
            self.progress.reset(self.bar, total=self.epochs * n_batches, completed=done)
        if batch % 20 == 0 or batch + 1 == n_batches:
            rate = self._seen / max(time.perf_counter() - self._t0, 1e-9)
            self.progress.update(self.bar, completed=done, total=self.epochs * n_batches,
                                 loss=f"{self._loss_sum / self._batches:.4f}",
                                 rate=f"{rate:,.0f} samples/s")

    def on_epoch_end(self, trainer, epoch):
        row = trainer.history.last_row()
        cols = metric_columns(self.task)
        if not self._header_done:
            head = f"{'epoch':>6} {'train loss':>11} {'val loss':>10} " + \
                " ".join(f"{c:>9}" for c in cols) + f" {'lr':>9} {'seconds':>8}"
            self._print(f"[bold]{head}[/]")
            self._header_done = True
        values = " ".join(f"{(pct(row.get(c)) if c == 'accuracy' else fmt(row.get(c))):>9}"
                          for c in cols)
        self._print(f"{row['epoch']:>6} {fmt(row['train_loss']):>11} "
                    f"{fmt(row.get('val_loss')):>10} {values} {row['lr']:>9.4g} "
                    f"{row['seconds']:>8.1f}")
        for line in health_lines(row.get("health") or []):
            self._print(line, markup=False)

    def _print(self, text: str, markup: bool = True) -> None:
        self.console.print(text, highlight=False, markup=markup)

    def on_fit_end(self, trainer, history):
        self.close()

    def close(self) -> None:
        """Clear the bar (also after an error, so that none is left on the screen)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _sci(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def health_lines(health: list[dict]) -> list[str]:
    """An evaluation's per-layer health (``train --health``) as indented table lines: the
    activations' mean and spread, the dead, inactive and saturated shares, and the weights'
    gradient norm and update-to-weight ratio (the biases' are in metrics.jsonl)."""
    if not health:
        return []
    lines = [f"{'':6} {'layer':>5} {'activation':<11} {'mean':>7} {'std':>7} {'dead':>7} "
             f"{'inactive':>8} {'saturated':>9} {'|grad W|':>8} {'update/W':>8}"]
    for h in health:
        w = h["params"].get("W", {})
        lines.append(f"{'':6} {h['layer']:>5} {h['activation'] or '-':<11} {h['mean']:>7.3f} "
                     f"{h['std']:>7.3f} {pct(h['dead']):>7} {pct(h.get('inactive')):>8} "
                     f"{pct(h['saturated']):>9} "
                     f"{_sci(w.get('grad_norm')):>8} {_sci(w.get('update_ratio')):>8}")
    return lines


class DownloadBar:
    """The progress callback the library's downloads report to, ``bar(file, done,
    total)``: a transient bar per file on the console, only when something downloads.
    ``active`` while a file is under way (from its first call to the one that says it is
    complete, ``done == total``), so Ctrl-C can stop a download at once; ``current`` is
    the file's name. Use as a context manager so the bars are cleared at the end."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}
        self.active = False
        self.current: str | None = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        self.active, self.current = total is None or done < total, name
        if self.progress is None:
            from rich.progress import DownloadColumn, TransferSpeedColumn

            self.progress = Progress(TextColumn("downloading {task.description}"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], completed=done, total=total)

    def __enter__(self) -> "DownloadBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def summary_table(summary: dict) -> Table:
    table = Table(title=f"{summary['name']}: {summary['status']}", show_header=False, box=None)
    test = summary.get("test") or {}
    for key in ("accuracy", "mae", "rmse", "r2", "loss"):
        if key in test:
            table.add_row(f"test {key}", pct(test[key]) if key == "accuracy" else fmt(test[key]))
    table.add_row("best epoch", fmt(summary.get("best_epoch")))
    kept = summary.get("weights_epoch")
    if kept is not None and kept != summary.get("best_epoch"):  # last, or the notebook's E - 1
        table.add_row("weights from", f"epoch {kept} ({summary.get('weights')})")
    table.add_row("epochs run", fmt(summary.get("epochs_run")))
    table.add_row("stopped early", "yes" if summary.get("stopped_early") else "no")
    if summary.get("seconds") is not None:
        table.add_row("seconds", f"{summary['seconds']:.1f}")
    table.add_row("run folder", summary["run_dir"])
    return table


def comparison_table(summaries: list[dict], title: str = "comparison") -> Table:
    table = Table(title=title)
    for col in ("experiment", "status", "accuracy", "mae", "rmse", "test loss", "best epoch",
                "epochs", "seconds"):
        table.add_column(col, justify="left" if col in ("experiment", "status") else "right")
    for s in summaries:
        test = s.get("test") or {}
        table.add_row(s.get("name", "?"), s.get("status", "?"), pct(test.get("accuracy")),
                      fmt(test.get("mae"), 3), fmt(test.get("rmse"), 3), fmt(test.get("loss")),
                      fmt(s.get("best_epoch")), fmt(s.get("epochs_run")),
                      f"{s['seconds']:.1f}" if s.get("seconds") is not None else "-")
    return table


def _natural(texts) -> int:
    return max((len(t) for t in texts), default=0)


def fitted_tables(title: str, labels: list[str], fields: list[str],
                  cells: list[list[str]], width: int) -> list[Table]:
    """Tables of ``cells[run][field]`` laid out for a terminal ``width`` wide, nothing cut:
    one row per run when that fits; else turned so each run is a column (fields down the
    side); else those columns in as many tables as it takes. Cells wrap, never end in
    an ellipsis."""
    # a column's width: its widest text and 3 for the padding and the rule beside it
    wide = 1 + sum(3 + _natural([name, *col]) for name, col in
                   zip(["run", *fields], zip(labels, *zip(*cells)) if cells else []))
    if wide <= width:
        table = Table(title=title)
        for i, name in enumerate(["run", *fields]):
            table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
        for label, row in zip(labels, cells):
            table.add_row(label, *row)
        return [table]
    side = 4 + _natural(fields)
    columns = [3 + _natural([label, *row]) for label, row in zip(labels, cells)]
    tables, start = [], 0
    while start < len(labels):
        end, used = start, side
        while end < len(labels) and (end == start or used + columns[end] <= width):
            used += columns[end]
            end += 1
        part = title if start == 0 and end == len(labels) else \
            f"{title}: runs {start + 1}-{end} of {len(labels)}"
        table = Table(title=part)
        table.add_column("", overflow="fold")
        for label in labels[start:end]:
            table.add_column(label, justify="right", overflow="fold")
        for j, name in enumerate(fields):
            table.add_row(name, *[row[j] for row in cells[start:end]])
        tables.append(table)
        start = end
    return tables


def run_labels_short(names: list[str], longest: int = 16) -> list[str]:
    """A short label per run: its name without what every name begins with (a sweep's
    ``name-``), when that leaves short labels that tell the runs apart; ``#1``, ``#2``...
    otherwise."""
    cut = 0
    if len(names) > 1:
        common = os.path.commonprefix(names)
        cut = max(common.rfind("-"), common.rfind("_")) + 1
    labels = [n[cut:] for n in names]
    if len(set(labels)) == len(labels) and all(0 < len(x) <= longest for x in labels):
        return labels
    return [f"#{i}" for i in range(1, len(names) + 1)]
