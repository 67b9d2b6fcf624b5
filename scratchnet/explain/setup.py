"""What the explanation reads: the resolved config, its plan, and the engine's layers, made
from the config but never built (no weight is allocated, whatever the network's size)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import ExperimentConfig
from ..experiment import Plan, build_network
from ..nn import Layer, Loss
from ..nn.layer_base import PlannedOperation


@dataclass(frozen=True)
class LayerView:
    """One layer as planned: its config ``type`` (``kind``), the engine's unbuilt layer, the
    sample shapes it takes and gives, its parameter count and its chain of operations."""

    index: int
    kind: str
    layer: Layer
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: int
    chain: list[PlannedOperation]

    @property
    def activation(self) -> str | None:
        """The config name of the layer's activation (an RNN's too), None without one."""
        activation = getattr(self.layer, "activation", None)
        return None if activation is None else activation.name or type(activation).__name__

    @property
    def weights(self) -> tuple[int, ...] | None:
        """The shape of the weights its ``weight_init`` draws (``W``, a recurrent layer's
        ``W_x``), None for a layer without."""
        for op in self.chain:
            for name in ("W", "W_x"):
                if name in op.params:
                    return op.params[name]
        return None

    @property
    def dropout(self) -> float:
        return getattr(self.layer, "dropout", 0.0)

    @property
    def key(self) -> str:
        return f"model.layers.{self.index}"


@dataclass
class Setup:
    """Everything the choices and the pitfall rules look at."""

    cfg: ExperimentConfig
    plan: Plan
    layers: list[LayerView]
    loss: Loss
    input_dropout: float = 0.0

    @property
    def batch(self) -> int:
        """Rows in one (full) batch: the batch size, or every training row if fewer."""
        return max(1, min(self.cfg.train.batch_size, self.plan.n_train))

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.plan.n_train / self.cfg.train.batch_size)

    @property
    def epochs(self) -> int:
        return self.cfg.train.epochs

    @property
    def classification(self) -> bool:
        return self.plan.data.task == "classification"

    @property
    def last(self) -> LayerView:
        return self.layers[-1]

    def rate(self, epoch: int) -> float:
        """The learning rate of (0-based) ``epoch``, as the schedule lays it out before the
        run (a plateau schedule's first rate until the run lowers it)."""
        return self.plan.schedule(epoch)


def make_setup(cfg: ExperimentConfig, plan: Plan) -> Setup:
    """The setup of a config that :func:`~scratchnet.experiment.plan_experiment` accepted
    (``plan``): its layers are made again from the config, unbuilt, with the sizes the
    plan took from the data (``auto``)."""
    net = build_network(cfg, sizes=plan.sizes)
    layers = [LayerView(row["layer"], spec.type, layer, tuple(row["inputs"]),
                        tuple(row["outputs"]), row["params"], layer.chain(row["inputs"]))
              for spec, layer, row in zip(cfg.model.layers, net.layers, plan.layers)]
    return Setup(cfg, plan, layers, net.loss, net.input_dropout)
