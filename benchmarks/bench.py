"""``make bench``: scratchnet's training speed on the notebook's MNIST workload, side by side.

Workload: 784 -> 89 tanh -> 10, softmax cross entropy, SGD momentum 0.9, batch 60, the
60,000 MNIST training images reshuffled every epoch. Contenders, each in its own process
(``benchmarks/bench_worker.py``), run interleaved one epoch at a time (A B C ... A B C
...) after a warm-up epoch, so a busy moment of the machine hits all of them alike:

* scratchnet float32 and float64 (``Trainer.fit``, one epoch per call) at the Trainer's
  BLAS thread count (``Trainer(blas_threads=1)`` by default), and again at 2 threads
  (``--compare-threads``): the measurement behind that default;
* PyTorch, CPU, float32, the same network and batch size, tensors preloaded, plain index
  slicing, ``torch.optim.SGD(momentum=0.9)``, at the same two thread counts: only when
  torch is installed (the optional ``bench`` extra: ``pip install -e '.[bench]'``, which
  pins the CPU build 2.13.0); the targets compare against its faster thread count;
* scikit-learn's ``MLPClassifier`` (sgd, momentum 0.9, batch 60), one ``partial_fit``;
* the BLAS floor, at both thread counts: the epoch's matrix products alone (defined in
  ``bench_worker.Floor`` and printed with the table).

It also reports test-set inference throughput and the peak memory (RSS) of a full
``scratchnet train configs/mnist_tanh.yaml`` run (one epoch) through the CLI.

MNIST comes from ``$SCRATCHNET_DATA_DIR/mnist`` (``--data-dir`` overrides).

``--widths`` (default 256,1024,4096) repeats the float32 contenders (scratchnet, PyTorch,
the floor, at both thread counts) with wider hidden layers, each on the first images only
so that an epoch stays short; the ratios to the floor at every width are the targets'.
``--scaling`` prints the cost table over widths, depths and batch sizes instead, with
per-phase timers (``benchmarks/scaling.py``).

The header says which BLAS library and kernel ran.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "bench_worker.py"

FLOOR_DEFINITION = (
    "floor = the epoch's matrix products alone, per batch of 60: x@W1, h@W2 (forward), "
    "h.T@g2, x.T@g1 (weight gradients) and g2@W2.T (layer 2's input gradient; layer 1's "
    "is not needed and scratchnet skips it), on contiguous slices into preallocated "
    "outputs: no shuffling/gathering, no element-wise work, no parameter update.")

# The current targets (issue 20: speed and memory at the floor).
TARGET_VS_TORCH_F32 = 0.45
TARGET_VS_FLOOR_F32 = 1.15  # one thread, at every width
TARGET_VS_FLOOR_2T = 1.35  # two threads, at the widths of TARGET_2T_WIDTHS
TARGET_2T_WIDTHS = (1024, 4096)
TARGET_F64_VS_TORCH_F32 = 1.2
TARGET_RSS_MB = 200
#: images per "epoch" at a width (the full 60,000 at 89; fewer where an epoch is slow)
WIDTH_ROWS = {256: 30000, 1024: 12000, 4096: 4800}
HIDDEN_DEFAULT = 89  # the notebook's width, the main table's
INFER_REPEATS = 20  # one pass takes ~10-30 ms: a median of many is steadier on a busy machine


# -- data -------------------------------------------------------------------------------

def _read_idx_gz(path: Path) -> np.ndarray:
    """A minimal IDX reader, used only when ``scratchnet.data`` is not available."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (n, 784) and int labels of the training and test splits."""
    try:
        from scratchnet.data import load_dataset
    except ImportError:
        folder = data_dir / "mnist" if (data_dir / "mnist").is_dir() else data_dir
        parts = [_read_idx_gz(folder / f"{name}-ubyte.gz") for name in (
            "train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")]
        X_train, y_train, X_test, y_test = parts
        return X_train.reshape(len(X_train), -1), y_train, X_test.reshape(len(X_test), -1), y_test
    ds = load_dataset("mnist", data_dir=str(data_dir))
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def write_worker_data(folder: Path, data_dir: Path) -> dict:
    X_train, y_train, X_test, y_test = load_mnist(data_dir)
    for name, a in (("X_train", X_train), ("y_train", y_train), ("X_test", X_test),
                    ("y_test", y_test)):
        np.save(folder / f"{name}.npy", np.ascontiguousarray(a))
    # One global mean and std over the training pixels, as the notebook scales them.
    pixels = X_train.astype(np.float64)
    stats = {"mean": float(pixels.mean()), "std": float(pixels.std()),
             "n_train": len(X_train), "n_test": len(X_test)}
    (folder / "stats.json").write_text(json.dumps(stats))
    return stats


