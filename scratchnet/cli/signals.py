"""Ctrl-C (SIGINT) and SIGTERM for the commands that run for long.

``train`` finishes the batch, saves and exits 130 (143); a download it waits for stops
at once. ``sweep`` and ``tune`` stop their worker processes, record what finished and
print how to resume. Whatever the command, a second signal quits at once.
"""

from __future__ import annotations

import os
import signal

from ..nn import Callback


def say(message: bytes) -> None:
    """One line on stderr from a signal handler (a plain write: a rich console may be in
    the middle of a print on this thread). On a terminal it first clears the line the
    cursor is on, which holds the progress bar (and the ``^C`` the terminal echoed):
    the bar is drawn again below the message, none of it is left above."""
    os.write(2, (b"\r\x1b[2K" if os.isatty(2) else b"\n") + message + b"\n")


class SignalStop:
    """While the ``with`` block runs, SIGINT and SIGTERM call :meth:`first` (once: a
    second signal quits the process at once). ``signum`` is the first signal that came."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @property
    def exit_code(self) -> int:
        """128 + the signal: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)

    def exit(self) -> int:
        """:attr:`exit_code`, once ``sweep`` or ``tune`` has recorded and said what it
        saved: from here the process only exits, so a signal that comes late (while the
        interpreter shuts down the worker pool) is ignored rather than killing it with
        another status. (Once in a dozen runs a stopped sweep was reported as killed by
        SIGINT, -2, after it had printed how to resume.)"""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        return self.exit_code

    def _handle(self, signum, frame):
        if self.signum is not None:
            say(b"stopping now")
            os._exit(128 + signum)
        self.signum = signum
        self.first(signum)

    def first(self, signum: int) -> None:
        raise NotImplementedError


class StopWorkers(SignalStop):
    """``sweep`` and ``tune``: the first signal raises KeyboardInterrupt in the main
    thread, which stops the worker processes (the pool terminates them) and lets the
    command record what finished."""

    def first(self, signum: int) -> None:
        say(b"stopping the workers and recording what finished (Ctrl-C again to quit now)")
        raise KeyboardInterrupt


class GracefulStop(SignalStop, Callback):
    """``train``: the first signal lets the current batch finish, then the run saves and
    exits 130 (143). While ``download`` (a :class:`~scratchnet.cli.render.DownloadBar`)
    has a download under way, the first signal stops it at once instead.

    It is also a callback: ``Trainer.fit`` clears ``stop_requested`` when it starts, so a
    signal that lands before then (while the data loads) is applied again at fit start."""

    def __init__(self, download=None):
        super().__init__()
        self.trainer = None
        self.download = download

    def first(self, signum: int) -> None:
        if self.download is not None and self.download.active:
            say(b"stopping the download")
            raise KeyboardInterrupt
        # (before training starts, "this batch" is the first: on_fit_start applies it)
        say(b"stopping at the end of this batch and saving (Ctrl-C again to quit now)")
        if self.trainer is not None:
            self.trainer.stop_requested = True

    def attach(self, trainer, run_dir):
        self.trainer = trainer
        self.download = None  # the data is in: no download can be under way any more
        trainer.callbacks.append(self)
        if self.signum is not None:
            trainer.stop_requested = True

    def on_fit_start(self, trainer):
        if self.signum is not None:
            trainer.stop_requested = True
