"""Options declared once: a constructor's signature is the declaration.

The name, type, default and bounds of every option an engine class takes, and a sentence
of help, are written once, in its constructor's signature::

    class SGDMomentum(Optimizer):
        @checked
        def __init__(self, lr: LearningRate = 0.01,
                     momentum: Annotated[Fraction, Doc("share of the last step kept")] = 0.9,
                     *, nesterov: bool = False, **options): ...

The engine checks its arguments against that declaration (:func:`checked`, or
:func:`check_fields` for a dataclass), raising a :class:`~scratchnet.errors.ConfigError`
whose ``key`` names the option at fault; the experiment file's schema, the JSON Schema,
``--set``, ``show`` and the README's options table are made from the same declaration
(:func:`options`), so adding an option is one edit.

The vocabulary: bounds are annotated-types' :class:`Gt`, :class:`Ge`, :class:`Lt`,
:class:`Le` and :class:`Len` (which pydantic reads as they are); :class:`Doc` is the help
sentence; :class:`Named` marks a name from a registry; :class:`Alias` names another
spelling the option is accepted under (the book's, say); :class:`Via` says where an
experiment file gives an option that it writes elsewhere; :class:`FromData` marks one an
experiment file may leave to its data (``neurons: auto``). Every count has an upper bound
(:data:`Size`, :data:`Epochs`, :data:`Seed`), so checking a config costs the same whatever
numbers it holds. ``declare`` holds the vocabulary and reads declarations; ``check``
checks values against them. This package imports nothing from the engine.
"""

from annotated_types import Ge, Gt, Le, Len, Lt

from .check import (build, canonical_name, check_fields, check_option, check_options,
                    check_value, checked, rename_aliases)
from .declare import (AUTO, MAX_EPOCHS, MAX_SEED, MAX_SIZE, Alias, Doc, Epochs, Fraction, FromData,
                      Named, NonNegativeFloat, NonNegativeInt, Option, PositiveFloat,
                      PositiveInt, Rate, Seed, Size, Via, base_type, bounds, describe,
                      engine_object, lengths, members, metadata_of, options)

__all__ = ["AUTO", "MAX_EPOCHS", "MAX_SEED", "MAX_SIZE", "Alias", "Doc", "Epochs", "Fraction",
           "FromData", "Ge", "Gt", "Le", "Len", "Lt", "Named", "NonNegativeFloat",
           "NonNegativeInt", "Option", "PositiveFloat", "PositiveInt", "Rate", "Seed", "Size",
           "Via", "base_type", "bounds", "build", "canonical_name", "check_fields",
           "check_option", "check_options", "check_value", "checked", "describe",
           "engine_object", "lengths", "members", "metadata_of", "options", "rename_aliases"]
