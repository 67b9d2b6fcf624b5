"""Datasets for scratchnet: loading (MNIST-style IDX files, scikit-learn sets, CSV) and
preparation (validation split, scaling fitted on training data, one-hot labels).

Typical use::

    from scratchnet.data import load_dataset, prepare
    ds = load_dataset("mnist")                     # uint8 images, (60000, 784)
    data = prepare(ds, scale="global", validation="test")
    data.X_train.shape, data.Y_train.shape         # (60000, 784) float32, (60000, 10)
"""

from .idx import FileCheck, read_idx, write_idx
from .prepare import SCALERS, Prepared, Scaler, one_hot, prepare, split_indices
from .sources import (DATASETS, TASKS, Dataset, cache_dir, candidate_dirs, load_dataset,
                      resolve_data_files)

__all__ = [
    "DATASETS", "SCALERS", "TASKS", "Dataset", "FileCheck", "Prepared", "Scaler",
    "cache_dir", "candidate_dirs", "load_dataset", "one_hot", "prepare", "read_idx",
    "resolve_data_files", "split_indices", "write_idx",
]
