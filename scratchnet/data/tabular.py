"""CSV files with a header row: one target column, every other column a numeric feature."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DataError
from .dataset import Dataset, Description, check_memory, split_train_test

# CSV cells that mean "no value" (compared after stripping spaces, case-insensitively).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null"})
# A numeric CSV target is treated as class labels when it holds integers only, at most
# this many distinct values, and at least CSV_MIN_ROWS_PER_CLASS rows per distinct
# value on average (so 0/1/2 codes in a 150-row file are classes, but 12 distinct ages in
# 30 rows are a quantity). ``task=`` overrides the guess.
CSV_MAX_CLASSES = 20
CSV_MIN_ROWS_PER_CLASS = 5


#: the most characters one line of a CSV file may hold (a row of 100,000 numbers takes
#: about 2 MiB): a row is parsed whole, into one Python object per cell
MAX_CSV_LINE = 8 << 20
#: the most distinct values a text target may hold (each is a class)
MAX_CSV_TEXT_CLASSES = 10_000
_BLOCK = 1 << 20


class CsvFile:
    """A CSV file read row by row, never whole: ``with CsvFile(path) as source:``, then
    ``for cells, line in source.rows()`` (its non-blank rows, each with its file line
    number; again from the start at each call). ``source.lines`` counts the file's lines
    before any is parsed (at least its rows: what reading it will cost is known first);
    after the last row, ``source.fingerprint`` is ``{"bytes": size, "sha256": hex
    digest}`` of the very bytes read. A DataError for a file that is not a regular file of
    at most :data:`~scratchnet.files.MAX_CSV_BYTES`, not UTF-8 text, not CSV, or with a
    line longer than :data:`MAX_CSV_LINE` characters."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fingerprint: dict | None = None

    def __enter__(self) -> "CsvFile":
        self._file = files.open_regular(self.path, files.MAX_CSV_BYTES, "a CSV file")
        newlines = returns = 0
        for block in iter(lambda: self._file.read(_BLOCK), b""):
            newlines += block.count(b"\n")
            returns += block.count(b"\r") - block.count(b"\r\n")  # old Macs end lines so
        self.lines = newlines + returns + 1
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def rows(self):
        self._file.seek(0)
        counted = _Counted(self._file, self.path)
        text = io.TextIOWrapper(io.BufferedReader(counted, _BLOCK), encoding="utf-8-sig",
                                newline="")
        reader = csv.reader(self._lines(text))
        try:
            for row in reader:
                if row:
                    yield row, reader.line_num
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text ({exc})") from None
        except csv.Error as exc:
            raise DataError(f"{self.path}: malformed CSV ({exc})") from None
        self.fingerprint = {"bytes": counted.size, "sha256": counted.digest.hexdigest()}

    def _lines(self, text: io.TextIOWrapper):
        number = 0
        while line := text.readline(MAX_CSV_LINE + 1):
            number += 1
            if len(line) > MAX_CSV_LINE:
                raise DataError(f"{self.path}: file line {number} is longer than the "
                                f"{MAX_CSV_LINE:,} characters scratchnet reads in one line")
            yield line


class _Counted(io.RawIOBase):
    """The bytes of a file as they are read, hashed and counted (and cut off at the cap,
    should the file grow while it is read)."""

    def __init__(self, f, path: Path):
        self.f, self.path, self.size, self.digest = f, path, 0, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        got = self.f.readinto(buffer)
        self.digest.update(memoryview(buffer)[:got])
        self.size += got
        if self.size > files.MAX_CSV_BYTES:
            raise DataError(f"{self.path}: holds more than the "
                            f"{files.size_text(files.MAX_CSV_BYTES)} that scratchnet reads "
                            "for a CSV file")
        return got


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
    with CsvFile(path) as source:
        # a target that turns out to hold text after numbers: read again, as text
        table = _read_table(source, target, task, text=False) or \
            _read_table(source, target, task, text=True)
    header, features, X, y, labels = table
    y, classes, task = _encode_target(y, labels, task)
    X_train, X_test, y_train, y_test = split_train_test(str(path), X, y, task, test_fraction, seed)
    return Dataset(name="csv", X_train=X_train, y_train=y_train, X_test=X_test,
                   y_test=y_test, task=task, classes=classes,
                   feature_names=[header[j] for j in features], image_shape=None,
                   source=str(path.resolve()), fingerprint=source.fingerprint)


