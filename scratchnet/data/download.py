"""Downloading one file: atomically, within a deadline, reporting progress to a callback.

The library never prints: whoever wants a progress bar passes ``progress(name, done,
total)`` (``total`` is None when the server does not say), and the command line draws it.
A download reports ``(name, 0, None)`` before it connects and ``(name, done, done)`` once
the file is complete, so the callback knows when one is under way.
"""

from __future__ import annotations

import email.message
import http.client
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Callable
from pathlib import Path

from .. import files
from ..errors import ConfigError, DataError

#: ``progress(file name, bytes so far, total bytes or None)``
Progress = Callable[[str, int, "int | None"], None]

#: Seconds to wait for a server to answer (connect, or any one read) before giving up
#: on it: no network fails fast. ``$SCRATCHNET_DOWNLOAD_TIMEOUT`` overrides it.
DOWNLOAD_TIMEOUT = 10.0
#: Seconds one whole file may take, its headers included; a server that trickles bytes
#: is given up on. ``$SCRATCHNET_DOWNLOAD_DEADLINE`` overrides it.
DOWNLOAD_DEADLINE = 300.0
_BLOCK = 1 << 16


def env_seconds(name: str, default: float) -> float:
    """The positive number of seconds in the environment variable ``name``, else
    ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"${name}: got {text!r}; expected a positive number of seconds")
    return value


def _opener(sockets: list, limit: int) -> urllib.request.OpenerDirector:
    """urllib's opener for ``http://``, ``https://`` and ``file://`` only (an ``ftp://``
    connection would escape the deadline): HTTP and HTTPS connections put their sockets in
    ``sockets`` (for the deadline to shut), certificates checked as urllib does by default;
    a local file is opened as every file scratchnet reads is (never a named pipe, which
    would wait forever, nor anything over ``limit`` bytes)."""
    def watched(base: type[http.client.HTTPConnection]) -> type:
        class Watched(base):
            def connect(self):
                super().connect()
                sockets.append(self.sock)
        return Watched

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req)

    class LocalFile(urllib.request.BaseHandler):
        def file_open(self, req):
            if req.host not in ("", "localhost"):
                raise urllib.error.URLError(f"file://{req.host}/: not this machine")
            f = files.open_regular(urllib.request.url2pathname(req.selector), limit,
                                   "a file to download")
            headers = email.message.Message()
            headers["Content-Length"] = str(os.fstat(f.fileno()).st_size)
            return urllib.response.addinfourl(f, headers, req.full_url)

    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    HTTP(), HTTPS(), LocalFile(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def fetch(url: str, dest: Path, progress: Progress | None = None, *,
          timeout: float | None = None, deadline: float | None = None,
          limit: int | None = None) -> None:
    """Download ``url`` (``http://``, ``https://`` or ``file://``) to ``dest`` through a
    ``.part`` file renamed at the end, so a stopped download never leaves a partial file
    under the final name.

    Each read waits at most ``timeout`` seconds; once ``deadline`` seconds have passed the
    connection is shut, whatever it was doing (even reading headers sent a byte at a
    time), and the download is abandoned with a :class:`~scratchnet.errors.DataError`
    (its message leaves out ``url``, which the caller names). A body shorter than the
    server's Content-Length is a DataError too, and so is one of more than ``limit``
    bytes (the most the file can hold; :data:`~scratchnet.files.MAX_IDX_BYTES` unless
    given), refused from its Content-Length or cut off once that many have come. Network
    errors are urllib's (``OSError`` subclasses).
    ``progress`` may raise (KeyboardInterrupt, say) to stop at once."""
    timeout = env_seconds("SCRATCHNET_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT) \
        if timeout is None else timeout
    deadline = env_seconds("SCRATCHNET_DOWNLOAD_DEADLINE", DOWNLOAD_DEADLINE) \
        if deadline is None else deadline
    limit = files.MAX_IDX_BYTES if limit is None else limit
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for sock in list(sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    opener = _opener(sockets, limit)
    request = urllib.request.Request(url, headers={"User-Agent": "scratchnet"})
    watchdog = threading.Timer(deadline, expire)
    watchdog.daemon = True
    fd, part_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    part = Path(part_name)
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            if progress is not None:
                progress(dest.name, 0, None)
            watchdog.start()
            with opener.open(request, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                if total is not None and total > limit:
                    raise DataError(f"the server announces {total:,} bytes, more than the "
                                    f"{limit:,} this file can hold")
                # (the deadline also ends a source that is no socket, between reads)
                while not expired.is_set() and (block := response.read1(_BLOCK)):
                    done += len(block)
                    if done > limit:
                        raise DataError(f"the server sent more than the {limit:,} bytes this "
                                        "file can hold; stopped reading")
                    out.write(block)
                    if progress is not None:
                        progress(dest.name, done, total)
        if expired.is_set():
            raise TimeoutError
        if total is not None and done < total:
            raise DataError(f"the server closed the connection after {done} of {total} bytes")
        os.replace(part, dest)
        if progress is not None:
            progress(dest.name, done, done)
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set():
            raise DataError(f"gave up after {deadline:g} s with {done} bytes received (the "
                            "server is too slow)") from None
        if isinstance(e, http.client.HTTPException):
            raise OSError(f"{type(e).__name__}: {e}") from None
        raise
    finally:
        watchdog.cancel()
        part.unlink(missing_ok=True)
