"""The dataset registry and :func:`load_dataset`, its one entry point.

Every kind of dataset is a :class:`Source` in :data:`DATASETS`, under its config name:

* ``mnist`` and ``fashion_mnist`` (:mod:`.mnist`) come with their own split (60000 train /
  10000 test images of 28x28 pixels), read from four IDX files, downloaded when absent;
* ``digits``, ``iris``, ``wine``, ``breast_cancer`` and ``diabetes`` (:mod:`.bundled`)
  ship inside scikit-learn; they are split with ``test_fraction``, stratified for
  classification and seeded by ``seed``;
* ``csv`` (:mod:`.tabular`) reads any CSV file with a header row;
* ``npz`` (:mod:`.arrays`) reads a NumPy archive split in advance, flat rows, images or
  sequences;
* ``text`` (:mod:`.text`) cuts a UTF-8 text (a file, or a known corpus) into windows of
  character ids: it comes prepared (a :class:`~scratchnet.data.text.TextData`, split into
  training, validation and test parts, its targets the next characters' ids);
* ``adding`` (:mod:`.sequences`) generates the adding problem, sequences of two features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .. import checks
from ..errors import ConfigError
from ..registry import lookup
from .bundled import TASK_OF, describe_sklearn_dataset, load_sklearn_dataset
from .dataset import TASKS, Dataset, Description, canonical_name
from .download import Progress
from .mnist import describe_idx_dataset, load_idx_dataset
from .arrays import describe_npz, load_npz
from .sequences import AddingOptions, describe_adding, load_adding
from .tabular import describe_csv, load_csv
from .text import TextOptions, load_text


@dataclass(frozen=True)
class Source:
    """One kind of dataset: its loader, how to describe it cheaply (same options), which
    of :func:`load_dataset`'s options both read, and its task (None when the data decides,
    as for a CSV file). ``unit_range``: its values are small by construction (the adding
    problem's values in [0, 1] and its 0/1 markers; a text's ids, which an embedding reads
    and nothing scales), so it may enter unscaled."""

    load: Callable[..., Dataset]  # (text's: a TextData, prepared)
    describe: Callable[..., Description]
    options: tuple[str, ...]
    task: str | None = None
    unit_range: bool = False


def _idx_set(name: str) -> Source:
    return Source(partial(load_idx_dataset, name), partial(describe_idx_dataset, name),
                  ("path", "data_dir", "download", "progress"), "classification")


def _bundled_set(name: str) -> Source:
    return Source(partial(load_sklearn_dataset, name), partial(describe_sklearn_dataset, name),
                  ("test_fraction", "seed"), TASK_OF[name])


def _text_options(*, test_fraction: float, **given) -> TextOptions:
    """The text's options from :func:`_resolve`'s (its test part is ``test_fraction``); a
    ConfigError names the option as the config calls it."""
    try:
        return TextOptions(test=test_fraction,
                           **{k: v for k, v in given.items() if v is not None})
    except ConfigError as e:
        key = ("test_fraction", *e.key[1:]) if e.key[:1] == ("test",) else e.key
        raise ConfigError(str(e).replace("test=", "test_fraction="), key=key) from None


def _load_text(*, data_dir=None, download=True, progress=None, **given):
    return load_text(_text_options(**given), data_dir=data_dir, download=download,
                     progress=progress)


def _describe_text(**given) -> Description:
    return _load_text(**given).description()  # its vocabulary is in the text


def _adding_options(*, seed: int, **given) -> AddingOptions:
    return AddingOptions(seed=seed, **{k: v for k, v in given.items() if v is not None})


#: what a text and the adding problem read of :func:`_resolve`'s options
_TEXT = ("path", "source", "seq_len", "validation", "test_fraction", "stride", "streams",
         "data_dir", "download", "progress")
_ADDING = ("length", "samples", "test_fraction", "seed")

#: config name -> :class:`Source`
DATASETS: dict[str, Source] = {
    "mnist": _idx_set("mnist"),
    "fashion_mnist": _idx_set("fashion_mnist"),
    **{name: _bundled_set(name) for name in TASK_OF},
    "csv": Source(load_csv, describe_csv, ("path", "target", "task", "test_fraction", "seed")),
    "npz": Source(load_npz, describe_npz, ("path", "task")),
    "text": Source(_load_text, _describe_text, _TEXT, "classification", unit_range=True),
    "adding": Source(lambda **o: load_adding(_adding_options(**o)),
                     lambda **o: describe_adding(_adding_options(**o)), _ADDING, "regression",
                     unit_range=True),
}

#: options a config sets, which must apply to the dataset when given
_CONFIG_OPTIONS = ("path", "target", "source", "seq_len", "stride", "streams", "length",
                   "samples")


def load_dataset(name: str, **options) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) with a train/test split; the
    options are :func:`_resolve`'s."""
    source, given = _resolve(name, **options)
    return source.load(**given)


