"""How results look to a person: rich tables and progress, never on stdout with --json."""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
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
    """A progress bar while an epoch runs and a row at every evaluation."""

    def __init__(self, console: Console, name: str):
        self.console = console
        self.name = name
        self.task = "classification"  # read from the trainer when the fit starts
        self.progress: Progress | None = None
        self.bar = None
        self._header_done = False

    def on_fit_start(self, trainer):
        self.epochs = trainer.fit_args["epochs"]
        self.task = trainer.history.task
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                console=self.console, transient=True)
            self.progress.start()

    def on_epoch_start(self, trainer, epoch):
        if self.progress is not None:
            if self.bar is not None:
                self.progress.remove_task(self.bar)
            self.bar = self.progress.add_task(f"{self.name} epoch {epoch + 1}/{self.epochs}",
                                              total=None, loss="-")

    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        if self.progress is not None and (batch % 20 == 0 or batch + 1 == n_batches):
            self.progress.update(self.bar, completed=batch + 1, total=n_batches, loss=f"{loss:.4f}")

    def on_evaluate(self, trainer, record):
        cols = metric_columns(self.task)
        if not self._header_done:
            head = f"{'epoch':>6} {'train loss':>11} {'val loss':>10} " + " ".join(f"{c:>9}" for c in cols) + f" {'lr':>9} {'seconds':>8}"
            self.console.print(f"[bold]{head}[/]", highlight=False)
            self._header_done = True
        values = " ".join(f"{(pct(record.get(c)) if c == 'accuracy' else fmt(record.get(c))):>9}" for c in cols)
        self.console.print(
            f"{record['epoch']:>6} {fmt(record['train_loss']):>11} {fmt(record.get('val_loss')):>10} "
            f"{values} {record['lr']:>9.4g} {record['seconds']:>8.1f}", highlight=False)
        for line in health_lines(record.get("health") or []):
            self.console.print(line, highlight=False, markup=False)

    def on_fit_end(self, trainer, history):
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
    Use as a context manager so the bars are cleared at the end."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if self.progress is None:
            from rich.progress import DownloadColumn, TransferSpeedColumn

            self.progress = Progress(TextColumn("downloading {task.description}"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], completed=done)

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
