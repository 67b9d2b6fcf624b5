"""The bit-identity corpus: every array a set of small training runs ends with, saved once
and compared bit for bit against later code.

A change to the engine's internals (how parameters are stored, how an optimizer steps,
how batches are gathered) must leave every number of every run the same. This script
trains small networks for a few epochs on scikit-learn's bundled digits (8x8 images, no
download) through the public API only (``NeuralNetwork``, ``Dense``, ``Conv2D``, pooling,
``Flatten``, the optimizer classes, ``Trainer.fit``/``evaluate``/``checkpoint``,
``Param`` with ``Optimizer.step``, ``ScaledRows``), so the same script runs on the code
before and after a change:

* dense networks with batch norm and dropout, float32 and float64, under every optimizer,
  plain and with weight decay and gradient clipping;
* convolutional networks (convolution, max and average pooling, BatchNorm2D, flatten);
* learning-rate schedules (linear, step, cosine, plateau, warm-up);
* early stopping that restores the best weights, and the notebook's rule;
* a run interrupted mid-epoch (``Trainer.stop_requested`` from a callback) and resumed
  from ``trainer.checkpoint()`` in a new trainer, network and optimizer;
* a network and optimizer that go through pickle and deepcopy, then train on;
* the book's loose list of ``Param`` handed to ``opt.step(params, lr)``;
* 8-bit rows scaled as they are read (``scratchnet.data.ScaledRows``).

Each run contributes its final weights and buffers, the optimizer's ``state_dict``, the
checkpoint's arrays (the ``opt.<param>.<slot>`` format included), the history's losses
and metrics as arrays and the predictions on held-out rows.

    python benchmarks/identity.py --save FILE.npz    # record
    python benchmarks/identity.py --check FILE.npz   # compare; exit 1 on any difference
"""

from __future__ import annotations

import argparse
import copy
import pickle
import sys
import time

import numpy as np

