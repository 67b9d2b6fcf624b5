"""Downloading one file: atomically, within a deadline, reporting progress to a callback.

The library never prints: whoever wants a progress bar passes ``progress(name, done,
total)`` (``total`` is None when the server does not say), and the command line draws it.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import DataError

#: ``progress(file name, bytes so far, total bytes or None)``
Progress = Callable[[str, int, "int | None"], None]

#: Seconds to wait for a server to answer (connect, or any one read) before giving up
#: on it: no network fails fast.
DOWNLOAD_TIMEOUT = 10.0
#: Seconds one whole file may take; a server that trickles bytes is given up on.
DOWNLOAD_DEADLINE = 300.0
_BLOCK = 1 << 16


def fetch(url: str, dest: Path, progress: Progress | None = None, *,
          timeout: float | None = None, deadline: float | None = None) -> None:
    """Download ``url`` to ``dest`` through a ``.part`` file renamed at the end, so a
    stopped download never leaves a partial file under the final name.

    Each read waits at most ``timeout`` seconds; once ``deadline`` seconds have passed the
    download is abandoned with a :class:`~scratchnet.errors.DataError` (so it ends within
    ``deadline + timeout``). Network errors are urllib's (``OSError`` subclasses).
    ``progress`` may raise (KeyboardInterrupt, say) to stop at once."""
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    deadline = DOWNLOAD_DEADLINE if deadline is None else deadline
    request = urllib.request.Request(url, headers={"User-Agent": "scratchnet"})
    fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    part = Path(part_name)
    started = time.monotonic()
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while True:
                if time.monotonic() - started > deadline:
                    raise DataError(f"{url}: gave up after {deadline:g} s with {done} bytes "
                                    "received (the server is too slow)")
                block = response.read1(_BLOCK) if hasattr(response, "read1") \
                    else response.read(_BLOCK)
                if not block:
                    break
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(dest.name, done, total)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)

