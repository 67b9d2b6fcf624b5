"""``make docs``: every output block of the README and docs/*.md, made by running what it
shows. It imports nothing of scratchnet: it runs commands, as a reader would.

A block is found by a marker, an HTML comment on the line before it::

    <!-- make docs: scratchnet train configs/digits_quickstart.yaml -->
    ```text
    (replaced by what the command prints, stdout and stderr as a terminal shows them)
    ```

* ``<!-- make docs (MNIST): ... -->``: the command reads MNIST from $SCRATCHNET_DATA_DIR;
  without it the block is left as it is (``--check`` skips it).
* ``<!-- make docs (varies): ... -->``: what it prints differs from run to run beyond the
  masks (processes racing): made again, never compared.
* ``<!-- make docs (MNIST, long): ... -->``: minutes of training (``--check --quick``, as
  the test suite runs it, leaves it out; a block after it must not need what it makes).
* In a ``console`` block the marker holds one or more commands separated by `` ;; ``, and
  the block shows each as ``$ command`` followed by its output (``echo $?`` shows the exit
  code of the one before). A command ending in ``[Ctrl-C after "TEXT"]`` gets a SIGINT as
  soon as TEXT appears in its output, and ``^C`` is shown where it came.
* A marker followed by a line that is not a fence replaces everything up to
  ``<!-- /make docs -->`` with the command's output as it is (a markdown table, say:
  ``<!-- make docs: python -m scratchnet.config.reference -->``).
* ``scratchnet`` and ``python`` are this interpreter's; ``python: above`` runs the
  ```` ```python ```` block just before the marker's block.

The numbers a training run prints depend on the BLAS kernel that multiplied its matrices
(OpenBLAS picks one per CPU; ``OPENBLAS_CORETYPE`` overrides it), so a page records the
kernel that made it (``<!-- made by make docs with the SkylakeX BLAS kernel -->``, its last
line) and ``--check`` compares the numbers only under that kernel; under another it
compares the rest (every word, every line, the numbers masked).

Commands run with bash in a scratch folder per document (holding a copy of configs/ and
tools/, whose ``epochs.py`` keeps some epochs of a long run's rows), in
the order of the document, so a later block can use what an earlier one made (``@last``,
``tunes/*/best.yaml``). What changes from run to run is masked before a block is written
or compared: run-folder timestamps (``-YYYYMMDD-HHMMSS``), seconds (the ``seconds``
column and row of the tables, ``"seconds": ...`` in JSON, ``seconds*`` columns of CSV),
dates, clock times and the scratch folder's own path.

    python tools/docs.py [FILE ...]            rewrite the blocks (all files by default)
    python tools/docs.py --check [FILE ...]    exit 1, with a diff, where a block is stale
    python tools/docs.py --check --quick       the same without the blocks tagged long
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- make docs(?: \(([\w, ]+)\))?: (.+?) -->$")
TAGS = {"MNIST", "varies", "long"}
MADE_WITH = re.compile(r"^<!-- made by make docs with the (\S+) BLAS kernel -->$")
KERNEL = ("from threadpoolctl import threadpool_info; import numpy; print(next((i.get("
          "'architecture') or i['internal_api'] for i in threadpool_info() if i['user_api'] == "
          "'blas'), 'unknown'))")
ANY_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?%?")
END = "<!-- /make docs -->"
SEPARATOR = " ;; "
CTRL_C = re.compile(r'\s*\[Ctrl-C after "(.+)"\]$')
#: how long one command may take, in seconds
TIMEOUT = 1800


@dataclass
class Block:
    """One marked block: the marker's line index, where its content starts and ends
    (``lines[start:end]`` is replaced), its fence language and its commands."""

    marker: int
    start: int
    end: int
    language: str | None
    commands: list[str]
    tags: set[str]


def find_blocks(lines: list[str], name: str) -> list[Block]:
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line.strip())
        if not m:
            continue
        commands = m.group(2).split(SEPARATOR)
        tags = {t.strip() for t in (m.group(1) or "").split(",") if t.strip()}
        if tags - TAGS:
            raise SystemExit(f"{name}:{i + 1}: unknown tag {', '.join(sorted(tags - TAGS))}; "
                             f"expected {', '.join(sorted(TAGS))}")
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith("```"):
            close = next((j for j in range(i + 2, len(lines)) if lines[j].startswith("```")),
                         None)
            if close is None:
                raise SystemExit(f"{name}:{i + 1}: the block after the marker has no end")
            blocks.append(Block(i, i + 2, close, following[3:].strip() or None, commands,
                                tags))
        else:
            close = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
            if close is None:
                raise SystemExit(f"{name}:{i + 1}: no {END} after the marker")
            blocks.append(Block(i, i + 1, close, None, commands, tags))
    return blocks


# -- running ---------------------------------------------------------------------------------
def environment(bin_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "SCRATCHNET_DEBUG", "TTY_COMPATIBLE")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               NO_COLOR="1")
    return env


def run(command: str, cwd: Path, env: dict) -> tuple[str, int]:
    """Run ``command`` with bash in ``cwd``: (stdout and stderr as they came, exit code).
    With a ``[Ctrl-C after "TEXT"]`` suffix, SIGINT goes to it once TEXT is printed."""
    interrupt = CTRL_C.search(command)
    if interrupt:
        command = command[:interrupt.start()]
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out, sent, deadline = b"", False, time.monotonic() + TIMEOUT
    os.set_blocking(proc.stdout.fileno(), False)
    while True:
        chunk = proc.stdout.read()
        if chunk:
            out += chunk
        if interrupt and not sent and interrupt.group(1).encode() in out:
            os.killpg(proc.pid, signal.SIGINT)
            out += b"^C"  # as a terminal echoes it; the command's own line starts with \n
            sent = True
        if chunk is None or not chunk:
            if proc.poll() is not None:
                out += proc.stdout.read() or b""
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise SystemExit(f"{command}: still running after {TIMEOUT} s")
            time.sleep(0.01)
    return out.decode("utf-8", "replace"), proc.returncode


def produce(block: Block, lines: list[str], cwd: Path, env: dict) -> list[str]:
    """The block's new content, masked."""
    if block.commands == ["python: above"]:
        code = previous_python(lines, block.marker)
        text, _ = run(f"python -c {shlex.quote(code)}", cwd, env)
    elif block.language == "console":
        parts, last = [], 0
        for command in block.commands:
            shown = CTRL_C.sub("", command)
            if command.strip() == "echo $?":
                parts.append(f"$ echo $?\n{last}\n")
                continue
            text, last = run(command, cwd, env)
            parts.append(f"$ {shown}\n{text}")
        text = "".join(parts)
    else:
        text, _ = run(" && ".join(block.commands), cwd, env)
    return mask(text, cwd, env).splitlines()