# -- workers ----------------------------------------------------------------------------

class Worker:
    """One contender's process, driven one command at a time over a pipe."""

    def __init__(self, label: str, contender: str, dtype: str, threads: int | None,
                 data: Path, hidden: int | None = None, rows: int | None = None):
        self.label, self.contender, self.dtype, self.threads = label, contender, dtype, threads
        cmd = [sys.executable, str(WORKER), contender, "--data", str(data), "--dtype", dtype]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        if hidden is not None:
            cmd += ["--hidden", str(hidden)]
        if rows is not None:
            cmd += ["--rows", str(rows)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        self.info: dict = {}
        self.times: list[float] = []
        self.error: str | None = None

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"{self.label}: worker exited with code {self.proc.returncode}")
        return json.loads(line)

    def ready(self) -> None:
        self.info = self._answer()

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def find(workers: list[Worker], contender: str, dtype: str, threads: int | None):
    for w in workers:
        if (w.contender, w.dtype) == (contender, dtype) and (
                contender == "sklearn" or w.threads == threads):
            return w
    return None


def have_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def trainer_default_threads() -> int | None:
    """The BLAS thread count ``Trainer`` uses unless told otherwise."""
    import inspect

    from scratchnet import Trainer
    param = inspect.signature(Trainer.__init__).parameters.get("blas_threads")
    return None if param is None else param.default


def plan(threads: int | None, other: int | None) -> list[tuple[str, str, str, int | None]]:
    """(label, contender, dtype, BLAS threads) for each contender, in running order.

    scratchnet, PyTorch and the floor run at ``threads`` (the Trainer's default) and again
    at ``other`` (the thread-count comparison); scikit-learn keeps the BLAS default.
    """
    def t(n):
        return "" if n is None else f", {n} thread{'s' if n != 1 else ''}"

    counts = [threads] + ([other] if other is not None and other != threads else [])
    rows = [(f"scratchnet {d}{t(n)}", "scratchnet", d, n)
            for n in counts for d in ("float32", "float64")]
    if have_module("torch"):
        rows += [(f"PyTorch float32{t(n)}", "torch", "float32", n) for n in counts]
    rows.append(("sklearn MLPClassifier float32", "sklearn", "float32", None))
    rows += [(f"floor {d}{t(n)}", "floor", d, n) for n in counts for d in ("float32", "float64")]
    return rows


def run_interleaved(workers: list[Worker], warmup: int, epochs: int, pause: float) -> None:
    """Warm-up epochs, then ``epochs`` rounds of one epoch per contender, in turn."""
    for round_ in range(warmup + epochs):
        for w in workers:
            if w.error:
                continue
            # Let the previous contender's BLAS/OpenMP threads stop spinning first.
            time.sleep(pause)
            try:
                seconds = w.ask(cmd="epoch")["seconds"]
            except (RuntimeError, OSError, ValueError) as exc:
                w.error = str(exc)
                continue
            if round_ >= warmup:
                w.times.append(seconds)
        print(f"  round {round_ + 1}/{warmup + epochs}"
              f"{' (warm-up)' if round_ < warmup else ''} done", file=sys.stderr, flush=True)


def width_plan(threads: int | None, other: int | None) -> list[tuple[str, str, str, int | None]]:
    """The float32 contenders of a width sweep: scratchnet, PyTorch and the floor."""
    return [row for row in plan(threads, other)
            if row[2] == "float32" and row[1] in ("scratchnet", "torch", "floor")]


