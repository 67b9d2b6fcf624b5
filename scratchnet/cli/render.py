"""How results look to a person: rich tables and progress, never on stdout with --json."""

from __future__ import annotations

import math
import os
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..nn import Callback
from ..nn.health import main_weights
from ..nn.metrics import TASK_METRICS
from .app import live_consoles


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


def metric_columns(task: str, text: bool = False) -> list[str]:
    """The metrics a row of a run shows: a character model's also its validation loss in
    bits per character and its perplexity."""
    if text:
        return ["accuracy", "bits_per_char", "perplexity"]
    return list(TASK_METRICS[task])


#: how a metric's column is headed, where not by its name
LABELS = {"bits_per_char": "bits/char"}


def _column(name: str) -> tuple[str, int]:
    """A metric's header and its column's width (9, or the header's)."""
    label = LABELS.get(name, name)
    return label, max(9, len(label))


class ConsoleReporter(Callback):
    """What ``train`` shows while a run trains, all on one ``console``: a row per epoch
    (the training loss; the validation columns at evaluations, with the health lines of
    ``--health`` under them) and, when the console is a terminal, one progress bar under
    the rows for the whole run: the epoch, the epoch's running mean loss, samples per
    second, the time elapsed and the time the rest of the run will take.

    The rows are printed through the bar's own console, which lifts the bar, prints the
    row and draws the bar again below it; a second console writing to the same terminal
    would race the bar's redraws and leave pieces of it between the rows. The bar is
    fitted to the terminal's width (a long experiment name is shortened, never the
    times) and cleared when the fit ends, is stopped (Ctrl-C) or fails (:meth:`close`).
    Where the console is not a terminal (a file, a pipe, CI) there is no bar: the rows
    are one plain line per epoch."""

    #: the narrowest bar and the widest (room beyond the narrowest goes to the name first)
    BAR_MIN, BAR_MAX = 10, 40

    def __init__(self, console: Console, name: str):
        self.console = console
        self.name = name
        self.task = "classification"  # read from the trainer when the fit starts
        self.progress: Progress | None = None
        self.bar = None
        self._header_done = False

    def on_fit_start(self, trainer):
        self.epochs = trainer.fit_args["epochs"]
        self.batch_size = trainer.fit_args["batch_size"]
        self.task = trainer.history.task
        self.text = getattr(trainer, "text", False)
        self._loss_sum, self._batches, self._seen, self._t0 = 0.0, 0, 0, time.perf_counter()
        self._loss, self._rate = "-", None

    def on_epoch_start(self, trainer, epoch):
        self._loss_sum, self._batches, self._epoch = 0.0, 0, epoch
        if self.progress is None and self.console.is_terminal:  # the fit's first epoch
            from rich.progress import TimeElapsedColumn

            self._bar_column = BarColumn(bar_width=self.BAR_MIN)
            self.progress = Progress(
                TextColumn("{task.description}", style="bold", markup=False),
                self._bar_column, TextColumn("{task.fields[after]}", markup=False),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=True)
            self.bar = self.progress.add_task("", total=None, after="")
            self._show()
            self.progress.start()
            live_consoles.append(self.console)
        if self.progress is not None:  # drawn at least once an epoch, however busy the CPU
            self._show(refresh=True)

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
            self._rate = self._seen / max(time.perf_counter() - self._t0, 1e-9)
            self._loss = f"{self._loss_sum / self._batches:.4f}"
            self._show(completed=done, total=self.epochs * n_batches)

    def _show(self, refresh: bool = False, **counts) -> None:
        """Update the bar, its texts fitted to the console's width as it is now."""
        description, after, self._bar_column.bar_width = bar_layout(
            self.console.width, self.name, f"epoch {self._epoch + 1}/{self.epochs}",
            self._loss, self._rate)
        self.progress.update(self.bar, description=description, after=after, refresh=refresh,
                             **counts)

    def on_epoch_end(self, trainer, epoch):
        row = trainer.history.last_row()
        cols = [(c, *_column(c)) for c in metric_columns(self.task, self.text)]
        if not self._header_done:
            if self.text:
                self._print("losses in nats per character; bits/char and perplexity: the "
                            "validation loss's", markup=False)
            head = f"{'epoch':>6} {'train loss':>11} {'val loss':>10} " + \
                " ".join(f"{label:>{w}}" for _, label, w in cols) + f" {'lr':>9} {'seconds':>8}"
            self._print(f"[bold]{head}[/]")
            self._header_done = True
        values = " ".join(f"{(pct(row.get(c)) if c == 'accuracy' else fmt(row.get(c))):>{w}}"
                          for c, _, w in cols)
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
            live_consoles.remove(self.console)


