"""One contender of ``benchmarks/bench.py``, run in its own process.

The driver starts one worker per contender and talks to it over stdin/stdout, one JSON
object per line, so that contenders can be run interleaved (A B A B ...) while each keeps
its data, its model and its warm caches in a process of its own:

    driver -> worker    {"cmd": "epoch"} | {"cmd": "infer", "repeats": 5}
                        | {"cmd": "profile", "epochs": 2} | {"cmd": "quit"}
    worker -> driver    {"ready": true, ...} once at start, then one answer per command

Usage (by the driver): ``bench_worker.py CONTENDER --data DIR [--threads N] [--hidden W]
[--rows N]`` where DIR holds the uint8 MNIST arrays and the scaling statistics the driver
wrote.

The workload is the notebook's: 784 -> 89 tanh -> 10, softmax cross entropy, SGD with
momentum 0.9 at a learning rate of 0.1, batches of 60, the 60,000 training images
reshuffled every epoch; ``--hidden`` changes the hidden width and ``--rows`` trains on
the first N images only (an "epoch" of a wide network that still takes seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HIDDEN, CLASSES, BATCH, LR, MOMENTUM, SEED = 89, 10, 60, 0.1, 0.9, 20190119
CONTENDERS = ("scratchnet", "torch", "sklearn", "floor")


def load(data_dir: Path, dtype, rows: int | None = None) -> dict:
    """The scaled images in ``dtype`` (one global mean and std, as in the notebook); the
    first ``rows`` training images only, when given."""
    stats = json.loads((data_dir / "stats.json").read_text())
    out = {}
    for split in ("train", "test"):
        X = np.load(data_dir / f"X_{split}.npy").astype(dtype)
        if split == "train" and rows:
            X = X[:rows].copy()
        X -= dtype(stats["mean"])
        X /= dtype(stats["std"])
        out[f"X_{split}"] = X
        y = np.load(data_dir / f"y_{split}.npy").astype(np.int64)
        out[f"y_{split}"] = y[:len(X)]
    return out


def blas_threads(n: int | None):
    """A context limiting BLAS threads to ``n`` (threadpoolctl), or doing nothing."""
    from contextlib import nullcontext
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(n, user_api="blas")


def blas_info() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for lib in threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in lib.get("filepath", ""):
            return {"blas": f"{lib.get('internal_api')} {lib.get('version')} "
                            f"{lib.get('architecture', '')}".strip(),
                    "blas_threads": lib.get("num_threads")}
    return {}


# -- contenders: each has epoch() -> None and infer() -> accuracy on the test set ---------

class Scratchnet:
    def __init__(self, data: dict, dtype, threads: int | None):
        from scratchnet import Dense, NeuralNetwork, SGDMomentum, Trainer, evaluate
        self.evaluate = evaluate
        eye = np.eye(CLASSES, dtype=dtype)
        self.X, self.Y = data["X_train"], eye[data["y_train"]]
        self.X_test, self.Y_test = data["X_test"], eye[data["y_test"]]
        net = NeuralNetwork([Dense(HIDDEN, "tanh", weight_init="glorot"),
                             Dense(CLASSES, "linear", weight_init="glorot")],
                            "softmax_cross_entropy", seed=SEED, dtype=np.dtype(dtype).name)
        net.build(self.X.shape[1])
        self.net = net
        self.trainer = Trainer(net, SGDMomentum(LR, momentum=MOMENTUM), blas_threads=threads)
        self.epochs = 0

    def epoch(self) -> None:
        # One call of the real training loop per epoch, continuing from the weights.
        self.trainer.fit(self.X, self.Y, epochs=1, batch_size=BATCH, seed=self.epochs,
                         restart=False)
        self.epochs += 1

    def infer(self) -> float:
        return self.evaluate(self.net, self.X_test, self.Y_test)["accuracy"]


class Torch:
    def __init__(self, data: dict, dtype, threads: int | None):
        import torch
        self.torch = torch
        torch.manual_seed(SEED)
        self.X = torch.from_numpy(data["X_train"])
        self.y = torch.from_numpy(data["y_train"])
        self.X_test = torch.from_numpy(data["X_test"])
        self.y_test = torch.from_numpy(data["y_test"])
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(self.X.shape[1], HIDDEN), nn.Tanh(),
                                   nn.Linear(HIDDEN, CLASSES))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss = nn.CrossEntropyLoss()

    def epoch(self) -> None:
        torch, model, opt, loss_fn = self.torch, self.model, self.opt, self.loss
        perm = torch.randperm(len(self.X))
        for i in range(0, len(self.X), BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = self.X[idx], self.y[idx]
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    def infer(self) -> float:
        torch = self.torch
        with torch.no_grad():
            labels = torch.cat([self.model(self.X_test[i:i + 2048]).argmax(dim=1)
                                for i in range(0, len(self.X_test), 2048)])
        return float((labels == self.y_test).double().mean())


class Sklearn:
    def __init__(self, data: dict, dtype, threads: int | None):
        from sklearn.neural_network import MLPClassifier
        self.X, self.y = data["X_train"], data["y_train"]
        self.X_test, self.y_test = data["X_test"], data["y_test"]
        self.model = MLPClassifier(
            hidden_layer_sizes=(HIDDEN,), activation="tanh", solver="sgd",
            learning_rate_init=LR, momentum=MOMENTUM, nesterovs_momentum=False,
            batch_size=BATCH, alpha=0.0, shuffle=True, random_state=SEED)

    def epoch(self) -> None:
        self.model.partial_fit(self.X, self.y, classes=np.arange(CLASSES))

    def infer(self) -> float:
        labels = np.concatenate([self.model.predict(self.X_test[i:i + 2048])
                                 for i in range(0, len(self.X_test), 2048)])
        return float(np.mean(labels == self.y_test))


class Floor:
    """The BLAS floor: exactly the matrix products one training epoch needs, nothing else.

    Per batch of 60 rows x: ``x @ W1`` and ``h @ W2`` (forward), ``h.T @ g2`` and
    ``x.T @ g1`` (weight gradients), and ``g2 @ W2.T`` (the input gradient of layer 2).
    The first layer's input gradient is never needed, and scratchnet skips it. No
    gathering, no element-wise work, no update: contiguous slices, preallocated outputs.
    """

    def __init__(self, data: dict, dtype, threads: int | None):
        rng = np.random.default_rng(SEED)
        self.X = data["X_train"]
        n_in = self.X.shape[1]
        self.W1 = (rng.standard_normal((n_in, HIDDEN)) * 0.05).astype(dtype)
        self.W2 = (rng.standard_normal((HIDDEN, CLASSES)) * 0.1).astype(dtype)
        self.g2 = (rng.standard_normal((BATCH, CLASSES)) * 0.01).astype(dtype)
        self.h = np.empty((BATCH, HIDDEN), dtype)
        self.z = np.empty((BATCH, CLASSES), dtype)
        self.g1 = np.empty((BATCH, HIDDEN), dtype)
        self.dW1 = np.empty_like(self.W1)
        self.dW2 = np.empty_like(self.W2)

    def epoch(self) -> None:
        X, W1, W2, g2, h, z, g1 = self.X, self.W1, self.W2, self.g2, self.h, self.z, self.g1
        dW1, dW2, matmul = self.dW1, self.dW2, np.matmul
        for i in range(0, len(X) - BATCH + 1, BATCH):
            x = X[i:i + BATCH]
            matmul(x, W1, out=h)
            matmul(h, W2, out=z)
            matmul(h.T, g2, out=dW2)
            matmul(g2, W2.T, out=g1)
            matmul(x.T, g1, out=dW1)

    def infer(self) -> float:
        raise ValueError("the floor does no inference")


def profile(contender, epochs: int) -> str:
    """pyinstrument's call tree of ``epochs`` epochs (sampling every 0.5 ms)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed (pip install pyinstrument)"
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(epochs):
        contender.epoch()
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, short_mode=False)


