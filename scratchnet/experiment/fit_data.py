"""How a network fits its data, checked while an experiment is planned
(:mod:`~scratchnet.experiment.plan`): the sizes an ``auto`` option takes from the data
(:class:`~scratchnet.options.FromData`), and what a network over sequences needs of it.
Each mistake is added to the plan's located lines (``mistakes.add(key path, message)``)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ..config import ExperimentConfig
from ..nn import LAYERS, NeuralNetwork
from ..options import AUTO, options
from .build import build_network, data_sizes, target_encoding

if TYPE_CHECKING:
    from .plan import Plan


def with_data_sizes(cfg: ExperimentConfig, net: NeuralNetwork, plan: Plan,
                    mistakes) -> NeuralNetwork | None:
    """How the targets are given (``plan.targets``), and the network again with its
    ``auto`` options (:class:`~scratchnet.options.FromData`) taken from the data, where it
    has any: only the last layer's width may be the data's."""
    d = plan.data
    plan.targets = d.targets or target_encoding(net.loss, d.task)
    width = d.n_classes if plan.targets in ("one_hot", "ids") else 1
    last = len(cfg.model.layers) - 1
    auto = False
    for i, layer in enumerate(cfg.model.layers):
        for o in options(LAYERS[layer.type]):
            if o.from_data is None or getattr(layer, o.name) != AUTO:
                continue
            auto = True
            if o.from_data.size == "outputs" and i != last:
                mistakes.add(("model", "layers", i, o.name), f"got {AUTO!r}: {AUTO} is the "
                             f"width the data's targets need ({width}), the last layer's; "
                             f"layer {i} is not the last: give a number")
    plan.sizes = data_sizes(width, d.n_classes if plan.targets == "ids" else None)
    if not auto:
        return net
    return mistakes.run((), partial(build_network, loss=net.loss, sizes=plan.sizes), cfg)


def check_sequences(cfg: ExperimentConfig, net: NeuralNetwork, plan: Plan,
                    mistakes) -> bool:
    """What a network over sequences needs of its data: an embedding first (and only
    first) on a text, and on nothing else; a stateful layer only on streams, whose batches
    hold one window of each stream. False after a mistake."""
    before, d, kinds = len(mistakes.lines), plan.data, cfg.model.layers
    for i, layer in enumerate(net.layers):
        if layer.takes_ids and i > 0:
            mistakes.add(("model", "layers", i, "type"), f"got {kinds[i].type!r}: an embedding "
                         "reads integer ids, so it can only be the first layer")
        if getattr(layer, "stateful", False) and cfg.data.streams is None:
            mistakes.add(("model", "layers", i, "stateful"), "got true: a stateful layer "
                         "carries each row's state into the same row of the next batch, "
                         "which means something only for a text read as streams "
                         "(data.streams); expected false")
    ids = plan.targets == "ids"
    if net.layers[0].takes_ids and not ids:
        mistakes.add(("model", "layers", 0, "type"), f"got {kinds[0].type!r}: an embedding "
                     f"reads the character ids of a text (dataset: text); {d.name} holds "
                     "numbers, not ids")
    elif ids and not net.layers[0].takes_ids:
        mistakes.add(("model", "layers", 0, "type"), f"got {kinds[0].type!r}: a text's "
                     "samples are character ids, which an embedding reads: the first layer "
                     "must be one ({type: embedding, dim: 32})")
    for key in ("scale", "target_scale"):  # (their defaults say nothing: a copied file's)
        if ids and getattr(cfg.data, key) != type(cfg.data).model_fields[key].default:
            mistakes.add(("data", key), f"got {getattr(cfg.data, key)!r}: a text's samples "
                         "and targets are character ids, never scaled; leave it out")
    streams, batch = cfg.data.streams, cfg.train.batch_size
    if streams is not None and batch != streams:
        mistakes.add(("train", "batch_size"), f"got {batch}: data.streams is {streams}, and "
                     f"every batch holds one window of each stream; expected {streams}")
    return len(mistakes.lines) == before
