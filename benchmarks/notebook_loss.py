"""Where the notebook's trainer would have stopped had it watched the loss it printed.

    SCRATCHNET_DATA_DIR=DIR python benchmarks/notebook_loss.py [STEM ...]

The notebook's softmax cross entropy added a (1 - y) log(1 - p) term over the classes
(and clipped p to [1e-9, 1 - 1e-9]); its gradient was that of the true cross entropy, so
training was ours, but its early stopping watched the loss with the extra term. This
trains each softmax cross-entropy experiment (configs/mnist_02..11) with its own seed,
evaluated on the test split after every epoch and never stopped (evaluation draws no
random numbers, so it is the config's training), and reads the notebook's rule off the
per-epoch numbers twice: watching our loss, and watching the notebook's. It prints, per
experiment, the epoch each reading keeps and its test accuracy (docs/reproduction.md
quotes them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from scratchnet.config import load_config
from scratchnet.experiment import build_network, build_optimizer, prepare_data
from scratchnet.nn import Callback, Trainer

ROOT = Path(__file__).resolve().parent.parent
STEMS = ["mnist_02_sigmoid_ce", "mnist_03_relu_ce", "mnist_04_tanh_ce",
         "mnist_05_sigmoid_momentum", "mnist_06_tanh_momentum", "mnist_07_linear_decay",
         "mnist_08_exponential_decay", "mnist_09_glorot", "mnist_10_glorot_dropout",
         "mnist_11_glorot_no_dropout"]
EPS = 1e-9  # the notebook's clipping


def notebook_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """The loss the notebook printed: per row, -sum(y log p + (1 - y) log(1 - p)) over the
    classes of the clipped softmax p, averaged over the rows."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = np.clip(p / p.sum(axis=1, keepdims=True), EPS, 1 - EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=1).mean())


class BothLosses(Callback):
    """Every evaluation's test accuracy, our loss and the notebook's, by epoch."""

    def __init__(self, X, Y):
        self.X, self.Y, self.epochs = X, Y, {}

    def on_evaluate(self, trainer, record):
        logits = trainer.net.predict(self.X, raw=True)
        self.epochs[record["epoch"]] = (record["accuracy"], record["val_loss"],
                                        notebook_loss(logits, self.Y))


def notebook_rule(losses: dict[int, float], every: int, epochs: int) -> int:
    """The epoch whose weights the notebook's trainer ends with, given each epoch's
    watched loss: at the first evaluation E whose loss is not below the best, E - 1."""
    best = float("inf")
    for epoch in range(every, epochs + 1, every):
        if not losses[epoch] < best:
            return epoch - 1
        best = losses[epoch]
    return epochs


def main(stems: list[str]) -> None:
    for stem in stems:
        cfg = load_config(ROOT / "configs" / f"{stem}.yaml")
        data = prepare_data(cfg)
        watch = BothLosses(data.X_val, data.Y_val)
        epochs = min(cfg.train.epochs, 60)  # 02 runs up to 130 but stops before 60
        Trainer(build_network(cfg, data.n_features), build_optimizer(cfg), [watch]).fit(
            data.X_train, data.Y_train, data.X_val, data.Y_val, epochs=epochs, eval_every=1,
            batch_size=cfg.train.batch_size, seed=cfg.seed,
            schedule_epochs=cfg.train.epochs)
        every = cfg.train.eval_every
        ours = notebook_rule({e: v[1] for e, v in watch.epochs.items()}, every, epochs)
        theirs = notebook_rule({e: v[2] for e, v in watch.epochs.items()}, every, epochs)
        print(f"{stem}: the notebook's rule watching our loss keeps epoch {ours} "
              f"({100 * watch.epochs[ours][0]:.2f}%), watching its own loss epoch {theirs} "
              f"({100 * watch.epochs[theirs][0]:.2f}%)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or STEMS)