OPTIMIZERS = ("sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
EXTRAS = {"plain": {}, "decay_clip": {"weight_decay": 0.01, "clip_norm": 1.0}}


def digits():
    """Digits scaled to [0, 1]: X (1797, 64) float64, one-hot Y (1797, 10), raw uint8."""
    from sklearn.datasets import load_digits
    d = load_digits()
    raw = d.data.astype(np.uint8)
    return raw / 16.0, np.eye(10)[d.target], raw


def optimizer(name: str, lr: float, **options):
    import scratchnet as sn
    classes = {"sgd": sn.SGD, "sgd_momentum": sn.SGDMomentum, "nesterov": sn.SGDNesterov,
               "adagrad": sn.AdaGrad, "rmsprop": sn.RMSProp, "adam": sn.Adam,
               "adamw": sn.AdamW}
    if name == "sgd_momentum":
        return classes[name](lr, momentum=0.9, **options)
    return classes[name](lr, **options)


def dense_net(dtype: str, seed: int = 7):
    import scratchnet as sn
    return sn.NeuralNetwork([sn.Dense(24, "tanh", dropout=0.1),
                             sn.Dense(16, "relu", batch_norm=True),
                             sn.Dense(10, "linear")],
                            "softmax_cross_entropy", seed=seed, dtype=dtype)


def conv_net(dtype: str, seed: int = 11):
    import scratchnet as sn
    return sn.NeuralNetwork([sn.Conv2D(4, 3, activation="relu"), sn.MaxPool2D(2),
                             sn.Conv2D(6, 3, activation="tanh", batch_norm=True),
                             sn.AvgPool2D(2), sn.Flatten(), sn.Dense(10, "linear")],
                            "softmax_cross_entropy", seed=seed, dtype=dtype)


class Record:
    """Name -> array, with a helper per kind of thing a run leaves behind."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, key: str, value) -> None:
        if key in self.arrays:
            raise KeyError(f"duplicate key {key}")
        self.arrays[key] = np.array(value)

    def net(self, prefix: str, net) -> None:
        for name, a in net.state_dict().items():
            self.put(f"{prefix}/net/{name}", a)

    def opt(self, prefix: str, opt, params) -> None:
        for name, a in opt.state_dict(params).items():
            self.put(f"{prefix}/opt/{name}", a)

    def history(self, prefix: str, history) -> None:
        keys = sorted({k for r in history.records for k, v in r.items()
                       if isinstance(v, float) and k != "seconds"})
        for k in keys:
            self.put(f"{prefix}/history/{k}",
                     [np.nan if r.get(k) is None else r[k] for r in history.records])
        self.put(f"{prefix}/history/epoch_train_loss",
                 [e["train_loss"] for e in history.epochs])
        self.put(f"{prefix}/history/summary",
                 [history.epochs_run, -1 if history.best_epoch is None else history.best_epoch,
                  np.nan if history.best_val_loss is None else history.best_val_loss,
                  -1 if history.weights_epoch is None else history.weights_epoch,
                  history.stopped_early, history.interrupted])

    def checkpoint(self, prefix: str, trainer) -> None:
        meta, arrays = trainer.checkpoint()
        for name, a in arrays.items():
            self.put(f"{prefix}/checkpoint/{name}", a)
        self.put(f"{prefix}/checkpoint/meta",
                 [meta["epoch"], meta["batch"], meta["loss_sum"]])

    def trained(self, prefix: str, trainer, history, X_test) -> None:
        self.net(prefix, trainer.net)
        self.opt(prefix, trainer.optimizer, trainer.net.params())
        self.history(prefix, history)
        self.checkpoint(prefix, trainer)
        self.put(f"{prefix}/predictions", trainer.net.predict(X_test))


def split(X, Y, n_train=600, n_val=200, n_test=150):
    a, b = n_train, n_train + n_val
    return X[:a], Y[:a], X[a:b], Y[a:b], X[b:b + n_test], Y[b:b + n_test]


def corpus() -> dict[str, np.ndarray]:
    import scratchnet as sn
    from scratchnet.data import ScaledRows, Scaler
    from scratchnet.nn import Param

    X, Y, raw = digits()
    rec = Record()

    # -- dense, every optimizer, float32 and float64, plain and with decay + clipping --
    for dtype in ("float32", "float64"):
        Xtr, Ytr, Xva, Yva, Xte, _ = split(X, Y)
        for name in OPTIMIZERS:
            for extra, options in EXTRAS.items():
                lr = 0.05 if name in ("sgd", "sgd_momentum", "nesterov", "adagrad") else 0.005
                trainer = sn.Trainer(dense_net(dtype), optimizer(name, lr, **options))
                h = trainer.fit(Xtr, Ytr, Xva, Yva, epochs=3, eval_every=1, batch_size=32,
                                seed=5)
                rec.trained(f"dense/{dtype}/{name}/{extra}", trainer, h, Xte)

    # -- convolutional networks --------------------------------------------------------
    images = X.reshape(-1, 1, 8, 8)
    for dtype in ("float32", "float64"):
        Xtr, Ytr, Xva, Yva, Xte, _ = split(images, Y, 300, 100, 80)
        for name, options in (("sgd_momentum", {}), ("adam", EXTRAS["decay_clip"]),
                              ("rmsprop", {"weight_decay": 0.001})):
            lr = 0.05 if name == "sgd_momentum" else 0.005
            trainer = sn.Trainer(conv_net(dtype), optimizer(name, lr, **options))
            h = trainer.fit(Xtr, Ytr, Xva, Yva, epochs=2, eval_every=1, batch_size=25, seed=3)
            rec.trained(f"conv/{dtype}/{name}", trainer, h, Xte)

    # -- schedules -----------------------------------------------------------------------
    Xtr, Ytr, Xva, Yva, Xte, _ = split(X, Y)
    schedules = {
        "linear": dict(final_lr=0.005, decay_type="linear"),
        "step": dict(final_lr=0.001, decay_type="step",
                     decay_kwargs={"step_size": 2, "gamma": 0.5}),
        "cosine_warmup": dict(decay_type="cosine", decay_kwargs={"warmup_epochs": 1}),
        "plateau": dict(decay_type="plateau",
                        decay_kwargs={"patience": 1, "factor": 0.5, "threshold": 0.5}),
    }
    for label, options in schedules.items():
        trainer = sn.Trainer(dense_net("float32"), optimizer("sgd_momentum", 0.08, **options))
        h = trainer.fit(Xtr, Ytr, Xva, Yva, epochs=5, eval_every=1, batch_size=40, seed=9)
        rec.trained(f"schedule/{label}", trainer, h, Xte)

    # -- early stopping ------------------------------------------------------------------
    for label, stopping in (("restore_best", True), ("notebook", "notebook"),
                            ("patience2", sn.EarlyStopping(patience=2, min_delta=1e-3))):
        trainer = sn.Trainer(dense_net("float64"), optimizer("adam", 0.05))
        h = trainer.fit(Xtr, Ytr, Xva, Yva, epochs=12, eval_every=2, batch_size=50, seed=4,
                        early_stopping=stopping)
        rec.trained(f"early/{label}", trainer, h, Xte)

    # -- interrupted mid-epoch, resumed from the checkpoint in new objects -----------------
    class StopAt(sn.Callback):
        def __init__(self, epoch, batch):
            self.at = (epoch, batch)

        def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
            if (epoch, batch) == self.at:
                trainer.stop_requested = True

    for name in ("adam", "sgd_momentum", "rmsprop"):
        for dtype in ("float32", "float64"):
            prefix = f"resume/{dtype}/{name}"
            trainer = sn.Trainer(dense_net(dtype), optimizer(name, 0.01, clip_norm=2.0),
                                 callbacks=[StopAt(1, 6)])
            h = trainer.fit(Xtr, Ytr, Xva, Yva, epochs=4, eval_every=1, batch_size=32, seed=2,
                            early_stopping=True)
            rec.history(f"{prefix}/first", h)
            checkpoint = trainer.checkpoint()
            for key, a in checkpoint[1].items():
                rec.put(f"{prefix}/first/checkpoint/{key}", a)
            resumed = sn.Trainer(dense_net(dtype, seed=99), optimizer(name, 0.01, clip_norm=2.0))
            h = resumed.fit(Xtr, Ytr, Xva, Yva, epochs=4, eval_every=1, batch_size=32, seed=2,
                            early_stopping=True, resume=checkpoint)
            rec.trained(prefix, resumed, h, Xte)

    # -- pickle and deepcopy, then training on ---------------------------------------------
    for how in ("pickle", "deepcopy"):
        for name in ("adam", "nesterov"):
            prefix = f"copied/{how}/{name}"
            trainer = sn.Trainer(dense_net("float32"), optimizer(name, 0.01))
            trainer.fit(Xtr, Ytr, epochs=1, batch_size=32, seed=6)
            pair = (trainer.net, trainer.optimizer)
            net, opt = pickle.loads(pickle.dumps(pair)) if how == "pickle" else copy.deepcopy(pair)
            again = sn.Trainer(net, opt)
            h = again.fit(Xtr, Ytr, Xva, Yva, epochs=2, eval_every=1, batch_size=32, seed=8,
                          restart=False)
            rec.trained(prefix, again, h, Xte)
            rec.net(f"{prefix}/original", trainer.net)  # untouched by the copy's training

    # -- the book's loose list of Params ---------------------------------------------------
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((6, 3, 5))
    for dtype in (np.float32, np.float64):
        for name in OPTIMIZERS:
            for extra, options in EXTRAS.items():
                params = [Param(np.linspace(-1, 1, 15, dtype=dtype).reshape(3, 5), "W"),
                          Param(np.full((1, 5), 0.5, dtype=dtype), "B")]
                opt = optimizer(name, 0.1, **options)
                for g in grads:
                    params[0].grad[...] = g
                    params[1].grad[...] = g[:1] * 0.5
                    opt.step(params, 0.1)
                prefix = f"loose/{np.dtype(dtype).name}/{name}/{extra}"
                for p in params:
                    rec.put(f"{prefix}/{p.name}", p.value)
                rec.opt(prefix, opt, params)

    # -- 8-bit rows scaled as they are read -------------------------------------------------
    for kind, dtype in (("global", "float32"), ("standard", "float64"), ("none", "float32")):
        scaler = Scaler(kind).fit(raw[:600])
        train = ScaledRows(raw, scaler, dtype, np.arange(600))
        val = ScaledRows(raw, scaler, dtype, np.arange(600, 800))
        trainer = sn.Trainer(dense_net(dtype), optimizer("sgd_momentum", 0.02))
        h = trainer.fit(train, Y[:600], val, Y[600:800], epochs=2, eval_every=1, batch_size=30,
                        seed=12)
        rec.trained(f"scaled/{kind}/{dtype}", trainer, h, np.asarray(val))
        if kind == "global":
            images = train.reshape(600, 1, 8, 8)
            trainer = sn.Trainer(conv_net(dtype), optimizer("adam", 0.005))
            h = trainer.fit(images, Y[:600], epochs=1, batch_size=30, seed=12)
            rec.trained(f"scaled/{kind}/{dtype}/conv", trainer, h,
                        np.asarray(val).reshape(-1, 1, 8, 8))
    return rec.arrays


def differences(saved: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> list[str]:
    """One line per key that is missing, extra, or differs in dtype, shape or any bit."""
    lines = [f"missing now: {k}" for k in sorted(set(saved) - set(now))]
    lines += [f"new key: {k}" for k in sorted(set(now) - set(saved))]
    for key in sorted(set(saved) & set(now)):
        a, b = saved[key], now[key]
        if a.dtype != b.dtype or a.shape != b.shape:
            lines.append(f"{key}: {a.dtype}{a.shape} saved, {b.dtype}{b.shape} now")
        elif a.tobytes() != b.tobytes():
            bits = a.view(np.uint8).reshape(a.size, -1) != b.view(np.uint8).reshape(b.size, -1)
            n = int(bits.any(axis=1).sum()) if a.size else 0
            worst = ""
            if a.dtype.kind == "f":
                with np.errstate(invalid="ignore"):
                    worst = f", largest difference {np.nanmax(np.abs(a - b)):.3g}"
            lines.append(f"{key}: {n} of {a.size} values differ{worst}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="FILE.npz", help="write the corpus's arrays")
    group.add_argument("--check", metavar="FILE.npz", help="compare bit for bit")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    arrays = corpus()
    took = time.perf_counter() - t0
    if args.save:
        np.savez(args.save, **arrays)
        print(f"saved {len(arrays)} arrays to {args.save} ({took:.1f} s)")
        return 0
    with np.load(args.check) as f:
        saved = {k: f[k] for k in f.files}
    lines = differences(saved, arrays)
    for line in lines:
        print(line)
    common = set(saved) & set(arrays)
    same = sum(saved[k].dtype == arrays[k].dtype and saved[k].shape == arrays[k].shape
               and saved[k].tobytes() == arrays[k].tobytes() for k in common)
    print(f"{len(saved)} arrays saved, {len(arrays)} now: {same} bit-identical, "
          f"{len(lines)} difference(s) ({took:.1f} s)")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
