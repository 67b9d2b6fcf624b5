"""A new labelled file scored by a trained run (``scratchnet eval RUN --data FILE``): its
inputs scaled with the run's recorded scaling, its labels encoded as training encoded the
run's own, the same metrics as the run's test split.

Three kinds of file:

* ``.csv`` with a header row naming the training feature columns (any order) and the label
  column (``target``: the run's ``data.target``, else ``label``);
* ``.npz`` holding ``x`` and ``y`` (or ``x_test`` and ``y_test``, as a data set file);
* ``.npy`` inputs, with the labels in a second ``.npy`` file (``labels``).

Inputs take the shapes ``predict`` takes; labels are one per row, the run's class labels
for a classification (a label it never saw is refused by name), numbers for a regression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.tabular import CsvFile
from ..errors import DataError, ShapeError
from ..predict import read_csv, read_npy

#: the label column of a CSV file when the run names none (it was not trained on a CSV)
LABEL_COLUMN = "label"


def read_labelled(path: str | Path, info: dict, *, target: str | None = None,
                  labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: raw feature rows (n, features) and their labels (n,): class indices
    into ``info["classes"]`` for a classification, float64 values for a regression."""
    path = Path(path)
    suffix = path.suffix.lower()
    if labels is not None and suffix != ".npy":
        raise DataError(f"--labels goes with an .npy file of inputs; {path.name} holds its own "
                        "labels")
    if suffix == ".csv":
        X, raw = _csv(path, info, target or LABEL_COLUMN)
    elif suffix == ".npz":
        X, raw = _npz(path, info)
    elif suffix == ".npy":
        if labels is None:
            raise DataError(f"{path}: an .npy file holds inputs only; give their labels with "
                            "--labels LABELS.npy (or both in one .npz as x and y)")
        X = read_npy(path, int(info["n_features"]), _shape(info))
        raw = _labels_npy(Path(labels))
    else:
        raise DataError(f"{path}: unknown labelled file type {suffix or '(no suffix)'!r}; "
                        "expected .csv, .npz or .npy (with --labels)")
    if len(raw) != len(X):
        raise ShapeError(f"{path}: {len(X)} input rows but {len(raw)} labels")
    return X, _encode(path, raw, info)


def _shape(info: dict):
    return tuple(info["image_shape"]) if info.get("image_shape") else None


def _csv(path: Path, info: dict, target: str) -> tuple[np.ndarray, list]:
    """The file is read row by row, as ``predict`` reads one: its header, then its inputs
    (which checks the rows and their count), and only then its labels, one per input."""
    with CsvFile(path) as source:
        first = next(source.rows(), None)
    header = [c.strip() for c in first[0]] if first else []
    if target not in header:
        raise DataError(f"{path}: no label column {target!r} in the header row (name it with "
                        "--target COLUMN)")
    X = read_csv(path, info["feature_names"], ignore_columns=[target])
    j = header.index(target)
    with CsvFile(path) as source:
        rows = source.rows()
        next(rows)  # the header
        return X, [row[j].strip() for row, _ in rows]


def _npz(path: Path, info: dict) -> tuple[np.ndarray, np.ndarray]:
    from ..data.arrays import read_arrays

    try:
        arrays = read_arrays(path, ("x", "y"))
    except DataError:
        arrays = read_arrays(path, ("x_test", "y_test"))
    x, y = arrays.values()
    n, shape = int(info["n_features"]), _shape(info)
    if x.ndim < 1 or int(np.prod(x.shape[1:])) != n:
        raise ShapeError(f"{path}: inputs of shape {x.shape} do not fit the run's {n} "
                         f"features{f' (images of {shape})' if shape else ''}")
    return x.reshape(len(x), n).astype(np.float64), y


def _labels_npy(path: Path) -> np.ndarray:
    from .. import files

    with files.open_regular(path, files.MAX_NPY_BYTES, "an .npy array of labels") as f:
        try:
            y = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npy array of labels ({exc})") from None
    if y.ndim != 1:
        raise ShapeError(f"{path}: labels must be one per row, shape (n,), got {y.shape}")
    return y


def _encode(path: Path, raw, info: dict) -> np.ndarray:
    """Labels as training holds them: class indices, or float values."""
    if info["task"] != "classification":
        try:
            y = np.asarray(raw, dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}: a regression's labels must be numbers") from None
        if not np.isfinite(y).all():
            raise DataError(f"{path}: a label is missing or infinite")
        return y
    classes = list(info["classes"])
    by_text = {str(c): i for i, c in enumerate(classes)}
    out = np.empty(len(raw), dtype=np.int64)
    for i, label in enumerate(raw):
        key = str(label.item() if hasattr(label, "item") else label).strip()
        if key not in by_text:  # 3.0 for the class 3, "3" for 3.0
            try:
                key = next(str(c) for c in classes
                           if not isinstance(c, str) and float(key) == float(c))
            except (ValueError, StopIteration):
                shown = ", ".join(map(str, classes[:12])) + (", ..." if len(classes) > 12 else "")
                raise DataError(f"{path}: row {i + 1}: label {key!r} is not one of the run's "
                                f"classes ({shown})") from None
        out[i] = by_text[key]
    return out