def main() -> None:
    global HIDDEN
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=CONTENDERS)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (threadpoolctl); torch: intra-op threads")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden width")
    parser.add_argument("--rows", type=int, default=None, help="training images used")
    args = parser.parse_args()
    HIDDEN = args.hidden
    dtype = np.dtype(args.dtype).type
    send = lambda obj: print(json.dumps(obj), flush=True)  # noqa: E731

    info = {"ready": True, **blas_info()}
    if args.contender == "torch":
        import torch
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        info.update(torch=torch.__version__, threads=torch.get_num_threads())
    data = load(args.data, dtype, args.rows)
    cls = {"scratchnet": Scratchnet, "torch": Torch, "sklearn": Sklearn, "floor": Floor}
    with blas_threads(args.threads if args.contender != "torch" else None):
        if args.contender != "torch":
            info["threads"] = blas_info().get("blas_threads")
        contender = cls[args.contender](data, dtype, args.threads)
        send(info)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "epoch":
                t0 = time.perf_counter()
                contender.epoch()
                send({"seconds": time.perf_counter() - t0})
            elif cmd["cmd"] == "profile":
                send({"text": profile(contender, cmd.get("epochs", 2))})
            elif cmd["cmd"] == "infer":
                times, acc = [], None
                for _ in range(cmd.get("repeats", 5)):
                    t0 = time.perf_counter()
                    acc = contender.infer()
                    times.append(time.perf_counter() - t0)
                send({"seconds": times, "images": len(data["X_test"]), "accuracy": acc})
            else:
                break


if __name__ == "__main__":
    main()