def previous_python(lines: list[str], marker: int) -> str:
    """The ```python block that ends just before ``marker`` (blank lines apart)."""
    end = marker - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end < 0 or lines[end] != "```":
        raise SystemExit(f"line {marker + 1}: 'python: above' needs a python block above it")
    start = max(i for i in range(end) if lines[i].startswith("```python"))
    return "\n".join(lines[start + 1:end])


# -- masking ---------------------------------------------------------------------------------
STAMP = re.compile(r"(?<=[\w.])-\d{8}-\d{6}(?:-\d+)?\b")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?")
CLOCK = re.compile(r"\b\d+:\d{2}:\d{2}\b")
JSON_SECONDS = re.compile(r"""(["']seconds(?:_per_epoch)?["']: )[-\d.e+]+""")
SECONDS_ROW = re.compile(r"^([\s│┃]*seconds(?: per epoch)?[\s│┃]+)([\d.]+(?: ± [\d.]+)?)")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?: ± \d+(?:\.\d+)?)?")
PID = re.compile(r"\bpid \d+")
#: the --health lines under an epoch row (render.health_lines: the layer right-aligned in
#: the 7 columns where a row's epoch takes 6, then its activation)
HEALTH_LINE = re.compile(r"^  (layer|[ \d]{4}\d) \S")


def _placeholder(token: str) -> str:
    return "#.#".rjust(len(token)) if len(token) >= 3 else "#" * len(token)


