"""Predicting with a trained run: reading new inputs as training read its data.

The library part of ``scratchnet predict``. Inputs are read into rows of *raw* features,
in the units of the training data before scaling (MNIST pixels 0..255, scikit-learn
digits 0..16, CSV values as written); the run's saved scaler then applies exactly the
training transform::

    from scratchnet.experiment import load_run
    from scratchnet.predict import read_inputs, predict_rows

    cfg, net, info, _ = load_run("runs/digits_quickstart-...")
    inputs = read_inputs(["new.csv", "seven.png"], info, dataset=cfg.data.dataset)
    rows = predict_rows(net, info, inputs, top_k=3)

Three kinds of input are read:

* ``.csv``: a header row naming the training feature columns (any order; the training
  target column may be present and is ignored), or no header and exactly the training
  number of columns.
* ``.npy``: a numeric array of shape (n, features), (features,), or for image runs
  (n, rows, cols) or (rows, cols). It is loaded with ``allow_pickle=False``: a file
  holding Python objects is refused, since unpickling can run arbitrary code.
* ``.png``/``.jpg``/``.jpeg`` (image runs only, needs Pillow): made to look like the
  training images (see :func:`read_image`).

Wrong shapes and columns raise :class:`~scratchnet.errors.ShapeError` naming what was
expected; unreadable files raise :class:`~scratchnet.errors.DataError`.
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files
from .data import Scaler, saved_target_scaler
from .data.arrays import npy_header
from .data.tabular import CsvFile, is_number
from .errors import ConfigError, DataError, ShapeError
from .extras import require
from .nn import NeuralNetwork

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the most pixels a picture may have; checked from its header, before it is decoded
MAX_IMAGE_PIXELS = 25_000_000
#: the most numbers (rows x features) one ``predict`` reads: 400 MB as float64
MAX_INPUT_VALUES = 50_000_000
#: a picture's ink is what is brighter than this share of its brightest pixel (after the
#: background is taken to 0); the digit is cropped to it
INK_THRESHOLD = 0.1


@dataclass(frozen=True)
class ImageLayout:
    """How a data set's images were made, so a new picture can be made alike.

    pixel_max: the value of full ink in the raw data (255 for MNIST, 16 for digits).
    box: the share of the frame the digit's longer side fills (MNIST fitted each digit
        into 20x20 of its 28x28 pixels; sklearn's digits fill their 8x8 frame).
    center_of_mass: shift the digit so its centre of mass is the frame's centre (MNIST).
    """

    pixel_max: float = 255.0
    box: float = 1.0
    center_of_mass: bool = False


IMAGE_LAYOUTS = {
    "mnist": ImageLayout(255.0, 20 / 28, True),
    "fashion_mnist": ImageLayout(255.0, 1.0, False),
    "digits": ImageLayout(16.0, 1.0, False),
}


@dataclass
class Inputs:
    """Rows to predict: ``X`` (n, features) float64 in the raw training units, and one
    label per row saying where it came from (``file.csv:3``, ``x.npy[0]``, ``7.png``)."""

    X: np.ndarray
    names: list[str]


# -- reading -------------------------------------------------------------------------------
def read_inputs(paths, info: dict, *, dataset: str | None = None,
                ignore_columns=()) -> Inputs:
    """Read every file in ``paths`` into one :class:`Inputs`, checked against ``info``
    (a run's ``data.json``: ``n_features``, ``feature_names``, ``image_shape``).

    ``dataset`` picks the :class:`ImageLayout` for pictures; ``ignore_columns`` are CSV
    columns to skip when present (the training target)."""
    n_features = int(info["n_features"])
    shape = tuple(info["image_shape"]) if info.get("image_shape") else None
    blocks, names = [], []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if not os.path.lexists(path):
            raise DataError(f"input not found: {path}")
        if suffix == ".csv":
            X = read_csv(path, info["feature_names"], ignore_columns)
            names += [f"{path.name}:{i + 1}" for i in range(len(X))]
        elif suffix == ".npy":
            X = read_npy(path, n_features, shape)
            names += [f"{path.name}[{i}]" for i in range(len(X))]
        elif suffix in IMAGE_SUFFIXES:
            if shape is None:
                raise ShapeError(f"{path}: this run was trained on {n_features} tabular "
                                 "features, not images; give a .csv or .npy file")
            layout = IMAGE_LAYOUTS.get(dataset or "", ImageLayout())
            X = read_image(path, shape, layout).reshape(1, -1)
            names.append(path.name)
        else:
            raise DataError(f"{path}: unknown input type {suffix or '(no suffix)'!r}; "
                            f"expected .csv, .npy, {', '.join(IMAGE_SUFFIXES)}")
        blocks.append(X)
        check_input_size("the inputs", len(names), n_features)
    if not blocks:
        raise DataError("no inputs given")
    return Inputs(np.concatenate(blocks).astype(np.float64, copy=False), names)


def _short_list(names: list[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit - 2]) + f", ... ({len(names) - limit + 1} more), {names[-1]}"


def read_csv(path: str | Path, feature_names: list[str], ignore_columns=()) -> np.ndarray:
    """Feature rows of a CSV file, in the training column order, shape (n, features);
    read row by row, never more than :data:`MAX_INPUT_VALUES` numbers."""
    path = Path(path)
    n = len(feature_names)
    with CsvFile(path) as source:
        rows = source.rows()
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path}: empty file")
        cells = [c.strip() for c in first[0]]
        if all(is_number(c) for c in cells):  # no header: positions must match training
            if len(cells) != n:
                raise ShapeError(f"{path}: rows have {len(cells)} columns, expected {n} "
                                 f"feature columns ({_short_list(feature_names)})")
            order, rows = list(range(n)), itertools.chain([first], rows)
        else:
            order = _columns(path, cells, feature_names, ignore_columns)
        most = MAX_INPUT_VALUES // max(n, 1)
        X = np.empty((min(source.lines, most + 1), n), dtype=np.float64)
        count = 0
        for row, line in rows:
            if count == len(X):
                raise DataError(f"{path}: more than {most:,} rows of {n:,} features, more "
                                f"than the {MAX_INPUT_VALUES:,} values scratchnet predicts "
                                "at once; predict them in parts")
            if len(row) != len(cells):
                raise ShapeError(f"{path}: file line {line} has {len(row)} fields, expected "
                                 f"{len(cells)}")
            for k, j in enumerate(order):
                cell = row[j].strip()
                try:
                    X[count, k] = float(cell)
                except ValueError:
                    raise DataError(f"{path}: file line {line}, column {feature_names[k]!r}: "
                                    f"{cell!r} is not a number") from None
            if not np.isfinite(X[count]).all():
                raise DataError(f"{path}: file line {line} holds a missing or infinite value")
            count += 1
    if not count:
        raise DataError(f"{path}: no data rows after the header")
    return X[:count]


def _columns(path: Path, header: list[str], feature_names: list[str], ignore_columns
             ) -> list[int]:
    """Where each training feature is among the columns of ``header``, or a ShapeError."""
    missing = [f for f in feature_names if f not in header]
    unexpected = [h for h in header if h not in feature_names and h not in ignore_columns]
    if missing or unexpected:
        said = []
        if missing:
            said.append(f"missing {_short_list(missing)}")
        if unexpected:
            said.append(f"unexpected {_short_list(unexpected)}")
        raise ShapeError(f"{path}: columns do not match the training features "
                         f"({'; '.join(said)}); expected the {len(feature_names)} columns "
                         f"{_short_list(feature_names)}")
    return [header.index(f) for f in feature_names]


def read_npy(path: str | Path, n_features: int, image_shape: tuple | None = None) -> np.ndarray:
    """A ``.npy`` array as feature rows (n, features); pickled (object) arrays are refused.
    The shape is checked from the file's header, before any data is read, so a header
    that announces a billion rows costs nothing."""
    path = Path(path)
    with files.open_regular(path, files.MAX_NPY_BYTES, "a .npy array saved with numpy.save") as f:
        shape, dtype, _ = npy_header(f, str(path))
        if dtype.hasobject:
            raise DataError(f"{path}: holds Python objects (a pickled array), which are "
                            "refused because loading them can run code; save a numeric "
                            "array with numpy.save")
        if dtype.kind not in "biuf":
            raise DataError(f"{path}: expected a numeric array, got dtype {dtype}")
        rows = _npy_rows(path, shape, n_features, image_shape)
        check_input_size(str(path), rows, n_features)
        f.seek(0)
        try:
            a = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    a = a.reshape(rows, n_features).astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{path}: holds NaN or infinite values")
    return a


def _npy_rows(path: Path, shape: tuple, n_features: int, image_shape: tuple | None) -> int:
    """How many feature rows an array of ``shape`` holds, or a ShapeError."""
    shapes = [f"(n, {n_features})", f"({n_features},)"]
    if image_shape:
        rows, cols = image_shape
        shapes += [f"(n, {rows}, {cols})", f"({rows}, {cols})"]
    if shape == (n_features,) or (image_shape and shape == tuple(image_shape)):
        n = 1
    elif (len(shape) == 2 and shape[1] == n_features) or \
            (image_shape and len(shape) == 3 and shape[1:] == tuple(image_shape)):
        n = shape[0]
    else:
        raise ShapeError(f"{path}: array of shape {shape} does not fit the model; "
                         f"expected {' or '.join(shapes)}")
    if n == 0:
        raise DataError(f"{path}: the array has no rows")
    return n


def check_input_size(what: str, rows: int, n_features: int) -> None:
    """Refuse inputs of more than :data:`MAX_INPUT_VALUES` numbers (before reading them,
    where the rows are known first)."""
    if rows * n_features > MAX_INPUT_VALUES:
        raise DataError(f"{what}: {rows:,} rows of {n_features:,} features, more than the "
                        f"{MAX_INPUT_VALUES:,} values scratchnet predicts at once; predict "
                        "them in parts")


def read_image(path: str | Path, image_shape: tuple, layout: ImageLayout = ImageLayout()
               ) -> np.ndarray:
    """A picture of one digit (or garment) as the training data would hold it, shape
    ``image_shape``, float64 from 0 to ``layout.pixel_max``.

    The steps mirror how MNIST and sklearn's digits were made: grayscale; inverted when
    the background is light (the training images are light ink on black); cropped to the
    ink; the longer side resized to ``layout.box`` of the frame and the result centred
    (by centre of mass for MNIST); values stretched so the brightest pixel is full ink.
    A transparent background counts as white.
    """
    require("images")
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with files.open_regular(path, files.MAX_IMAGE_BYTES, "a PNG or JPEG picture") as f, \
                warnings.catch_warnings():
            # Image.open reads the header only; Pillow warns (then refuses) at a size of its
            # own, far above ours: both become our one-line refusal
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as img:
                _check_pixels(path, img.size)
                gray = _gray(img, Image, ImageOps)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: more than the {MAX_IMAGE_PIXELS:,} pixels scratchnet "
                        f"decodes ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # ValueError: Pillow's refusal of a text chunk that unpacks to megabytes (a bomb)
        raise DataError(f"{path}: not a readable image ({exc})") from None
    rows, cols = (int(s) for s in image_shape)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 255.0 - gray if np.median(border) > 127 else gray
    ink = np.clip(ink - np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])),
                  0, None)  # background to 0 (JPEG noise, grey paper)
    if ink.max() <= 0:
        return np.zeros((rows, cols))
    mask = ink > INK_THRESHOLD * ink.max()
    r = np.flatnonzero(mask.any(axis=1))
    c = np.flatnonzero(mask.any(axis=0))
    ink = ink[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
    h, w = ink.shape
    scale = layout.box * min(rows, cols) / max(h, w)
    new_h, new_w = max(1, min(rows, round(h * scale))), max(1, min(cols, round(w * scale)))
    # Shrinking averages each output pixel's area (how sklearn's digits counted ink in
    # 4x4 blocks); growing a tiny picture interpolates.
    resample = Image.Resampling.BOX if new_h <= h else Image.Resampling.BICUBIC
    small = Image.fromarray((ink * (255.0 / ink.max())).astype(np.uint8)).resize(
        (new_w, new_h), resample)
    out = np.zeros((rows, cols))
    # an odd margin puts the extra pixel above and to the left, as in sklearn's digits
    top, left = (rows - new_h + 1) // 2, (cols - new_w + 1) // 2
    out[top:top + new_h, left:left + new_w] = np.asarray(small, dtype=np.float64)
    if layout.center_of_mass and out.sum() > 0:
        ys, xs = np.indices(out.shape)
        # MNIST's digits have their centre of mass at pixel (14, 14) of 28x28
        dy = int(round(rows / 2 - (ys * out).sum() / out.sum()))
        dx = int(round(cols / 2 - (xs * out).sum() / out.sum()))
        # shift without wrapping ink around the edges
        dy = max(-top, min(dy, rows - top - new_h))
        dx = max(-left, min(dx, cols - left - new_w))
        out = np.roll(out, (dy, dx), axis=(0, 1))
    return out * (layout.pixel_max / out.max())


def _gray(img, Image, ImageOps) -> np.ndarray:
    """A picture as grey levels 0..255, float64; a transparent background counts as white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float64)


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: {width}x{height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} pixels scratchnet decodes; shrink the picture first")