def bar_layout(width: int, name: str, epoch: str, loss: str,
               rate: float | None) -> tuple[str, str, int]:
    """The progress bar's line fitted to a terminal ``width`` columns wide:
    ``(description, the text after the bar, the bar's width)``, laid out as
    ``NAME epoch 3/8 BAR loss 0.0281 50,977 samples/s 0:00:01 ETA 0:00:02``.

    The epoch, the loss, the times and "ETA" always keep their room; the rate is written
    ``50,977/s`` under 100 columns; the bar takes 10 to 40 columns; the experiment name
    gets what is left, cut short with an ellipsis (left out when under 4 columns are
    left). The line stays a column short of ``width``, so no terminal wraps it."""
    unit = " samples/s" if width >= 100 else "/s"
    after = f"loss {loss}" + (f" {rate:,.0f}{unit}" if rate is not None else "")
    # six columns, a space between each: name epoch | bar | after | elapsed | ETA | remaining;
    # the text after the bar has the room of a usual one before it is known (a steady line)
    times = len("0:00:00") * 2 + len("ETA")
    usual = max(len(after), len(f"loss 0.0000 000,000{unit}"))
    room = width - 1 - (len(epoch) + usual + times + 6)  # for the name and the bar
    bar_min, bar_max = ConsoleReporter.BAR_MIN, ConsoleReporter.BAR_MAX
    if len(name) > room - bar_min:
        name = name[:room - bar_min - 1] + "…" if room - bar_min >= 4 else ""
    bar = min(bar_max, max(bar_min, room - len(name)))
    return (f"{name} {epoch}" if name else epoch), after, bar


