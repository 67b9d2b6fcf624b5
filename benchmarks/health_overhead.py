"""What ``train --health`` costs, on the MNIST tanh workload (configs/mnist_tanh.yaml:
784 -> 89 tanh -> 10, batch 60, 54,000 training images, 6,000 validation images).

    SCRATCHNET_DATA_DIR=DIR python benchmarks/health_overhead.py

One epoch at a time, with an evaluation after every epoch (the worst case: the config
itself evaluates every 10th), alternating a trainer without the monitor and one with it,
so that a busy moment of the machine hits both alike; the median seconds per epoch of
each, and the monitor's own work timed alone: one ``measure`` (the forward pass of the
512-row sample and the statistics) and one copy of the parameters (once per epoch).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from scratchnet.config import load_config
from scratchnet.experiment import build_network, build_optimizer, prepare_data
from scratchnet.nn import HealthMonitor, Trainer

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="epochs per contender")
    args = parser.parse_args(argv)
    cfg = load_config(ROOT / "configs" / "mnist_tanh.yaml")
    data = prepare_data(cfg)
    trainers = {}
    for watched in (False, True):
        net = build_network(cfg, data.n_features)
        callbacks = [HealthMonitor(data.X_val)] if watched else []
        trainers[watched] = Trainer(net, build_optimizer(cfg), callbacks=callbacks)
    seconds = {False: [], True: []}
    for k in range(args.rounds + 1):  # the first round warms up
        for watched, trainer in trainers.items():
            t0 = time.perf_counter()
            trainer.fit(data.X_train, data.Y_train, data.X_val, data.Y_val, epochs=1,
                        eval_every=1, batch_size=cfg.train.batch_size, seed=k,
                        restart=k == 0)
            if k:
                seconds[watched].append(time.perf_counter() - t0)
    monitor, net = trainers[True].callbacks[0], trainers[True].net
    measure = []
    for _ in range(20):
        t0 = time.perf_counter()
        monitor.measure(net)
        measure.append(time.perf_counter() - t0)
    copy = []
    for _ in range(200):
        t0 = time.perf_counter()
        monitor._take_before(trainers[True])
        copy.append(time.perf_counter() - t0)
    off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(f"median s/epoch, evaluated every epoch, {args.rounds} epochs each: without "
          f"{off:.3f}, with --health {on:.3f} ({100 * (on / off - 1):+.1f}%)")
    print(f"one health measurement (512 rows): {1000 * statistics.median(measure):.2f} ms; "
          f"one copy of the {sum(p.value.size for p in net.params()):,} parameters: "
          f"{1000 * statistics.median(copy):.3f} ms")
    print("per epoch, without: " + ", ".join(f"{s:.3f}" for s in seconds[False]))
    print("per epoch, with:    " + ", ".join(f"{s:.3f}" for s in seconds[True]))


if __name__ == "__main__":
    main()
