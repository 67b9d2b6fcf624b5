"""Shared fixtures: running the real command line, writing small experiment files, and
PyTorch's reference arrays."""

from __future__ import annotations

import copy
import fcntl
import functools
import http.server
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from golden_files import compute_with_torch, load_golden

# Property tests draw the same examples on every run (and keep no example database), so
# a run's result never depends on an earlier run or on chance: main is never red by luck.
settings.register_profile("reproducible", derandomize=True, database=None)
settings.load_profile("reproducible")
# the hostile tests' shared module is also their fixtures' plugin: its asserts are rewritten
# when a test module first imports it, as a plugin's would be
pytest.register_assert_rewrite("hostile_helpers")

#: the repository (its shipped configs)
ROOT = Path(__file__).resolve().parents[1]

#: a digits experiment that trains in about a second: 64 -> 16 (tanh) -> 10
TINY_CONFIG = {
    "seed": 7,
    "data": {"dataset": "digits", "scale": "standard", "validation": 0.1},
    "model": {"layers": [{"neurons": 16, "activation": "tanh", "weight_init": "glorot"},
                         {"neurons": 10, "activation": "linear"}],
              "loss": "softmax_cross_entropy"},
    "optimizer": {"name": "sgd_momentum", "lr": 0.1, "momentum": 0.9},
    "train": {"epochs": 2, "batch_size": 64, "eval_every": 1},
}


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_cli(args, cwd, env: dict | None = None, timeout: float = 120):
    """``python -m scratchnet ARGS`` in ``cwd``: (returncode, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("SCRATCHNET_DEBUG", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "scratchnet", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


#: the height of the terminals the tests run commands in: every screen they check fits
TERMINAL_LINES = 100


def run_in_terminal(args, cwd, columns: int | None = None, interrupt_when: str | None = None,
                    lines: int = TERMINAL_LINES, timeout: float = 120) -> tuple[int, str]:
    """``python -m scratchnet ARGS`` with stdin, stdout and stderr on a pseudo-terminal
    of ``columns`` x ``lines`` (as a terminal window sets it: no COLUMNS in the
    environment): (exit code, everything it wrote, control codes included). With
    ``interrupt_when``, a SIGINT is sent once that text has appeared."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items()
           if k not in ("SCRATCHNET_DEBUG", "FORCE_COLOR", "COLUMNS", "LINES")}
    if columns is not None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "scratchnet", *map(str, args)], cwd=cwd,
                            stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks, sent, deadline = [], False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        if interrupt_when and not sent and \
                interrupt_when in b"".join(chunks).decode(errors="replace"):
            proc.send_signal(signal.SIGINT)
            sent = True
    rc = proc.wait(timeout=60)
    os.close(leader)
    return rc, b"".join(chunks).decode("utf-8", "replace")


def screen_of(text: str, columns: int, lines: int = TERMINAL_LINES) -> list[str]:
    """What a terminal ``columns`` x ``lines`` shows once ``text`` (a program's raw
    output, control codes and all) has been written to it, rendered by the terminal
    emulator pyte: the screen's lines, each without the blanks at its end, without the
    blank lines at the bottom."""
    import pyte

    screen = pyte.Screen(columns, lines)
    pyte.Stream(screen).feed(text)
    shown = [line.rstrip() for line in screen.display]
    while shown and not shown[-1]:
        shown.pop()
    return shown


