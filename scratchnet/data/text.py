"""Character-level text, the data of a character model (the book's chapter 6).

A text is any UTF-8 file (``path``), or a known corpus fetched on first use (``source``:
``dlfs``, the book's, found or downloaded and checked like MNIST: :mod:`.corpora`). It
is cut into three contiguous parts, ``[training | validation | test]``, the last two
taken from the end as fractions of its characters, and each part into windows of
``seq_len`` characters that never reach into another part. The input of a window is its
characters' ids, (seq_len,); its target is the id of the next character at every step,
(seq_len,), which :class:`~scratchnet.nn.SoftmaxCrossEntropy` takes as it is (a one-hot
target would hold a vocabulary's worth of numbers per step).

The vocabulary is the training part's distinct characters, in code point order, and one
id more, :attr:`Vocabulary.unknown`, for every character the training part lacks (one
the validation or test part holds, or a generation's prefix). It is saved in the run's
data description (:meth:`TextData.info`), so a run reads text as it was trained.

Windows, for training:

* independent (the default): starting every ``stride`` characters (``seq_len``: end to
  end; smaller: more, overlapping windows per epoch), each from a zero state;
* ``streams``: the training part cut into that many streams of equal length, each read
  window after window, so that row r of batch b+1 continues row r of batch b. The rows
  are ordered batch by batch: with a batch size of ``streams`` and no shuffling, a
  stateful layer carries each stream's state along it (truncated back-propagation
  through time).

Validation and test windows are always independent and end to end: evaluation starts
each from zeros.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from .. import files
from ..errors import ConfigError, DataError
from ..options import Doc, Ge, Lt, Named, PositiveInt, check_fields
from .corpora import CORPORA, find_corpus
from .dataset import Description
from .download import Progress
from .scaling import Scaler
from .sequences import SeqLen, check_sequence_values

#: the most distinct characters a vocabulary may hold (each is an output of the network)
MAX_VOCAB = 4096
#: what :meth:`Vocabulary.decode` writes for the unknown id
UNKNOWN_CHAR = "\ufffd"
PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class Vocabulary:
    """Characters and their ids: ``chars[i]`` has id i (code point order); the id
    ``len(chars)`` (:attr:`unknown`) stands for every other character."""

    chars: tuple[str, ...]

    @classmethod
    def of(cls, text: str, where: str = "the text") -> "Vocabulary":
        """The distinct characters of ``text``; a DataError beyond :data:`MAX_VOCAB`."""
        chars = np.unique(_code_points(text))
        if len(chars) > MAX_VOCAB:
            raise DataError(f"{where} holds {len(chars):,} distinct characters, more than the "
                            f"{MAX_VOCAB:,} a vocabulary may hold (data.text.MAX_VOCAB)")
        return cls(tuple(chr(c) for c in chars))

    @property
    def size(self) -> int:
        """The number of ids, the unknown one included: the network's output width."""
        return len(self.chars) + 1

    @property
    def unknown(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters, (len(text),) int32."""
        points = _code_points(text)
        known = np.fromiter(map(ord, self.chars), np.uint32, len(self.chars))
        ids = np.searchsorted(known, points)
        found = ids < len(known)
        found[found] &= known[ids[found]] == points[found]
        return np.where(found, ids, self.unknown).astype(np.int32)

    def decode(self, ids) -> str:
        """The characters of ``ids``; the unknown id as :data:`UNKNOWN_CHAR`."""
        table = self.chars + (UNKNOWN_CHAR,)
        return "".join(table[i] for i in np.asarray(ids, dtype=np.intp).ravel())

    def to_dict(self) -> dict:
        """JSON-ready: ``{"chars": [...], "unknown": id}`` (``unknown`` for a reader)."""
        return {"chars": list(self.chars), "unknown": self.unknown}

    @classmethod
    def from_dict(cls, saved) -> "Vocabulary":
        chars = saved.get("chars") if isinstance(saved, dict) else None
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1
                                                  for c in chars) \
                or sorted(set(chars)) != chars or len(chars) > MAX_VOCAB:
            raise DataError(f"not a saved vocabulary: expected {{'chars': [distinct single "
                            f"characters in code point order]}}, got {str(saved)[:80]}")
        return cls(tuple(chars))


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text``, (len(text),) uint32, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


@dataclass(frozen=True)
class TextOptions:
    """What the text data set is made from and how it is cut (module docstring)."""

    path: Annotated[str | None, Doc("a UTF-8 text file")] = None
    source: Annotated[Annotated[str, Named(tuple(CORPORA), "text source")] | None, Doc(
        "a known corpus, fetched on first use: dlfs (the book's)")] = None
    seq_len: Annotated[SeqLen, Doc("characters per window: the steps of a sequence")] = 50
    validation: Annotated[float, Ge(0), Lt(1), Doc(
        "share of the characters, before the test part, that validates")] = 0.1
    test: Annotated[float, Ge(0), Lt(1), Doc(
        "share of the characters, at the end, held out for the test")] = 0.1
    stride: Annotated[PositiveInt | None, Doc(
        "characters between the starts of training windows (default seq_len)")] = None
    streams: Annotated[PositiveInt | None, Doc(
        "read the training part as this many consecutive streams, for stateful "
        "training with this batch size and no shuffling")] = None

    def __post_init__(self):
        check_fields(self)
        if self.path is None and self.source is None:
            raise ConfigError("text needs a file (path) or a known corpus (source)",
                              key=("path",))
        if self.path is not None and self.source is not None:
            raise ConfigError(f"path={self.path!r} and source={self.source!r} both name the "
                              "text; give one", key=("source",))
        if self.validation + self.test >= 1:
            raise ConfigError(f"validation={self.validation} and test={self.test} leave no "
                              "characters to train on; expected a sum below 1",
                              key=("validation",))
        if self.stride is not None and self.streams is not None:
            raise ConfigError("stride spaces independent windows; streams lay them end to "
                              "end: give one of them", key=("stride",))


@dataclass(repr=False)
class TextData:
    """A text cut into windows, ready to train on: ``X_*`` the windows' ids and ``Y_*``
    their next characters' ids, each (windows, seq_len) int32, for the parts ``train``,
    ``val`` and ``test`` (no windows: (0, seq_len))."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    vocabulary: Vocabulary
    options: TextOptions
    #: the file read, resolved; its ``{"bytes", "sha256"}``; characters per part
    source: str
    fingerprint: dict
    characters: dict

    task = "classification"

    @property
    def seq_len(self) -> int:
        return self.options.seq_len

    @property
    def classes(self) -> list[str]:
        """Each id's character, the unknown id as :data:`UNKNOWN_CHAR`."""
        return [*self.vocabulary.chars, UNKNOWN_CHAR]

    def description(self) -> Description:
        """Windows as rows: seq_len ids in, a class of the vocabulary at every step out."""
        return Description("text", "classification", len(self.X_train), len(self.X_test),
                           self.seq_len, self.vocabulary.size, n_val=len(self.X_val),
                           targets="ids")

    def info(self) -> dict:
        """The run's data description (``data.json``): the keys every run writes, for a
        network taking (seq_len,) ids and giving (seq_len, vocabulary) scores, and
        ``kind: text`` with the vocabulary and how the text was cut."""
        o = self.options
        return {"kind": "text", "task": self.task, "classes": self.classes,
                "feature_names": [f"t{i}" for i in range(o.seq_len)], "image_shape": None,
                "n_features": o.seq_len, "n_outputs": self.vocabulary.size,
                "input_shape": [o.seq_len], "targets": "ids", "source": self.source,
                "source_file": self.fingerprint,
                "scaler": Scaler("none").fit(np.zeros((1, o.seq_len))).to_dict(),
                "target_scaler": None, "vocabulary": self.vocabulary.to_dict(),
                "seq_len": o.seq_len, "stride": o.stride, "streams": o.streams,
                "characters": dict(self.characters),
                "windows": {"train": len(self.X_train), "validation": len(self.X_val),
                            "test": len(self.X_test)}}

    def __repr__(self) -> str:
        return (f"TextData({self.source!r}, vocabulary={self.vocabulary.size}, seq_len="
                f"{self.seq_len}, windows={len(self.X_train)}/{len(self.X_val)}/"
                f"{len(self.X_test)})")


def read_text(path: str | Path) -> tuple[str, dict]:
    """The text of the file ``path`` and its ``{"bytes", "sha256"}``; a DataError (one
    line naming the file) for anything that is not UTF-8 text of at most
    :data:`~scratchnet.files.MAX_TEXT_BYTES`: a binary file, an empty one."""
    what = "a UTF-8 text file"
    text = files.read_text(path, files.MAX_TEXT_BYTES, what)
    data = text.encode("utf-8")  # the bytes read: UTF-8 decodes and encodes one to one
    fingerprint = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if "\x00" in text:
        raise DataError(f"{path}: character {text.index(chr(0)) + 1} is a NUL byte: a binary "
                        f"file, not {what}")
    text = text.removeprefix("\ufeff")  # a byte order mark is no character of the text
    if not text:
        raise DataError(f"{path}: empty; expected {what}")
    return text, fingerprint


def split_text(text: str, validation: float, test: float) -> dict[str, str]:
    """The three contiguous parts of ``text``, by :data:`PARTS`: validation and test are
    the given shares of its characters (rounded), taken from the end."""
    n = len(text)
    n_test, n_val = round(test * n), round(validation * n)
    n_train = n - n_val - n_test
    return {"train": text[:n_train], "validation": text[n_train:n - n_test],
            "test": text[n - n_test:]}


def window_starts(n: int, seq_len: int, stride: int | None = None,
                  streams: int | None = None) -> np.ndarray:
    """Where the windows of a part of ``n`` ids start, in the order of the rows: every
    ``stride`` ids (default ``seq_len``), or ``streams`` streams read window by window,
    row ``b * streams + r`` being window b of stream r. A window reads seq_len + 1 ids
    (its inputs and, one further, its targets)."""
    if streams is None:
        return np.arange(0, max(n - seq_len, 0), stride or seq_len)
    length = (n - 1) // streams  # the ids each stream reads, its last target excluded
    per_stream = length // seq_len
    return (np.arange(per_stream)[:, None] * seq_len
            + np.arange(streams)[None, :] * length).ravel()


def windows(ids: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``ids[s:s+seq_len]`` and targets ``ids[s+1:s+seq_len+1]`` for each start s,
    (len(starts), seq_len) each."""
    block = ids[starts[:, None] + np.arange(seq_len + 1)] if len(starts) \
        else np.empty((0, seq_len + 1), ids.dtype)
    return np.ascontiguousarray(block[:, :-1]), np.ascontiguousarray(block[:, 1:])


def _too_short(where: str, part: str, length: int, total: int, need: int, why: str,
               key: str = "seq_len") -> ConfigError:
    """A window longer than a part of the text: the option ``key`` asks too much of it (a
    ConfigError naming it, so an experiment file's line is shown)."""
    return ConfigError(f"{where}: the {part} part holds {length:,} of the {total:,} "
                       f"characters; {why} needs at least {need:,}", key=(key,))


def load_text(options: TextOptions, *, data_dir: str | None = None, download: bool = True,
              progress: Progress | None = None) -> TextData:
    """The text ``options`` name, cut into windows (module docstring). ``data_dir`` and
    ``download``/``progress`` are for a known corpus: where to look first, and whether
    (and how audibly) to fetch it when it is nowhere."""
    o = options
    path = Path(o.path).expanduser() if o.path is not None \
        else find_corpus(o.source, data_dir=data_dir, download=download, progress=progress)
    text, fingerprint = read_text(path)
    parts = split_text(text, o.validation, o.test)
    total, T = len(text), o.seq_len
    shares = {"train": 1.0, "validation": o.validation, "test": o.test}
    if total < 2:  # no window of any length: the file, not an option, is at fault
        raise DataError(f"{path}: holds one character; a text needs at least two (a "
                        "character and the next)")
    for part, share in shares.items():
        if share > 0 and len(parts[part]) < T + 1:
            raise _too_short(path, part, len(parts[part]), total, T + 1,
                             f"a window of seq_len={T} and its next character")
    if o.streams is not None and len(parts["train"]) < o.streams * T + 1:
        raise _too_short(path, "train", len(parts["train"]), total, o.streams * T + 1,
                         f"streams={o.streams} of a window of seq_len={T} each", "streams")
    vocabulary = Vocabulary.of(parts["train"], f"{path}: the training part")
    arrays = {}
    for part in PARTS:
        ids = vocabulary.encode(parts[part])
        starts = window_starts(len(ids), T, o.stride, o.streams) if part == "train" \
            else window_starts(len(ids), T)
        check_sequence_values(len(starts) * T, f"the {len(starts):,} {part} windows of "
                              f"{T} characters", "stride")
        arrays[part] = windows(ids, starts, T)
    (X_train, Y_train), (X_val, Y_val), (X_test, Y_test) = arrays.values()
    return TextData(X_train, Y_train, X_val, Y_val, X_test, Y_test, vocabulary, o,
                    str(path.resolve()), fingerprint,
                    {part: len(parts[part]) for part in PARTS})
