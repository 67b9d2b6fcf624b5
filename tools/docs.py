"""``make docs``: every output block of the README and docs/*.md, made by running what it
shows. It imports nothing of scratchnet: it runs commands, as a reader would.

A block is found by a marker, an HTML comment on the line before it::

    <!-- make docs: scratchnet train configs/digits_quickstart.yaml -->
    ```text
    (replaced by what the command prints, stdout and stderr as a terminal shows them)
    ```

* ``<!-- make docs (MNIST): ... -->``: the command reads MNIST from $SCRATCHNET_DATA_DIR;
  without it the block is left as it is (``--check`` skips it). ``(text)``: the same for
  the book's chapter-6 corpus (``$SCRATCHNET_DATA_DIR/text``).
* ``<!-- make docs (varies): ... -->``: what it prints differs from run to run beyond the
  masks (processes racing): made again, never compared.
* ``<!-- make docs (kernel): ... -->``: its words, not only its numbers, follow the BLAS
  kernel's rounding (a search whose trials diverge or are pruned at a different epoch):
  under the kernel that made the page it is compared in full, under another not at all.
* ``<!-- make docs (MNIST, long): ... -->``: minutes of training (``--check --quick``, as
  the test suite runs it, leaves it out; a block after it must not need what it makes).
* ``<!-- make docs (chromium): chromium --headless ... -->``: the command runs ``chromium``
  (Debian's package); where none is on PATH the block and its pictures are left as they
  are, with a note saying so.
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

Pictures: a marked command *writes a picture* when it names a path ending in ``.png`` (a
word of the command: ``-o docs/grad-flow.png``, ``-o lr-find.png``,
``--screenshot=docs/report.png``) whose file name is that of a picture the document shows
(``![...](grad-flow.png)``, relative to the document: ``docs/X.png`` in README.md,
``X.png`` in docs/X.md). The path is the scratch folder's (it has an empty ``docs/`` to
write into); the file there, new or changed by the block, is copied over the document's
picture when the blocks are rewritten. ``--check`` does not compare pictures (matplotlib
and Chromium draw a byte differently from version to version); it checks that each block
it runs writes its pictures, and that every picture a marked command writes, run or
skipped, is in the repository as a PNG that decodes.

    python tools/docs.py [FILE ...]            rewrite the blocks (all files by default)
    python tools/docs.py --check [FILE ...]    exit 1, with a diff, where a block is stale
                                               (or with the reason, where a picture is)
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
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- make docs(?: \(([\w, ]+)\))?: (.+?) -->$")
TAGS = {"MNIST", "text", "varies", "kernel", "long", "chromium"}
MADE_WITH = re.compile(r"^<!-- made by make docs with the (\S+) BLAS kernel -->$")
#: what prints the kernel, run by the commands' interpreter (the run record's own lookup)
KERNEL = ("from scratchnet.environment import blas; b = blas() or {}; "
          "print(b.get('kernel') or b.get('library') or 'unknown')")
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
        if line.startswith("$ "):  # a transcript's next command: no column of the last table's
            span = csv_seconds = None
            out.append(line.rstrip())
            continue
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


# -- pictures --------------------------------------------------------------------------------
#: a picture a document shows (the alt text may run over several lines)
SHOWN = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")
#: a path a command names that ends in .png
NAMED = re.compile(r"[\w./-]+\.png\b")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: channels by PNG colour type; the seven Adam7 passes as (x0, y0, dx, dy)
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))


def shown_pictures(path: Path, text: str) -> dict[str, Path]:
    """The pictures ``path`` shows, by file name: where each is in the repository."""
    return {Path(m).name: (path.parent / m).resolve() for m in SHOWN.findall(text)}


def pictures(block: Block, shown: dict[str, Path]) -> dict[str, Path]:
    """The pictures ``block`` writes: the path its command names (in the scratch folder) and
    the document's picture of that file name."""
    return {m: shown[Path(m).name] for command in block.commands
            for m in NAMED.findall(command) if Path(m).name in shown}