def run_widths(widths: list[int], data: Path, threads, other, warmup: int, epochs: int,
               pause: float) -> dict[int, dict]:
    """Median seconds per epoch of each float32 contender at each hidden width:
    ``{width: {"rows": n, (contender, threads): seconds}}``."""
    results: dict[int, dict] = {}
    for width in widths:
        rows = WIDTH_ROWS.get(width, max(2400, int(60000 * 89 / width)))
        workers = [Worker(label, contender, dtype, n, data, width, rows)
                   for label, contender, dtype, n in width_plan(threads, other)]
        try:
            for w in workers:
                try:
                    w.ready()
                except (RuntimeError, ValueError) as exc:
                    w.error = str(exc)
            print(f"bench: hidden width {width}, {rows} images per epoch", file=sys.stderr,
                  flush=True)
            run_interleaved(workers, warmup, epochs, pause)
        finally:
            for w in workers:
                w.close()
        results[width] = {"rows": rows, **{(w.contender, w.threads): statistics.median(w.times)
                                           for w in workers if w.times}}
    return results


def print_widths(results: dict[int, dict], threads, other) -> list[tuple]:
    """The table of ratios per width; returns the target checks it implies."""
    header = (f"{'width':>6s} {'images':>7s} {'scratchnet/PyTorch ' + str(threads) + 'T':>22s} "
              f"{'scratchnet/floor ' + str(threads) + 'T':>20s} "
              f"{'PyTorch/floor ' + str(threads) + 'T':>18s}")
    if other:
        header += (f" {'scratchnet/floor ' + str(other) + 'T':>20s}"
                   f" {'PyTorch/floor ' + str(other) + 'T':>18s}")
    print(header)
    print("-" * len(header))
    checks = []

    def r(a, b):
        return a / b if a and b else None
    for width, res in results.items():
        s1, t1, f1 = (res.get((c, threads)) for c in ("scratchnet", "torch", "floor"))
        line = (f"{width:6d} {res['rows']:7d} {fmt_ratio(r(s1, t1)):>22s} "
                f"{fmt_ratio(r(s1, f1)):>20s} {fmt_ratio(r(t1, f1)):>18s}")
        checks.append((f"width {width}: scratchnet f32 / floor, {threads} thread(s)",
                       r(s1, f1), TARGET_VS_FLOOR_F32, "x"))
        if other:
            s2, t2, f2 = (res.get((c, other)) for c in ("scratchnet", "torch", "floor"))
            line += f" {fmt_ratio(r(s2, f2)):>20s} {fmt_ratio(r(t2, f2)):>18s}"
            if width in TARGET_2T_WIDTHS:
                checks.append((f"width {width}: scratchnet f32 / floor, {other} threads",
                               r(s2, f2), TARGET_VS_FLOOR_2T, "x"))
        print(line)
    print("(ratios of median seconds per epoch, each width in its own interleaved run)")
    print()
    return checks


# -- peak memory of the CLI run -----------------------------------------------------------

