"""The network as the book draws it: each layer as its chain of operations (the engine's
:meth:`~scratchnet.nn.Layer.chain`), with the shape of one batch after every operation."""

from __future__ import annotations

from ..nn import Dropout
from ..nn.layer_base import PlannedOperation
from .setup import Setup


def operation_name(cls: type) -> str:
    """The book's name of an operation: ``WeightMultiply``, ``Conv2D`` (for Conv2DOp)."""
    return cls.__name__.removesuffix("Op")


def axes(setup: Setup) -> str:
    """What the axes of the input batch are: ``batch x features``, ``batch x time x
    features``, ``batch x channels x height x width``, ``batch x time`` (ids)."""
    first = setup.layers[0].layer
    if first.takes_ids:
        return "batch x time (ids)"
    if first.takes_images:
        return "batch x channels x height x width"
    return "batch x time x features" if len(setup.layers[0].inputs) == 2 else "batch x features"


def _operation(op: PlannedOperation, batch: int) -> dict:
    return {"operation": operation_name(op.operation),
            "params": {name: list(shape) for name, shape in op.params.items()},
            "shape": [batch, *op.shape], "equations": list(op.equations)}


def network(setup: Setup) -> dict:
    """``input`` (one batch's shape, and its dropout), ``layers`` (each with its
    ``operations``: name, parameter shapes, the batch's shape after it, and how a recurrent
    one computes), ``loss`` and ``params`` (the total), as ``--json`` gives them."""
    batch, shape = setup.batch, setup.layers[0].inputs
    dropout = ([_operation(PlannedOperation(Dropout, shape), batch)] if setup.input_dropout
               else [])
    layers = []
    for view in setup.layers:
        operations = [_operation(op, batch) for op in view.chain]
        layers.append({"layer": view.index, "kind": view.kind, "type": view.layer.describe(),
                       "params": view.params,
                       "chain": " -> ".join(op["operation"] for op in operations),
                       "operations": operations})
    loss = setup.loss
    return {"batch": batch, "axes": axes(setup),
            "input": {"shape": [batch, *shape], "operations": dropout},
            "layers": layers,
            "loss": {"name": loss.name, "operation": type(loss).__name__,
                     "shape": [batch, *setup.last.outputs]},
            "params": sum(view.params for view in setup.layers)}