def png_problem(path: Path) -> str | None:
    """Why ``path`` is not a PNG that decodes, or None: the signature, every chunk whole
    with its CRC, IHDR first and IEND last, and the image data inflating to exactly the
    rows (a filter byte and width x bits per pixel each) that IHDR's size calls for."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not data.startswith(PNG_SIGNATURE):
        return "is not a PNG"
    pos, kinds, idat, header = len(PNG_SIGNATURE), [], [], b""
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + length], data[pos + 8 + length:pos + 12 + length]
        if len(crc) < 4 or zlib.crc32(kind + body) != int.from_bytes(crc, "big"):
            return f"has a damaged {kind.decode('latin-1')!r} chunk"
        kinds.append(kind)
        header = body if kind == b"IHDR" else header
        idat += [body] if kind == b"IDAT" else []
        pos += 12 + length
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or len(header) != 13:
        return "is cut short"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour not in CHANNELS:
        return f"has an unknown colour type {colour}"
    bits = depth * CHANNELS[colour]
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        expected += h * (1 + -(-w * bits // 8)) if w > 0 and h > 0 else 0
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(b"".join(idat), expected + 1)  # never more than it should be
    except zlib.error as e:
        return f"has image data that does not inflate ({e})"
    if len(raw) != expected or not inflate.eof:
        return (f"has {len(raw):,} bytes of image data where {width} x {height} needs "
                f"{expected:,}")
    return None


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


def skipped(block: Block, env: dict, quick: bool) -> str | None:
    """Why ``block`` is not run here, or None."""
    for data in sorted({"MNIST", "text"} & block.tags):
        if not env.get("SCRATCHNET_DATA_DIR"):
            return f"needs {data}: set SCRATCHNET_DATA_DIR"
    if quick and "long" in block.tags:
        return "long"
    if "chromium" in block.tags and not shutil.which("chromium", path=env["PATH"]):
        return "needs chromium on PATH: apt-get install -y chromium; its pictures are kept"
    return None


def _stamp(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.is_file() else None


def bring_back(drawn: dict[str, Path], before: dict[str, int | None], cwd: Path, where: str,
               copy: bool) -> list[str]:
    """Check that the pictures a block names were written (new or changed in the scratch
    folder) and decode, and with ``copy`` copy each over the document's; the problems."""
    problems = []
    for named, picture in drawn.items():
        made = cwd / named
        why = ("was not written by the command" if _stamp(made) in (None, before[named])
               else png_problem(made))
        if why:
            problems.append(f"{where}: the picture {named} {why}")
        elif copy:
            shutil.copyfile(made, picture)
            print(f"{where}: picture {_shown(picture)}", file=sys.stderr)
    return problems


def process(path: Path, check: bool, bin_dir: Path, quick: bool = False) -> list[str]:
    """Rewrite (or with ``check`` compare) the blocks of ``path``, and bring back (check) the
    pictures they write; the differences and the pictures' problems."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = find_blocks(lines, path.name)
    if not blocks:
        return []
    env = environment(bin_dir)
    now = kernel(env)
    recorded = next((m.group(1) for m in map(MADE_WITH.match, lines) if m), None)
    exact = recorded == now
    shown = shown_pictures(path, "\n".join(lines))
    problems, picture_problems = [], []
    with tempfile.TemporaryDirectory(prefix="docs-") as tmp:
        cwd = Path(tmp).resolve()
        shutil.copytree(ROOT / "configs", cwd / "configs")
        shutil.copytree(ROOT / "tools", cwd / "tools")
        shutil.copy(ROOT / "scratchnet.schema.json", cwd / "scratchnet.schema.json")
        (cwd / "docs").mkdir()
        for k, block in enumerate(blocks):
            why = skipped(block, env, quick)
            if why:
                print(f"{path.name}:{block.marker + 1}: skipped ({why})", file=sys.stderr)
                continue
            drawn = pictures(block, shown)
            before = {named: _stamp(cwd / named) for named in drawn}
            new = produce(block, lines, cwd, env)
            old = lines[block.start:block.end]
            same = new == old if exact else _numbers_masked(new) == _numbers_masked(old)
            where = f"{_shown(path)}:{block.marker + 1}"
            compared = "varies" not in block.tags and (exact or "kernel" not in block.tags)
            if check and not same and compared:
                problems.append("\n".join(difflib.unified_diff(
                    old, new, f"{where} (the page)", f"{where} (the code now)", lineterm="")))
            lines[block.start:block.end] = new
            shift = len(new) - len(old)
            for later in blocks[k + 1:]:
                later.marker += shift
                later.start += shift
                later.end += shift
            print(f"{path.name}:{block.marker + 1}: {'same' if new == old else 'changed'}",
                  file=sys.stderr)
            picture_problems += bring_back(drawn, before, cwd, where, copy=not check)
    picture_problems += [
        f"{_shown(path)}:{block.marker + 1}: the picture {_shown(picture)} {why}"
        for block in blocks for picture in pictures(block, shown).values()
        for why in [png_problem(picture)] if why]
    if not check:
        lines = [line for line in lines if not MADE_WITH.match(line)]
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", f"<!-- made by make docs with the {now} BLAS kernel -->", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
    elif problems and not exact:
        problems.insert(0, f"{_shown(path)} was made with the {recorded} BLAS kernel; "
                        f"under {now} its numbers are not compared")
    return problems + picture_problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="markdown files (default: README.md, docs/*.md)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 with a diff where a block is stale, "
                             "or the reason where a picture is missing or does not decode")
    parser.add_argument("--quick", action="store_true",
                        help="leave out the blocks tagged long (with --check)")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    problems = []
    for path in documents(args.files):
        problems += process(path, args.check, bin_dir, args.quick and args.check)
    if problems:
        print("\n\n".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
