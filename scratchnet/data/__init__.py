"""Datasets for scratchnet: loading (MNIST-style IDX sets, scikit-learn sets, CSV) and
preparation (validation split, scaling fitted on training data, one-hot labels).

Typical use::

    from scratchnet.data import load_dataset, prepare
    ds = load_dataset("mnist")                     # uint8 images, (60000, 784)
    data = prepare(ds, scale="global", validation="test")
    data.X_train.shape, data.Y_train.shape         # (60000, 784) float32, (60000, 10)

The modules: ``dataset`` (the :class:`Dataset` every loader returns), ``idx`` (the IDX
file format), ``download``, ``mnist``, ``bundled`` (scikit-learn's sets), ``tabular``
(CSV), ``sources`` (the :data:`DATASETS` registry and :func:`load_dataset`), ``scaling``
(the :class:`Scaler`) and ``prepare`` (splitting, scaling, encoding). For sequences:
``sequences`` (their limits, how a sample is read as one, the adding problem), ``text``
(character-level text, cut into windows) and ``corpora`` (known texts, fetched on first
use).
"""

from .dataset import TASKS, Dataset, Description
from .idx import FileCheck, read_idx, write_idx
from .mnist import cache_dir, candidate_dirs, resolve_data_files
from .prepare import Prepared, one_hot, prepare, saved_target_scaler, split_indices
from .scaled import ScaledRows
from .scaling import SCALERS, Scaler
from .sequences import AddingOptions, describe_adding, load_adding, sequence_shape_of
from .sources import DATASETS, Source, describe_dataset, load_dataset
from .text import TextData, TextOptions, Vocabulary, load_text

__all__ = [
    "DATASETS", "SCALERS", "TASKS", "Dataset", "Description", "FileCheck", "Prepared",
    "ScaledRows", "Scaler", "Source", "cache_dir", "candidate_dirs", "describe_dataset",
    "load_dataset", "one_hot", "prepare", "read_idx",
    "resolve_data_files", "saved_target_scaler", "split_indices", "write_idx",
    "AddingOptions", "TextData", "TextOptions", "Vocabulary", "describe_adding", "load_adding",
    "load_text", "sequence_shape_of",
]
