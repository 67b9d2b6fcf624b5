"""CSV files with a header row: one target column, every other column a numeric feature."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DataError
from .dataset import Dataset, Description, split_train_test

# CSV cells that mean "no value" (compared after stripping spaces, case-insensitively).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null"})
# A numeric CSV target is treated as class labels when it holds integers only, at most
# this many distinct values, and at least CSV_MIN_ROWS_PER_CLASS rows per distinct
# value on average (so 0/1/2 codes in a 150-row file are classes, but 12 distinct ages in
# 30 rows are a quantity). ``task=`` overrides the guess.
CSV_MAX_CLASSES = 20
CSV_MIN_ROWS_PER_CLASS = 5


def csv_rows(path: str | Path) -> tuple[list[tuple[list[str], int]], dict]:
    """The non-blank rows of a CSV file, each with its file line number, and the file's
    fingerprint ``{"bytes": size, "sha256": hex digest}`` of the very bytes read. A
    DataError for a file that is not a regular file of at most
    :data:`~scratchnet.files.MAX_CSV_BYTES`, not UTF-8 text or not CSV."""
    data = files.read_bytes(path, files.MAX_CSV_BYTES, "a CSV file")
    fingerprint = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from None
    del data  # the text is all that is needed from here on
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        return [(row, reader.line_num) for row in reader if row], fingerprint
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_MARKERS


def _where(row: int, line: int, column: str) -> str:
    return f"data row {row} (file line {line}), column {column!r}"


def _is_integer(value: float) -> bool:
    return float(value).is_integer()


def describe_csv(path, **options) -> Description:
    """A CSV file's description: the file is read (and checked) to know it."""
    return Description.of(load_csv(path, **options))


def load_csv(path, *, target: str | None, task: str | None = None,
             test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Read a CSV file with a header row; ``target`` names the column to predict.

    Every other column is a feature and must be numeric. Missing cells (empty, NA, N/A,
    NaN, null) are refused with the data row number (1 = first row after the header) and
    the file line number. The task is "classification" when the target holds text, or
    integers only with at most CSV_MAX_CLASSES (20) distinct values and at least
    CSV_MIN_ROWS_PER_CLASS (5) rows per distinct value on average; "regression"
    otherwise. ``task`` overrides this guess. Classes are the sorted distinct strings
    (text target) or sorted distinct numbers (numeric target).
    """
    if path is None:
        raise DataError("the csv dataset needs a file: pass path=FILE.csv")
    path = Path(path).expanduser()
    found, fingerprint = csv_rows(path)
    header = [h.strip() for h in found[0][0]] if found else []
    if not header or not any(header):
        raise DataError(f"{path}: empty file; a CSV needs a header row naming the columns")
    if "" in header:
        raise DataError(f"{path}: column {header.index('') + 1} of the header row has no name")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise DataError(f"{path}: duplicate column names in the header: "
                        f"{', '.join(duplicated)}")
    if target is None or target not in header:
        said = "no target column given" if target is None else \
            f"target column {target!r} not found"
        raise DataError(f"{path}: {said}; the columns are: {', '.join(header)}")
    rows = [row for row, _ in found[1:]]
    lines = [line for _, line in found[1:]]
    for row, line in found[1:]:
        if len(row) != len(header):
            raise DataError(f"{path}: file line {line} has {len(row)} fields but the header "
                            f"has {len(header)}")
    if not rows:
        raise DataError(f"{path}: no data rows after the header")

    t = header.index(target)
    features = [j for j in range(len(header)) if j != t]
    X = np.empty((len(rows), len(features)), dtype=np.float64)
    raw_target: list[str] = []
    for i, row in enumerate(rows):
        # Check cells left to right so the first problem in the file is the one reported.
        for j, cell in enumerate(row):
            if _is_missing(cell):
                raise DataError(f"{path}: missing value at {_where(i + 1, lines[i], header[j])}"
                                "; fill or drop it first")
        for col, j in enumerate(features):
            try:
                value = float(row[j])
            except ValueError:
                raise DataError(
                    f"{path}: feature column {header[j]!r} is not numeric (value "
                    f"{row[j].strip()!r} in data row {i + 1}, file line {lines[i]}); encode "
                    "it as numbers or drop the column") from None
            if not np.isfinite(value):
                raise DataError(f"{path}: non-finite value {row[j].strip()!r} at "
                                f"{_where(i + 1, lines[i], header[j])}")
            X[i, col] = value
        raw_target.append(row[t].strip())

    y, classes, task = _encode_target(path, target, raw_target, lines, task)
    X_train, X_test, y_train, y_test = split_train_test(str(path), X, y, task, test_fraction, seed)
    return Dataset(name="csv", X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, task=task, classes=classes,
                   feature_names=[header[j] for j in features], image_shape=None,
                   source=str(path.resolve()), fingerprint=fingerprint)


def _encode_target(path, target, raw: list[str], lines: list[int], task: str | None):
    """Turn the target cells into (y, classes, task) following load_csv's rules."""
    try:
        numbers = np.array([float(v) for v in raw], dtype=np.float64)
    except ValueError:
        numbers = None  # at least one cell is text
    if numbers is None:
        if task == "regression":
            bad = next(i for i, v in enumerate(raw) if not is_number(v))
            raise DataError(f"{path}: target column {target!r} holds text (value "
                            f"{raw[bad]!r} at {_where(bad + 1, lines[bad], target)}); "
                            "regression needs numbers")
        classes = sorted(set(raw))
        lookup = {c: k for k, c in enumerate(classes)}
        return np.array([lookup[v] for v in raw], dtype=np.int64), classes, "classification"

    if not np.all(np.isfinite(numbers)):
        bad = int(np.flatnonzero(~np.isfinite(numbers))[0])
        raise DataError(f"{path}: non-finite target {raw[bad]!r} at "
                        f"{_where(bad + 1, lines[bad], target)}")
    distinct = np.unique(numbers)
    integral = all(_is_integer(v) for v in distinct)
    if task is None:
        few = (len(distinct) <= CSV_MAX_CLASSES
               and len(numbers) >= CSV_MIN_ROWS_PER_CLASS * len(distinct))
        task = "classification" if integral and few else "regression"
    if task == "regression":
        return numbers, [], "regression"
    classes = [int(v) if integral else float(v) for v in distinct]
    # np.unique sorted the values, so searchsorted gives each row its class index.
    return np.searchsorted(distinct, numbers).astype(np.int64), classes, "classification"


def is_number(value: str) -> bool:
    """Whether a CSV cell reads as a number."""
    try:
        float(value)
    except ValueError:
        return False
    return True
