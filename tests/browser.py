"""A real browser for the tests: headless Chromium (Debian's ``chromium`` package) driven
through the DevTools protocol over ``--remote-debugging-pipe`` (NUL-separated JSON on the
child's file descriptors 3 and 4), in pure Python: no websocket library, no Playwright.

    with Browser() as browser:            # skips the test when Chromium is absent
        visit = browser.open(Path("report.html"), width=390)
        visit.images, visit.console_errors, visit.requests, browser.screenshot(...)

Every start and every wait has a deadline; the browser runs with the network off (its
flags, and the DevTools' offline emulation on top) and a fresh profile folder.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: the names Debian and others give the browser
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: seconds a start, and any single answer, may take
START_TIMEOUT, ANSWER_TIMEOUT = 60.0, 60.0
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--remote-debugging-pipe")

#: run in the page after it loaded: every image decoded (or why not), what the page holds
PAGE_FACTS = """(async () => {
  const images = await Promise.all([...document.images].map(async (img) => {
    try { await img.decode(); } catch (e) { return {alt: img.alt, ok: false, why: String(e)}; }
    return {alt: img.alt, ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
            shown: img.getBoundingClientRect().width};
  }));
  const linked = [...document.querySelectorAll("[src],[href]")]
    .map((e) => e.getAttribute("src") || e.getAttribute("href"))
    .filter((u) => !u.startsWith("data:") && !u.startsWith("#"));
  return {images, linked, scripts: document.scripts.length,
          stylesheets: document.querySelectorAll("link[rel=stylesheet]").length,
          scrollWidth: document.documentElement.scrollWidth,
          nav: getComputedStyle(document.querySelector("nav")).display,
          viewport: window.innerWidth, title: document.title,
          text: document.body.innerText};
})()"""


def chromium() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@dataclass
class Visit:
    """What one page load showed: the page's facts (:data:`PAGE_FACTS`), the console's
    errors and the page's uncaught exceptions, and every URL the page asked for."""

    facts: dict
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    def __init__(self):
        self.path = chromium()
        if self.path is None:
            pytest.skip("no Chromium here (apt-get install -y chromium; .ci/run installs it)")
        self._id = 0
        self._buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> "Browser":
        self.profile = tempfile.mkdtemp(prefix="scratchnet-chromium-")
        to_child, self._out = os.pipe()  # we write commands, it reads them on fd 3
        self._in, from_child = os.pipe()  # it writes answers on fd 4, we read them

        def descriptors():  # in the child: its ends as fds 3 and 4, whatever they were
            ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.process = subprocess.Popen(  # (fds other than 0-4 are closed after descriptors)
            [self.path, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=descriptors, pass_fds=(3, 4))
        os.close(to_child)
        os.close(from_child)
        target = self.call("Target.createTarget", {"url": "about:blank"},
                           timeout=START_TIMEOUT)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target,
                                                            "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
            session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.process.terminate()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for fd in (self._in, self._out):
            os.close(fd)
        self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol -------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, *, session: bool = False,
             timeout: float = ANSWER_TIMEOUT) -> dict:
        """Send one command and wait for its answer (events that come meanwhile are kept
        in :attr:`events`); an error answer fails the test."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(timeout, f"an answer to {method}")
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = ANSWER_TIMEOUT) -> dict:
        """The first event ``method`` (from those kept, or the next to come)."""
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read(timeout, f"the event {method}")
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _read(self, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._in], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"Chromium gave no {what} within {timeout:.0f} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                err = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise AssertionError(f"Chromium ended before {what}: {err}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(line)

    # -- what the tests do ----------------------------------------------------------------
    def open(self, path: Path, width: int = 1200, height: int = 900,
             mobile: bool = False, media: str = "screen") -> Visit:
        """Load the file ``path`` in a window ``width`` CSS pixels wide (a phone's, with
        ``mobile``), its CSS media ``media``; wait for its load event, then read it."""
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=True)
        self.call("Emulation.setEmulatedMedia", {"media": media}, session=True)
        self.events.clear()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")
        facts = self.call("Runtime.evaluate", {"expression": PAGE_FACTS, "awaitPromise": True,
                                               "returnByValue": True}, session=True)
        visit = Visit(facts["result"]["value"])
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                visit.console_errors.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                visit.console_errors.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.console_errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
        return visit

    def screenshot(self, output: Path) -> Path:
        """The whole page as it is laid out now, as a PNG."""
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}}, session=True)
        output.write_bytes(base64.b64decode(shot["data"]))
        return output

    def pdf(self) -> bytes:
        """The page printed (its print CSS), as PDF bytes."""
        return base64.b64decode(self.call("Page.printToPDF", {"printBackground": False},
                                          session=True)["data"])
