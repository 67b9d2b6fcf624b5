"""An optimizer's state, laid out like the parameters it updates.

An optimizer keeps a few arrays shaped like each parameter, its *slots* (velocities,
moments). :class:`Slots` lays them out once, when the optimizer is handed its parameters:
for a network's :class:`~scratchnet.nn.core.FlatParams`, one array per slot, end to end
like the parameters' flat values, so that an element-wise update runs once, over the
flat Param and its slots (one *segment*); for any other list of Params, a segment per
parameter. A list of loose Params (the book's ``opt.step(params, lr)``) is packed into a
FlatParams first, once, so that no array an update runs over ever moves. Each parameter's
state is its stretch of its segment's slots (:meth:`Slots.views`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

from .core import FlatParams, Param


class Slots:
    """The slots of ``params``, each made by ``new_slots(segment)`` (zeros); one segment
    for all of them when ``elementwise`` and they are a FlatParams (or were loose)."""

    def __init__(self, params: Sequence[Param],
                 new_slots: Callable[[Param], dict[str, np.ndarray]], elementwise: bool):
        if not isinstance(params, FlatParams):
            params = tuple(params)
            loose = [p for p in params if not p.in_flat]
            if len(loose) == len(params):
                params = FlatParams(params)
            elif loose:  # beside some of a network's: each is a segment, but never moves
                FlatParams(loose)
        self.params, self.elementwise = params, elementwise
        self._lay_out()
        #: each segment's slots, ``{name: array shaped like the segment}``
        self.arrays = [new_slots(segment) for segment in self.segments]

    def _lay_out(self) -> None:
        flat = self.elementwise and isinstance(self.params, FlatParams) and self.params
        #: what an update runs on: the flat Param of a FlatParams, or each parameter
        self.segments: tuple[Param, ...] = (self.params.flat,) if flat else tuple(self.params)

    def holds(self, params: Sequence[Param]) -> bool:
        """Whether these are the parameters, in this order."""
        return params is self.params or tuple(params) == tuple(self.params)

    def views(self) -> dict[Param, dict[str, np.ndarray]]:
        """Each parameter's slots: its stretch of its segment's."""
        if len(self.segments) == 1 and self.segments[0] is getattr(self.params, "flat", None):
            offsets, arrays = self.params.offsets, self.arrays[0]
            return {p: {name: a[start:end].reshape(p.shape) for name, a in arrays.items()}
                    for p, (start, end) in zip(self.params, pairwise(offsets), strict=True)}
        return dict(zip(self.params, self.arrays, strict=True))

    def keep(self, held: dict[Param, dict[str, np.ndarray]]) -> None:
        """Copy in the slots ``held`` (:meth:`views` of others) of the parameters both hold."""
        for p, views in self.views().items():
            for name, old in held.get(p, {}).items():
                if old.shape == views[name].shape:
                    views[name][...] = old

    def __getstate__(self) -> dict:
        # A FlatParams' flat Param is its parameters' own arrays: found again when loaded.
        return {**self.__dict__, "segments": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lay_out()