def _sci(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def health_lines(health: list[dict]) -> list[str]:
    """An evaluation's per-layer health (``train --health``) as indented table lines, 79
    columns wide: the activations' mean and spread, the dead, inactive and saturated
    shares, and the weights' gradient norm and update-to-weight ratio (a recurrent
    layer's W_h; the biases', the gates' and the state gradients are in metrics.jsonl)."""
    if not health:
        return []

    lines = [f"  {'layer':>5} {'activation':<10} {'mean':>7} {'std':>6} {'dead':>7} "
             f"{'inactive':>8} {'saturated':>9} {'|grad W|':>8} {'update/W':>8}"]
    for h in health:
        w = main_weights(h["params"])
        lines.append(f"  {h['layer']:>5} {h['activation'] or '-':<10} {h['mean']:>7.3f} "
                     f"{h['std']:>6.3f} {pct(h['dead']):>7} {pct(h.get('inactive')):>8} "
                     f"{pct(h['saturated']):>9} "
                     f"{_sci(w.get('grad_norm')):>8} {_sci(w.get('update_ratio')):>8}")
    return lines


class DownloadBar:
    """The progress callback the library's downloads report to, ``bar(file, done,
    total)``: a transient bar for the file under way on the console, cleared as soon as
    the file is in (a training bar comes next on the same terminal). ``active`` while a
    file is under way (from its first call to the one that says it is complete,
    ``done == total``), so Ctrl-C can stop a download at once; ``current`` is the file's
    name. Use as a context manager so that a bar is cleared however the download ends."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.task = None
        self.active = False
        self.current: str | None = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        self.active, self.current = not finished, name
        if finished and self.progress is None:  # its bar is gone already
            return
        if self.progress is None:
            from rich.progress import DownloadColumn, TransferSpeedColumn

            self.progress = Progress(TextColumn("downloading {task.description}"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(name, total=total)
        self.progress.update(self.task, description=name, completed=done, total=total)
        if finished:
            self.__exit__()

    def __enter__(self) -> "DownloadBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


#: a run's ``weights`` (summary.json) -> which weights weights.safetensors holds
KEPT = {"best": "the best evaluation", "last": "the last", "notebook": "by the notebook's rule",
        "best so far": "the best evaluation so far"}


def kept_weights(summary: dict) -> str:
    """Which weights a run folder holds (:data:`scratchnet.constants.WEIGHTS_RULE`), as its
    summary says: ``epoch 12, the best evaluation``, ``epoch 20, the last``, ``epoch 15,
    by the notebook's rule``, ``epoch 2, the best evaluation so far`` or, for a run
    stopped before its first evaluation, ``not evaluated yet``."""
    kept, epoch = summary.get("weights"), summary.get("weights_epoch")
    if kept == "unevaluated":
        return "not evaluated yet"
    return f"epoch {epoch}, {KEPT[kept]}" if kept in KEPT and epoch is not None else "-"


def best_epoch(summary: dict) -> str:
    """The best evaluation's epoch, and by what when early stopping monitored another
    value than the validation loss: ``12 (validation accuracy 97.50%)``."""
    epoch, metric, value = (summary.get(k) for k in ("best_epoch", "best_metric", "best_value"))
    if epoch is None or metric in (None, "val_loss"):
        return fmt(epoch)
    shown = pct(value) if metric == "accuracy" else fmt(value)
    return f"{epoch} (validation {metric} {shown})"


def summary_table(summary: dict) -> Table:
    table = Table(title=f"{summary['name']}: {summary['status']}", show_header=False, box=None)
    test = summary.get("test") or {}
    for key in ("accuracy", "mae", "rmse", "r2", "loss", "bits_per_char", "perplexity"):
        if key in test:
            table.add_row(f"test {LABELS.get(key, key)}",
                          pct(test[key]) if key == "accuracy" else fmt(test[key]))
    table.add_row("best epoch", best_epoch(summary))
    table.add_row("weights", kept_weights(summary))
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
                  cells: list[list[str]], width: int, section: int = 0,
                  what: str = "run") -> list[Table]:
    """Tables of ``cells[run][field]`` laid out for a terminal ``width`` wide, nothing cut:
    one row per run when that fits; else turned so each run is a column (fields down the
    side, a rule under the first ``section`` of them); else those columns in as many
    tables as it takes. Cells wrap, never end in an ellipsis. ``what`` a row is called
    (a run; a sweep's grid point)."""
    # a column's width: its widest text and 3 for the padding and the rule beside it
    columns_of_fields = [labels, *zip(*cells, strict=True)] if cells else [labels]
    wide = 1 + sum(3 + _natural([name, *col]) for name, col in
                   zip([what, *fields], columns_of_fields, strict=True))
    if wide <= width:
        table = Table(title=title)
        for i, name in enumerate([what, *fields]):
            table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
        for label, row in zip(labels, cells, strict=True):
            table.add_row(label, *row)
        return [table]
    side = 4 + _natural(fields)
    columns = [3 + _natural([label, *row]) for label, row in zip(labels, cells, strict=True)]
    tables, start = [], 0
    while start < len(labels):
        end, used = start, side
        while end < len(labels) and (end == start or used + columns[end] <= width):
            used += columns[end]
            end += 1
        part = title if start == 0 and end == len(labels) else \
            f"{title}: {what}s {start + 1}-{end} of {len(labels)}"
        table = Table(title=part)
        table.add_column("", overflow="fold")
        for label in labels[start:end]:
            table.add_column(label, justify="right", overflow="fold")
        for j, name in enumerate(fields):
            table.add_row(name, *[row[j] for row in cells[start:end]],
                          end_section=j + 1 == section)
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