def mask(text: str, cwd: Path, env: dict) -> str:
    """What varies from run to run, as stable placeholders."""
    text = text.replace(str(cwd) + os.sep, "").replace(str(cwd), ".")
    data = env.get("SCRATCHNET_DATA_DIR")
    if data:
        text = text.replace(str(Path(data).resolve()), "$SCRATCHNET_DATA_DIR")
        text = text.replace(data.rstrip(os.sep), "$SCRATCHNET_DATA_DIR")
    text = STAMP.sub("-YYYYMMDD-HHMMSS", text)
    text = DATE.sub("YYYY-MM-DD HH:MM:SS", text)
    text = CLOCK.sub("H:MM:SS", text)
    text = JSON_SECONDS.sub(r"\g<1>0.0", text)
    text = PID.sub("pid N", text)
    out, span, csv_seconds = [], None, None
    for line in text.split("\n"):
        fields = line.split(",")
        if any(f.startswith("seconds") for f in fields) and len(fields) > 2:
            csv_seconds = (len(fields),
                           [i for i, f in enumerate(fields) if f.startswith("seconds")])
        elif csv_seconds and len(fields) == csv_seconds[0]:  # a CSV row under that header
            line = ",".join("#.#" if i in csv_seconds[1] else f for i, f in enumerate(fields))
        header = re.search(r"\bseconds\b", line)
        if header and not NUMBER.search(line[header.end():]) and "epoch" in line:
            span = (header.start(), header.end())  # a table with a seconds column
        elif span and not HEALTH_LINE.match(line):  # (rows may go on after a blank line:
            line = _mask_column(line, span)              # a second run, headerless)
        line = SECONDS_ROW.sub(lambda m: m.group(1) + "#.#", line)  # left-aligned: no padding
        out.append(line.rstrip())
    return "\n".join(out)


def _mask_column(line: str, span: tuple[int, int]) -> str:
    """The number under the ``seconds`` header (right-aligned, as rich aligns numbers)."""
    for m in NUMBER.finditer(line):
        if m.start() < span[1] and m.end() > span[0]:
            return line[:m.start()] + _placeholder(m.group()) + line[m.end():]
    return line


# -- files -----------------------------------------------------------------------------------
def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def documents(names: list[str]) -> list[Path]:
    if names:
        return [Path(n).resolve() for n in names]
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def kernel(env: dict) -> str:
    """The BLAS kernel the commands run with (``SkylakeX``, ``Haswell``, ...)."""
    return subprocess.run(["python", "-c", KERNEL], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def _numbers_masked(lines: list[str]) -> list[str]:
    """The lines with every number one placeholder and runs of spaces one space."""
    return [" ".join(ANY_NUMBER.sub("N", line).split()) for line in lines]


def process(path: Path, check: bool, bin_dir: Path, quick: bool = False) -> list[str]:
    """Rewrite (or with ``check`` compare) the blocks of ``path``; the differences."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = find_blocks(lines, path.name)
    if not blocks:
        return []
    env = environment(bin_dir)
    now = kernel(env)
    recorded = next((m.group(1) for m in map(MADE_WITH.match, lines) if m), None)
    exact = recorded == now
    have_mnist = bool(env.get("SCRATCHNET_DATA_DIR"))
    problems = []
    with tempfile.TemporaryDirectory(prefix="docs-") as tmp:
        cwd = Path(tmp).resolve()
        shutil.copytree(ROOT / "configs", cwd / "configs")
        shutil.copytree(ROOT / "tools", cwd / "tools")
        shutil.copy(ROOT / "scratchnet.schema.json", cwd / "scratchnet.schema.json")
        for block in blocks:
            if "MNIST" in block.tags and not have_mnist or quick and "long" in block.tags:
                print(f"{path.name}:{block.marker + 1}: skipped ({'long' if quick else 'needs'}"
                      f"{'' if quick else ' MNIST: set SCRATCHNET_DATA_DIR'})", file=sys.stderr)
                continue
            new = produce(block, lines, cwd, env)
            old = lines[block.start:block.end]
            same = new == old if exact else _numbers_masked(new) == _numbers_masked(old)
            if check and not same and "varies" not in block.tags:
                where = f"{_shown(path)}:{block.marker + 1}"
                problems.append("\n".join(difflib.unified_diff(
                    old, new, f"{where} (the page)", f"{where} (the code now)", lineterm="")))
            lines[block.start:block.end] = new
            shift = len(new) - len(old)
            for later in blocks[blocks.index(block) + 1:]:
                later.marker += shift
                later.start += shift
                later.end += shift
            print(f"{path.name}:{block.marker + 1}: {'same' if new == old else 'changed'}",
                  file=sys.stderr)
    if not check:
        lines = [line for line in lines if not MADE_WITH.match(line)]
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", f"<!-- made by make docs with the {now} BLAS kernel -->", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
    elif problems and not exact:
        problems.insert(0, f"{_shown(path)} was made with the {recorded} BLAS kernel; "
                        f"under {now} its numbers are not compared")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="markdown files (default: README.md, docs/*.md)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 with a diff where a block is stale")
    parser.add_argument("--quick", action="store_true",
                        help="leave out the blocks tagged long (with --check)")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    problems = []
    for path in documents(args.files):
        problems += process(path, args.check, bin_dir, args.quick and args.check)
    if args.check and problems:
        print("\n\n".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