@pytest.fixture
def busy_cpu():
    """A process spinning on a CPU beside the test (killed after it), so what is checked
    holds on a loaded machine, where a progress bar's redraws and a program's prints
    interleave differently."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield spinner
    spinner.kill()
    spinner.wait()


#: the rows of the MNIST slice the tests train on where the point is that a run works (a
#: full MNIST epoch of the CNN takes a minute; this slice, a second or two)
MNIST_SLICE = {"train": 1000, "t10k": 500}


def write_mnist_slice(folder: Path) -> Path:
    """The first :data:`MNIST_SLICE` rows of the real MNIST in $SCRATCHNET_DATA_DIR/mnist,
    written as the four IDX files of ``folder/mnist`` (a ``--data-dir``). They are not
    the official files: a test that reads them sets the official checksums aside, in
    process (``monkeypatch.setitem(mnist.CHECKSUMS, "mnist", {})``)."""
    from scratchnet.data import read_idx, write_idx

    source = Path(os.environ["SCRATCHNET_DATA_DIR"]) / "mnist"
    target = Path(folder) / "mnist"
    target.mkdir(parents=True, exist_ok=True)
    for split, rows in MNIST_SLICE.items():
        for kind, ndim in (("images", 3), ("labels", 1)):
            name = f"{split}-{kind}-idx{ndim}-ubyte"
            found = next(p for p in (source / name, source / f"{name}.gz") if p.exists())
            write_idx(target / name, read_idx(found, ndim=ndim)[:rows])
    return Path(folder)


#: the shipped adding configs made small: 12 steps, 240 sequences, 8 units, 2 epochs
SMALL_ADDING = ["--set", "data.length=12", "--set", "data.samples=240",
                "--set", "model.layers.0.hidden_size=8", "--epochs", "2"]


@pytest.fixture(scope="session")
def adding_runs(tmp_path_factory) -> list[Path]:
    """The shipped configs/adding_rnn.yaml and adding_lstm.yaml, made small, trained with
    --health through the command line (one call): their run folders, RNN first. Shared:
    read them, write nothing into them."""
    folder = tmp_path_factory.mktemp("adding")
    configs = [ROOT / "configs" / f"{name}.yaml" for name in ("adding_rnn", "adding_lstm")]
    rc, out, err = run_cli(["train", *configs, *SMALL_ADDING, "--health", "-q",
                            "--out", "runs"], folder)
    assert rc == 0, err
    return [next((folder / "runs").glob(f"{name}-*")) for name in ("adding_rnn", "adding_lstm")]


def run_cli_without(module: str, args, cwd) -> tuple[int, str, str]:
    """:func:`run_cli` in a Python where ``import module`` fails, as it does when an
    optional extra is not installed."""
    code = (f"import sys; sys.modules[{module!r}] = None; from scratchnet.cli import main; "
            f"main({[str(a) for a in args]!r})")
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli(tmp_path):
    """Run the real CLI in a subprocess with ``tmp_path`` as the working folder:
    ``rc, out, err = cli("train", "x.yaml", "--json")``."""
    def run(*args, cwd=None, env=None, timeout=120):
        return run_cli(args, cwd or tmp_path, env=env, timeout=timeout)
    return run


def digits_config(**sections) -> dict:
    """:data:`TINY_CONFIG` with ``sections`` merged in: ``digits_config(name="x",
    train={"epochs": 4})`` (a mapping merges key by key, anything else replaces)."""
    return _merge(TINY_CONFIG, sections)


#: a text any test can write: 40 lines of a few words, 1,310 characters
TEXT = "".join(f"line {i}: the cat sat on the mat.\n" for i in range(40))


def text_config(folder: Path, layers: list[dict], **data) -> dict:
    """A character model of :data:`TEXT` (written to ``folder/text.txt``), windows of 10
    characters, trained with Adam."""
    path = Path(folder) / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return digits_config(name="entry", data={"dataset": "text", "path": str(path), "seq_len": 10,
                                             "test_fraction": 0.1, **data},
                         model={"layers": layers, "loss": "softmax_cross_entropy"},
                         optimizer={"name": "adam", "lr": 0.01, "momentum": None},
                         train={"batch_size": 16})


def run_main(capsys, *args) -> tuple[int, str, str]:
    """The real entry point ``scratchnet.cli.main`` in this process:
    ``(exit code, stdout, stderr)``. For long lists of cheap checks, where a new
    interpreter per case would dominate the run time; every such list also has a
    subprocess test of the same behaviour."""
    from scratchnet.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture
def main_here(tmp_path, monkeypatch, capsys):
    """:func:`run_main` with ``tmp_path`` as the working folder:
    ``rc, out, err = main_here("validate", "x.yaml")``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCRATCHNET_DEBUG", raising=False)
    return lambda *args: run_main(capsys, *args)


def write_config(folder: Path, stem: str = "tiny", raw: dict | None = None, **sections) -> Path:
    """Write ``folder/<stem>.yaml``: :data:`TINY_CONFIG` with ``sections`` merged in
    (``train={"epochs": 3}``), or ``raw`` as given. Returns the path."""
    data = raw if raw is not None else digits_config(**sections)
    path = Path(folder) / f"{stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path):
    """Write a fast digits experiment into ``tmp_path``:
    ``tiny_config("stem", train={"epochs": 1})`` -> the path of ``stem.yaml``."""
    def write(stem: str = "tiny", **sections) -> Path:
        return write_config(tmp_path, stem, **sections)
    return write


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def mirror_server(tmp_path):
    """A local HTTP server over tmp_path/www, standing in for a download mirror:
    ``(its folder, its URL)``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["golden", "torch"])
def torch_reference(request):
    """PyTorch's reference arrays by golden file name: ``torch_reference("torch_blocks")``.
    Each test that takes it runs twice: ``[golden]`` reads the committed file (always),
    ``[torch]`` computes the same arrays with the installed torch (skips without it)."""
    if request.param == "golden":
        return load_golden
    pytest.importorskip("torch")
    return compute_with_torch
