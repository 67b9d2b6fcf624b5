"""Two checkouts of scratchnet against each other: the epoch time of ``make bench``'s
scratchnet contender (784 -> width tanh -> 10, SGD momentum, batch 60, float32, one BLAS
thread), each checkout in its own process with its own Python, interleaved one epoch at a
time (A B A B ...) so that a busy moment of a shared machine hits both alike.

    python benchmarks/ab.py --base ../main/.venv/bin/python:../main \\
        [--new .venv/bin/python:.] [--widths 89,1024] [--epochs 9]

Each side is ``PYTHON:CHECKOUT`` (the checkout's ``benchmarks/bench_worker.py`` runs under
that Python, which must import that checkout's scratchnet). It prints, per width, the
median and minimum seconds per epoch of each side, wall-clock and CPU (the worker's user
and system time, from ``/proc``, where there is one), and new / base: the ratio of the
medians, and the median of each round's ratio (its two epochs ran next to each other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import WIDTH_ROWS, write_worker_data  # noqa: E402


def cpu_seconds(pid: int) -> float | None:
    """User + system seconds of process ``pid`` so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    def __init__(self, label: str, spec: str, data: Path, width: int, rows: int):
        python, checkout = spec.split(":", 1)
        worker = Path(checkout).resolve() / "benchmarks" / "bench_worker.py"
        self.label = label
        self.proc = subprocess.Popen(
            [python, str(worker), "scratchnet", "--data", str(data), "--threads", "1",
             "--hidden", str(width), "--rows", str(rows)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=checkout)
        self.info = json.loads(self.proc.stdout.readline())
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def epoch(self, keep: bool) -> None:
        before = cpu_seconds(self.proc.pid)
        self.proc.stdin.write(json.dumps({"cmd": "epoch"}) + "\n")
        self.proc.stdin.flush()
        seconds = json.loads(self.proc.stdout.readline())["seconds"]
        after = cpu_seconds(self.proc.pid)
        if keep:
            self.wall.append(seconds)
            if before is not None and after is not None:
                self.cpu.append(after - before)

    def close(self) -> None:
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="PYTHON:CHECKOUT of the baseline")
    parser.add_argument("--new", default=f"{sys.executable}:{HERE.parent}",
                        help="PYTHON:CHECKOUT of the new code (default: this one)")
    parser.add_argument("--widths", default="89,1024")
    parser.add_argument("--epochs", type=int, default=9, help="measured epochs per side")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding mnist/ (default: $SCRATCHNET_DATA_DIR)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(os.environ.get("SCRATCHNET_DATA_DIR", ""))
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, load average {os.getloadavg()[0]:.2f}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    with tempfile.TemporaryDirectory(prefix="scratchnet-ab-") as tmp:
        write_worker_data(Path(tmp), data_dir)
        for width in (int(w) for w in args.widths.split(",")):
            rows = WIDTH_ROWS.get(width, 60000)
            sides = [Side("base", args.base, Path(tmp), width, rows),
                     Side("new", args.new, Path(tmp), width, rows)]
            try:
                for round_ in range(args.epochs + 1):  # the first is a warm-up
                    for side in sides if round_ % 2 else sides[::-1]:
                        time.sleep(0.2)
                        side.epoch(keep=round_ > 0)
            finally:
                for side in sides:
                    side.close()
            print(f"width {width}, {rows} images, {args.epochs} epochs each "
                  f"(BLAS {sides[0].info.get('blas', '?')}):")
            for kind in ("wall", "cpu"):
                base, new = (getattr(s, kind) for s in sides)
                if not base or not new:
                    continue
                ratio = statistics.median(new) / statistics.median(base)
                paired = statistics.median(n / b for n, b in zip(new, base, strict=True))
                print(f"  {kind:4s} base median {statistics.median(base):.4f} s "
                      f"(min {min(base):.4f}), new median {statistics.median(new):.4f} s "
                      f"(min {min(new):.4f}): new / base {ratio:.3f} (medians), "
                      f"{paired:.3f} (median of the rounds' ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
