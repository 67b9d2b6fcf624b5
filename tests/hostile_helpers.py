"""What the hostile tests (test_hostile*.py) share: the time limit of one command, the
one-line check of an error, a small trained run to damage, and a command run within
bounds of time and memory."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import write_config
from scratchnet.config import load_config
from scratchnet.experiment import train_experiment

LIMIT = 60  # seconds any one command may take before the test fails instead of hanging


def one_line(err: str) -> str:
    """The one line of ``err``, which holds no traceback and no internal error."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished two-epoch digits run (trained in this process, in a second)."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(write_config(out, "tiny"))
    return train_experiment(cfg, out=out / "runs").run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of :func:`trained` that a test may damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


#: the address space (RLIMIT_AS) of a command in a bounded test: a regression that
#: allocates what a hostile file asks for fails here instead of swapping the machine
MEMORY = 3 << 30
#: one BLAS thread, so that the address space of a run does not grow with the machine's
#: cores (OpenBLAS reserves a buffer per thread)
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_bounded(args, cwd, *, memory: int = MEMORY, timeout: float = LIMIT,
                env: dict | None = None, file_size: int | None = None
                ) -> tuple[int, str, str, int]:
    """``python -m scratchnet ARGS`` in ``cwd`` (``env`` added to the environment, a None
    value removing its variable) within ``timeout`` seconds and ``memory`` bytes of address
    space (and, with ``file_size``, files of at most that many bytes:
    RLIMIT_FSIZE, a full disk without a disk): ``(exit code, stdout, stderr, peak
    resident bytes)``. A command still running at the deadline is killed and fails the
    test."""
    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it: EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    full_env = {k: v for k, v in os.environ.items()
                if k not in ("SCRATCHNET_DEBUG", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    for key, value in {**_ONE_THREAD, **(env or {})}.items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "scratchnet", *map(str, args)],
                                cwd=cwd, env=full_env, stdout=out, stderr=err,
                                preexec_fn=limits)
        deadline = time.monotonic() + timeout
        while True:  # (wait4: the child's own peak memory, which Popen.wait drops)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"scratchnet {' '.join(map(str, args))} still ran after "
                            f"{timeout} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), usage.ru_maxrss * 1024


@contextmanager
def loopback_server(serve):
    """A TCP server on 127.0.0.1 that calls ``serve(connection)`` in a thread of its own
    for each connection, until the ``with`` block ends. Yields the port."""
    sock = socket.create_server(("127.0.0.1", 0))

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