# -- predicting ---------------------------------------------------------------------------
def top_classes(probabilities: np.ndarray, classes: list, k: int) -> list[dict]:
    """The ``k`` most probable ``{"class", "probability"}`` of one row, most probable
    first (what ``--proba K`` shows, in ``predict`` and ``eval`` alike)."""
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [{"class": classes[int(j)], "probability": float(probabilities[j])} for j in best]


def predict_rows(net: NeuralNetwork, info: dict, inputs: Inputs, top_k: int = 0) -> list[dict]:
    """One dict per input row.

    Classification: ``{"input", "prediction"}`` (the class label), plus with ``top_k``
    a ``"top"`` list of the ``top_k`` most probable ``{"class", "probability"}``.
    Regression: ``{"input", "prediction"}`` (a float, or a list for several outputs).
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ConfigError(f"top-k must be a non-negative integer, got {top_k!r}")
    scaler = Scaler.from_dict(info["scaler"])
    X = scaler.transform(inputs.X, dtype=net.dtype)
    raw = net.predict(X.reshape((len(X), *net.input_shape)), raw=True)
    target_scaler = saved_target_scaler(info)
    if target_scaler is not None:  # trained on scaled values: back to the data's units
        raw = target_scaler.inverse_transform(raw)
    rows = []
    if info["task"] == "classification":
        classes = list(info["classes"])
        try:
            probs = net.loss.probabilities(raw)
        except ConfigError:
            probs = None  # e.g. mean squared error on one-hot targets: scores, not probabilities
            if top_k:
                loss = net.loss.name or type(net.loss).__name__
                raise ConfigError("probabilities need a probabilistic loss; this run was "
                                  f"trained with {loss}") from None
        scores = probs if probs is not None else raw
        k = min(top_k, len(classes))
        for name, s in zip(inputs.names, scores, strict=True):
            row = {"input": name, "prediction": classes[int(np.argmax(s))]}
            if k:
                row["top"] = top_classes(s, classes, k)
            rows.append(row)
    else:
        if top_k:
            raise ConfigError("probabilities (--proba) are for classification runs; this "
                              "run is a regression")
        for name, v in zip(inputs.names, raw, strict=True):
            rows.append({"input": name,
                         "prediction": float(v[0]) if len(v) == 1 else [float(x) for x in v]})
    return rows