def _read_table(source: CsvFile, target: str | None, task: str | None, text: bool):
    """``(header, feature columns, X, targets, labels)`` from ``source``: X (n, features)
    float64; the targets float64 (n,), or with ``text`` int64 codes into ``labels`` (a
    dict of each distinct text to its code). None when a numeric reading meets a text
    target (a classification: the caller reads it again as text)."""
    path = source.path
    rows = source.rows()
    first = next(rows, None)
    header = [h.strip() for h in first[0]] if first else []
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
    t = header.index(target)
    features = [j for j in range(len(header)) if j != t]
    most = source.lines - 1
    # the numbers, then their split into train and test (a copy): known before parsing
    check_memory(path, f"its up to {most:,} rows of {len(header):,} numbers",
                 2 * most * len(header) * 8)
    X = np.empty((most, len(features)))
    y = np.empty(most, dtype=np.int64 if text else np.float64)
    labels: dict[str, int] = {}
    n = 0
    for row, line in rows:
        if len(row) != len(header):
            raise DataError(f"{path}: file line {line} has {len(row)} fields but the header "
                            f"has {len(header)}")
        if n == most:
            raise DataError(f"{path}: changed while it was read")
        _read_features(path, header, features, row, X[n], n + 1, line)
        cell = row[t].strip()
        if text:
            y[n] = labels.setdefault(cell, len(labels))
            if len(labels) > MAX_CSV_TEXT_CLASSES:
                raise DataError(f"{path}: target column {target!r} holds more than "
                                f"{MAX_CSV_TEXT_CLASSES:,} distinct texts (one class each); "
                                "is it the column to predict?")
        elif not is_number(cell):
            if task == "regression":
                raise DataError(f"{path}: target column {target!r} holds text (value "
                                f"{cell!r} at {_where(n + 1, line, target)}); regression "
                                "needs numbers")
            return None
        else:
            y[n] = float(cell)
            if not np.isfinite(y[n]):
                raise DataError(f"{path}: non-finite target {cell!r} at "
                                f"{_where(n + 1, line, target)}")
        n += 1
    if not n:
        raise DataError(f"{path}: no data rows after the header")
    return header, features, X[:n], y[:n], labels if text else None


def _read_features(path: Path, header: list[str], features: list[int], row: list[str],
                   out: np.ndarray, number: int, line: int) -> None:
    """The feature cells of ``row`` (data row ``number``, file line ``line``) as numbers
    into ``out``; the first problem, left to right, is the one reported."""
    for j, cell in enumerate(row):
        if _is_missing(cell):
            raise DataError(f"{path}: missing value at {_where(number, line, header[j])}; "
                            "fill or drop it first")
    for col, j in enumerate(features):
        try:
            value = float(row[j])
        except ValueError:
            raise DataError(
                f"{path}: feature column {header[j]!r} is not numeric (value "
                f"{row[j].strip()!r} in data row {number}, file line {line}); encode it as "
                "numbers or drop the column") from None
        if not math.isfinite(value):
            raise DataError(f"{path}: non-finite value {row[j].strip()!r} at "
                            f"{_where(number, line, header[j])}")
        out[col] = value


def _encode_target(y: np.ndarray, labels: dict[str, int] | None, task: str | None):
    """Turn the target column into (y, classes, task) following load_csv's rules: ``y``
    the numbers, or codes into ``labels`` for text."""
    if labels is not None:
        classes = sorted(labels)
        position = {label: k for k, label in enumerate(classes)}
        # (labels are in the order of their codes: first seen, first)
        rank = np.array([position[label] for label in labels], dtype=np.int64)
        return rank[y], classes, "classification"
    distinct = np.unique(y)
    integral = all(_is_integer(v) for v in distinct)
    if task is None:
        few = (len(distinct) <= CSV_MAX_CLASSES
               and len(y) >= CSV_MIN_ROWS_PER_CLASS * len(distinct))
        task = "classification" if integral and few else "regression"
    if task == "regression":
        return y, [], "regression"
    classes = [int(v) if integral else float(v) for v in distinct]
    # np.unique sorted the values, so searchsorted gives each row its class index.
    return np.searchsorted(distinct, y).astype(np.int64), classes, "classification"


def is_number(value: str) -> bool:
    """Whether a CSV cell reads as a number."""
    try:
        float(value)
    except ValueError:
        return False
    return True