def describe_dataset(name: str, **options) -> Description:
    """What :func:`load_dataset` would give (task, row counts, features, classes),
    without loading it where that is cheap: MNIST and the scikit-learn sets are known by
    heart; a CSV file is read."""
    source, given = _resolve(name, **options)
    return source.describe(**given)


def _keyed(option: str, check, *args):
    """``check(*args)``, its ConfigError naming ``option`` (an argument of the loaders)."""
    try:
        return check(*args)
    except ConfigError as e:
        raise ConfigError(str(e), key=(option,)) from None


def _resolve(name: str, *, path: str | None = None, data_dir: str | None = None,
             target: str | None = None, task: str | None = None,
             test_fraction: float = 0.2, seed: int = 0, download: bool = True,
             progress: Progress | None = None, validation: float | str = 0.1,
             source: str | None = None, seq_len: int | None = None, stride: int | None = None,
             streams: int | None = None, length: int | None = None,
             samples: int | None = None) -> tuple[Source, dict]:
    """The dataset's :class:`Source` and the options it reads, checked.

    path:      for mnist/fashion_mnist a folder holding the four IDX files; for csv the
               CSV file.
    data_dir:  for mnist/fashion_mnist, a folder searched as ``data_dir/<name>/`` and
               ``data_dir/`` (the ``--data-dir`` option); other sets ignore it.
    target:    csv only: the name of the target column.
    task:      csv only: "classification" or "regression", overriding the guess. For the
               other sets it may be given but must match the set's own task.
    test_fraction, seed: how the sets without a fixed split (scikit-learn, csv) are split;
               MNIST-style sets keep their published split and ignore both.
    download:  allow downloading missing MNIST-style files (and a known text corpus) into
               the user cache.
    progress:  ``progress(file, bytes_done, bytes_total)`` while downloading.
    validation, source, seq_len, stride, streams: text only (:class:`~scratchnet.data.text.
               TextOptions`; ``test_fraction`` is its test part); left out (None): its
               defaults.
    length, samples: the adding problem's (:class:`~scratchnet.data.sequences.
               AddingOptions`; ``test_fraction`` and ``seed`` too).
    """
    key = canonical_name(name)
    kind = _keyed("dataset", lookup, DATASETS, key, "dataset")
    if task is not None:
        _keyed("task", lookup, TASKS, task, "task")
    given = {"path": path, "data_dir": data_dir, "target": target, "task": task,
             "test_fraction": _keyed("test_fraction", checks.open_fraction, test_fraction,
                                     "test_fraction"),
             "seed": seed, "download": download, "progress": progress,
             "validation": validation, "source": source, "seq_len": seq_len, "stride": stride,
             "streams": streams, "length": length, "samples": samples}
    for option in _CONFIG_OPTIONS:
        if given[option] is not None and option not in kind.options:
            raise ConfigError(f"{option}={given[option]!r} does not apply to the {key} "
                              "dataset", key=(option,))
    if task is not None and kind.task is not None and task != kind.task:
        raise ConfigError(f"dataset {key} is a {kind.task} set; task={task!r} does not apply",
                          key=("task",))
    return kind, {k: given[k] for k in kind.options}