def measure_cli_rss(data_dir: Path) -> dict:
    """Peak RSS of ``scratchnet train configs/mnist_tanh.yaml`` for one epoch, or why not."""
    exe = Path(sys.executable).parent / "scratchnet"
    config = ROOT / "configs" / "mnist_tanh.yaml"
    if not exe.exists() or not config.exists():
        return {"skipped": "CLI not available"}
    out = Path(tempfile.mkdtemp(prefix="scratchnet-bench-run-"))
    try:
        cmd = [str(exe), "train", str(config), "--set", "train.epochs=1", "--quiet",
               "--out", str(out), "--data-dir", str(data_dir)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        stderr = proc.stderr.read()
        # wait4 reports this child's own peak, not the largest of all children so far
        # (RUSAGE_CHILDREN's); it includes the size this process had when it forked.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"skipped": f"CLI failed (exit {proc.returncode}): {last}"}
        return {"peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds,
                "command": " ".join(["scratchnet", *cmd[1:2], "configs/mnist_tanh.yaml",
                                     *cmd[3:6], "--out", "<tmp>"])}
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- report -----------------------------------------------------------------------------

def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    if value <= limit:
        return f"met (<= {limit:g})"
    return f"MISSED by {value / limit - 1:.0%} (limit {limit:g})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 warm-up + 2 measured epochs per contender")
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs per contender")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs per contender")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for scratchnet and the floor (default: Trainer's)")
    parser.add_argument("--compare-threads", type=int, default=2,
                        help="run scratchnet and the floor again with this many BLAS threads "
                             "(0: don't)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding mnist/ (default: $SCRATCHNET_DATA_DIR)")
    parser.add_argument("--no-rss", action="store_true", help="skip the CLI memory run")
    parser.add_argument("--profile", action="store_true",
                        help="also print pyinstrument's profile of 2 scratchnet float32 epochs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--widths", default="256,1024,4096",
                        help="hidden widths to measure the float32 contenders at too, "
                             "comma-separated ('' for none)")
    parser.add_argument("--scaling", action="store_true",
                        help="print the cost table over widths, depths and batch sizes with "
                             "per-phase timers instead (benchmarks/scaling.py)")
    args = parser.parse_args(argv)
    if args.scaling:
        sys.path.insert(0, str(HERE))
        import scaling
        return scaling.main(["--quick"] if args.quick else [])
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    epochs = 2 if args.quick else args.epochs
    pause = 0.3  # seconds between two contenders' epochs

    data_dir = args.data_dir or (Path(os.environ["SCRATCHNET_DATA_DIR"])
                                 if os.environ.get("SCRATCHNET_DATA_DIR") else None)
    if data_dir is None or not data_dir.is_dir():
        print(f"bench: MNIST not found: set SCRATCHNET_DATA_DIR or --data-dir to a folder "
              f"holding mnist/ (got {data_dir})", file=sys.stderr)
        return 2

    # First, while this process is small: a child's ru_maxrss counts the memory it was
    # forked with, so measuring after loading MNIST here would report our own size.
    rss = {"skipped": "--no-rss"} if args.no_rss else measure_cli_rss(data_dir)
    threads = args.threads if args.threads is not None else trainer_default_threads()
    other = args.compare_threads or None
    started = datetime.datetime.now().astimezone()
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="scratchnet-bench-"))
    workers: list[Worker] = []
    profile_text = None
    try:
        stats = write_worker_data(tmp, data_dir)
        for label, contender, dtype, n in plan(threads, other):
            workers.append(Worker(label, contender, dtype, n, tmp))
        for w in workers:
            try:
                w.ready()
            except (RuntimeError, ValueError) as exc:
                w.error = str(exc)
        print(f"bench: {len(workers)} contenders, {args.warmup} warm-up + {epochs} measured "
              f"epochs each, interleaved", file=sys.stderr, flush=True)
        run_interleaved(workers, args.warmup, epochs, pause)
        inference = {}
        for w in workers:
            if w.error or w.contender == "floor" or (w.contender != "sklearn"
                                                     and w.threads != threads):
                continue
            try:
                inference[w.label] = w.ask(cmd="infer", repeats=INFER_REPEATS)
            except (RuntimeError, ValueError) as exc:
                inference[w.label] = {"error": str(exc)}
        main_f32 = find(workers, "scratchnet", "float32", threads)
        if args.profile and main_f32 is not None and not main_f32.error:
            profile_text = main_f32.ask(cmd="profile", epochs=2)["text"]
        for w in workers:
            w.close()
        width_results = run_widths([w for w in widths if w != HIDDEN_DEFAULT], tmp, threads,
                                   other, args.warmup, max(2, epochs - 2), pause)
    finally:
        for w in workers:
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()

    # -- the table -----------------------------------------------------------------------
    def med(contender, dtype="float32", n=threads):
        w = find(workers, contender, dtype, n)
        return statistics.median(w.times) if w is not None and w.times else None

    ref = med("scratchnet")
    info = next((w.info for w in workers if w.info.get("blas")), {})
    env_blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if k in os.environ}
    print(f"scratchnet benchmark, {started:%Y-%m-%d %H:%M %Z}")
    print(f"workload: MNIST {stats['n_train']} images, 784 -> 89 tanh -> 10, softmax cross "
          f"entropy, SGD momentum 0.9 (lr 0.1), batch 60")
    print(f"machine: {os.cpu_count()} CPUs; Python {platform.python_version()}, NumPy "
          f"{np.__version__}, BLAS {info.get('blas', 'unknown')}")
    env_text = ", ".join(f"{k}={v}" for k, v in env_blas.items())
    print(f"environment: {env_text or 'OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset'}; load "
          f"average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"method: {args.warmup} warm-up + {epochs} measured epochs per contender, "
          f"interleaved one epoch at a time, each contender in its own process; "
          f"Trainer's BLAS threads: {threads}")
    print()
    header = (f"{'contender':34s} {'threads':>7s} {'median s/epoch':>14s} {'min s':>7s} "
              f"{'vs scratchnet f32':>17s} {'vs floor':>8s}")
    print(header)
    print("-" * len(header))
    for w in workers:
        if w.error or not w.times:
            print(f"{w.label:34s} failed: {w.error or 'no epochs measured'}")
            continue
        m = statistics.median(w.times)
        floor = med("floor", w.dtype, threads if w.contender == "sklearn" else w.threads)
        print(f"{w.label:34s} {str(w.info.get('threads', '?')):>7s} {m:14.3f} "
              f"{min(w.times):7.3f} {fmt_ratio(m / ref if ref else None):>17s} "
              f"{fmt_ratio(m / floor if floor else None):>8s}")
    if not have_module("torch"):
        print(f"{'PyTorch float32':34s} skipped (torch not installed: pip install -e '.[bench]')")
    print("(vs floor: against the floor of the same dtype and thread count; sklearn's against "
          "the Trainer's)")
    print(FLOOR_DEFINITION)
    print()

    print(f"test-set inference, {stats['n_test']:,} images in batches of 2048 "
          f"(median of {INFER_REPEATS}):")
    for label, res in inference.items():
        if "error" in res:
            print(f"  {label:34s} failed: {res['error']}")
            continue
        s = statistics.median(res["seconds"])
        print(f"  {label:34s} {res['images'] / s:10,.0f} images/s   "
              f"(test accuracy after {args.warmup + epochs} epochs: {res['accuracy']:.2%})")
    print()
    if "skipped" in rss:
        print(f"peak RSS of `scratchnet train configs/mnist_tanh.yaml` (1 epoch): "
              f"skipped ({rss['skipped']})")
    else:
        print(f"peak RSS of `{rss['command']}`: {rss['peak_rss_mib']:.0f} MiB "
              f"({rss['peak_rss_mib'] * 1.048576:.0f} MB), {rss['seconds']:.1f} s")
    print()
    if profile_text:
        print("profile of 2 scratchnet float32 epochs (pyinstrument):")
        print(profile_text)

    def ratio(a, b):
        return a / b if a and b else None

    # PyTorch at its faster thread count: the harder comparison.
    torch_rows = [(statistics.median(w.times), w.label) for w in workers
                  if w.contender == "torch" and w.times]
    torch32, torch_label = min(torch_rows) if torch_rows else (None, "PyTorch f32")
    f64, floor32 = med("scratchnet", "float64"), med("floor")
    rss_mb = None if "skipped" in rss else rss["peak_rss_mib"] * 1.048576
    main_width = {"rows": stats["n_train"],
                  **{(w.contender, w.threads): statistics.median(w.times)
                     for w in workers if w.times and w.dtype == "float32"}}
    print(f"float32 by hidden width (the notebook's {HIDDEN_DEFAULT} from the table above):")
    width_checks = print_widths({HIDDEN_DEFAULT: main_width, **width_results}, threads, other)
    checks = [
        (f"scratchnet f32 / {torch_label}", ratio(ref, torch32), TARGET_VS_TORCH_F32, "x"),
        ("scratchnet f32 / floor f32", ratio(ref, floor32), TARGET_VS_FLOOR_F32, "x"),
        (f"scratchnet f64 / {torch_label}", ratio(f64, torch32), TARGET_F64_VS_TORCH_F32, "x"),
        *width_checks[1:],
        ("peak RSS of the MNIST run (MB)", rss_mb, TARGET_RSS_MB, " MB"),
    ]
    print("targets (issue 20):")
    for name, value, limit, unit in checks:
        shown = "-" if value is None else (f"{value:.2f}x" if unit == "x" else f"{value:.0f} MB")
        print(f"  {name:46s} {shown:>8s}  {verdict(value, limit)}")

    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(), "epochs": epochs, "warmup": args.warmup,
            "threads": threads, "load_average": [load_start[0], load_end[0]],
            "environment": env_blas,
            "contenders": {w.label: {"contender": w.contender, "dtype": w.dtype,
                                     "threads": w.threads, "times": w.times, "info": w.info,
                                     "error": w.error} for w in workers},
            "inference": inference, "rss": rss,
            "widths": {str(k): {(key if isinstance(key, str) else f"{key[0]} {key[1]}"): t
                                for key, t in v.items()} for k, v in width_results.items()},
        }, indent=2))
    return 0

if __name__ == "__main__":
    sys.exit(main())
