"""Data for sequence models: character-level text (windows, parts, vocabulary, the book's
corpus found or fetched and checked, hostile files), class ids as targets, the adding
problem, samples read as sequences (images row by row, 3-D .npz arrays) and the text
metrics.

Every file is real (written into tmp_path, or the book's corpus from
$SCRATCHNET_DATA_DIR/text/, skipped without it); downloads come from a local HTTP server.
Expected windows are cut from the text with Python's own slicing, independently of the
loader's index arithmetic.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import files
from scratchnet.data import (AddingOptions, TextOptions, Vocabulary, describe_adding,
                             load_adding, load_dataset, load_text, prepare, sequence_shape_of)
from scratchnet.data import corpora, text as text_data
from scratchnet.data.sequences import MAX_SEQ_LEN, MAX_SEQUENCE_VALUES, adding_problem
from scratchnet.errors import ConfigError, DataError, ShapeError
from scratchnet.experiment import as_samples
from scratchnet.nn.gradcheck import check_loss
from scratchnet.nn.metrics import text_scores

_ENV = os.environ.get("SCRATCHNET_DATA_DIR")
BOOK_TEXT = Path(_ENV) / "text" / "dlfs_input.txt" if _ENV else None
needs_book = pytest.mark.skipif(BOOK_TEXT is None or not BOOK_TEXT.is_file(),
                                reason="needs $SCRATCHNET_DATA_DIR/text/dlfs_input.txt")
SAMPLE = "It was the best of times, it was the worst of times, it was the age of wisdom.\n"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No user cache, no data folder from the environment, no real download."""
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    monkeypatch.delenv("SCRATCHNET_MIRRORS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setitem(corpora.CORPORA, "dlfs", _corpus(b"", urls=("http://127.0.0.1:9/x",)))
    return tmp_path


def _corpus(data: bytes, urls=()) -> corpora.Corpus:
    import hashlib

    check = corpora.FileCheck(len(data), sha256=hashlib.sha256(data).hexdigest())
    return corpora.Corpus("dlfs_input.txt", check, tuple(urls), "a stand-in")


def _text_file(folder: Path, text: str, name: str = "t.txt") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _windows(part: str, seq_len: int, stride: int) -> list[tuple[str, str]]:
    """Independently: every window of ``part`` as (inputs, targets) strings."""
    return [(part[s:s + seq_len], part[s + 1:s + seq_len + 1])
            for s in range(0, len(part) - seq_len, stride)]


def _decoded(data, part: str) -> list[tuple[str, str]]:
    X, Y = {"train": (data.X_train, data.Y_train), "validation": (data.X_val, data.Y_val),
            "test": (data.X_test, data.Y_test)}[part]
    v = data.vocabulary
    return [(v.decode(x), v.decode(y)) for x, y in zip(X, Y)]


# -- text: parts, windows, vocabulary -----------------------------------------------------------
@pytest.mark.parametrize("seq_len, stride", [(7, None), (7, 3), (1, 1), (20, 50)])
def test_windows_are_the_texts_own_slices_and_never_cross_a_part(tmp_path, seq_len, stride):
    text = SAMPLE * 4
    data = load_text(TextOptions(path=str(_text_file(tmp_path, text)), seq_len=seq_len,
                                 validation=0.2, test=0.15, stride=stride))
    n = len(text)
    n_test, n_val = round(0.15 * n), round(0.2 * n)
    parts = {"train": text[:n - n_val - n_test], "validation": text[n - n_val - n_test:n - n_test],
             "test": text[n - n_test:]}
    assert data.characters == {k: len(v) for k, v in parts.items()}
    for part, chars in parts.items():
        step = stride or seq_len if part == "train" else seq_len
        assert _decoded(data, part) == _windows(chars, seq_len, step), part
    assert data.X_train.dtype == data.Y_train.dtype == np.int32
    assert data.X_train.shape == data.Y_train.shape == (len(data.X_train), seq_len)


def test_the_vocabulary_is_the_training_parts_and_the_rest_is_unknown(tmp_path):
    text = "abcab" * 20 + "abcXYZ" * 4  # X, Y, Z only in the held-out parts
    data = load_text(TextOptions(path=str(_text_file(tmp_path, text)), seq_len=4,
                                 validation=0.1, test=0.1))
    v = data.vocabulary
    assert v.chars == ("a", "b", "c") and v.size == 4 and v.unknown == 3
    held = np.concatenate([data.Y_val.ravel(), data.Y_test.ravel()])
    assert v.unknown in held and v.unknown not in data.X_train
    assert v.decode([0, 3, 2]) == "a\ufffdc"
    assert data.classes == ["a", "b", "c", "\ufffd"]
    assert Vocabulary.from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_a_vocabulary_is_in_code_point_order_and_round_trips_any_text():
    text = "zébra\n\tÆ😀 a"
    v = Vocabulary.of(text)
    assert list(v.chars) == sorted(set(text))
    assert v.decode(v.encode(text)) == text
    assert v.encode("😀z") .tolist() == [v.chars.index("😀"), v.chars.index("z")]


@pytest.mark.parametrize("saved", [{"chars": ["b", "a"]}, {"chars": ["ab"]}, {"chars": "ab"},
                                   {}, ["a"], {"chars": ["a", "a"]}])
def test_a_damaged_saved_vocabulary_is_one_line(saved):
    with pytest.raises(DataError, match="not a saved vocabulary") as e:
        Vocabulary.from_dict(saved)
    assert "\n" not in str(e.value)


def test_streams_continue_row_by_row_from_batch_to_batch(tmp_path):
    text = "".join(chr(ord("a") + i % 26) + str(i % 7) for i in range(300))
    S, T = 4, 6
    data = load_text(TextOptions(path=str(_text_file(tmp_path, text)), seq_len=T, streams=S,
                                 validation=0.1, test=0.1))
    train = text[:data.characters["train"]]
    length = (len(train) - 1) // S
    per_stream = length // T
    assert len(data.X_train) == per_stream * S
    v = data.vocabulary
    for r in range(S):
        rows = range(r, len(data.X_train), S)  # row r of every batch of S rows
        assert "".join(v.decode(data.X_train[i]) for i in rows) == \
            train[r * length:r * length + per_stream * T]
        assert "".join(v.decode(data.Y_train[i]) for i in rows) == \
            train[r * length + 1:r * length + per_stream * T + 1]


def test_no_validation_or_test_part(tmp_path):
    data = load_text(TextOptions(path=str(_text_file(tmp_path, SAMPLE)), seq_len=10,
                                 validation=0, test=0))
    assert data.characters == {"train": len(SAMPLE), "validation": 0, "test": 0}
    assert data.X_val.shape == data.X_test.shape == (0, 10)


def test_the_data_description_is_json_and_states_the_text(tmp_path):
    path = _text_file(tmp_path, SAMPLE * 3)
    data = load_text(TextOptions(path=str(path), seq_len=8))
    info = json.loads(json.dumps(data.info()))
    assert info["kind"] == "text" and info["targets"] == "ids"
    assert info["n_outputs"] == len(info["classes"]) == data.vocabulary.size
    assert info["n_features"] == len(info["feature_names"]) == 8 == info["input_shape"][0]
    assert info["source_file"]["bytes"] == path.stat().st_size
    assert Vocabulary.from_dict(info["vocabulary"]) == data.vocabulary
    assert info["windows"]["train"] == len(data.X_train)
    described = data.description()
    assert (described.n_train, described.n_features, described.n_classes) == \
        (len(data.X_train), 8, data.vocabulary.size)


@needs_book
def test_the_books_corpus_from_the_data_folder():
    data = load_text(TextOptions(source="dlfs"))
    assert data.fingerprint == {"bytes": 99_993, "sha256": corpora.CORPORA["dlfs"].check.sha256}
    assert sum(data.characters.values()) == 99_993  # plain ASCII: a character a byte
    assert data.vocabulary.size == 62 + 1
    text = BOOK_TEXT.read_text()
    assert _decoded(data, "train")[:3] == _windows(text, 50, 50)[:3]
    assert data.X_train.shape == ((data.characters["train"] - 1) // 50, 50)


# -- the book's corpus: found, fetched, checked ------------------------------------------------
def test_a_corpus_is_downloaded_once_into_the_cache_and_checked(isolated, mirror_server,
                                                                 monkeypatch):
    root, url = mirror_server
    body = (SAMPLE * 3).encode()
    (root / "bad.txt").write_bytes(body[:-1] + b"!")
    (root / "good.txt").write_bytes(body)
    monkeypatch.setitem(corpora.CORPORA, "dlfs", _corpus(body, ["http://127.0.0.1:9/x",
                                                                url + "bad.txt",
                                                                url + "good.txt"]))
    data = load_text(TextOptions(source="dlfs", seq_len=5))
    cached = isolated / "xdg" / "scratchnet" / "text" / "dlfs_input.txt"
    assert data.source == str(cached) and cached.read_bytes() == body
    assert sorted(p.name for p in cached.parent.iterdir()) == ["dlfs_input.txt"]
    (root / "good.txt").unlink()  # found in the cache from now on
    assert load_text(TextOptions(source="dlfs", seq_len=5)).fingerprint == data.fingerprint


def test_a_corpus_is_looked_for_under_text_in_the_data_folder(isolated, monkeypatch):
    body = (SAMPLE * 3).encode()
    folder = isolated / "data" / "text"
    folder.mkdir(parents=True)
    (folder / "dlfs_input.txt").write_bytes(body)
    monkeypatch.setitem(corpora.CORPORA, "dlfs", _corpus(body))
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(isolated / "data"))
    assert load_text(TextOptions(source="dlfs", seq_len=5)).source == \
        str(folder / "dlfs_input.txt")
    assert load_text(TextOptions(source="dlfs", seq_len=5), data_dir=str(isolated / "data"),
                     download=False).source == str(folder / "dlfs_input.txt")


def test_a_damaged_copy_is_refused_not_read(isolated, monkeypatch):
    folder = isolated / "data" / "text"
    folder.mkdir(parents=True)
    (folder / "dlfs_input.txt").write_bytes(b"not the book")
    monkeypatch.setitem(corpora.CORPORA, "dlfs", _corpus((SAMPLE * 3).encode()))
    with pytest.raises(DataError, match="12 bytes of SHA-256 .*; the file is damaged or not "
                                        "the published one") as e:
        load_text(TextOptions(source="dlfs"), data_dir=str(isolated / "data"))
    assert str(e.value).startswith(str(folder / "dlfs_input.txt"))


def test_offline_the_error_says_where_it_looked_and_where_to_put_the_file(isolated):
    with pytest.raises(DataError) as e:
        load_text(TextOptions(source="dlfs"))
    message = str(e.value)
    assert "\n" not in message and "http://127.0.0.1:9/x" in message
    assert message.startswith("dlfs text (dlfs_input.txt) not found in ")
    assert str(isolated / "xdg" / "scratchnet" / "text") in message
    assert list((isolated / "xdg" / "scratchnet" / "text").iterdir()) == []
    with pytest.raises(DataError, match="Downloading was disabled"):
        load_text(TextOptions(source="dlfs"), download=False)


# -- text: what is refused ----------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not UTF-8 text \(byte 0 is 0x89\)"),
    (b"abc\xff\xfedef", r"not UTF-8 text \(byte 3 is 0xff\)"),
    (b"text\x00\x00\x00\x01 and zeros", "character 5 is a NUL byte: a binary file"),
    (b"", "empty; expected a UTF-8 text file"),
    (b"\xef\xbb\xbf", "empty; expected a UTF-8 text file"),  # a byte order mark alone
    (b"x", "holds one character; a text needs at least two"),
], ids=["png", "latin-1", "nul", "empty", "bom-only", "one-character"])
def test_a_file_that_is_no_usable_text_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_text(TextOptions(path=str(path)))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_a_window_longer_than_the_text_is_the_option_at_fault(tmp_path):
    """The text is fine; seq_len asks too much of it: a ConfigError naming seq_len, which
    an experiment file's check shows at its line."""
    path = tmp_path / "t.txt"
    path.write_bytes(b"short text" * 5)
    with pytest.raises(ConfigError, match="the train part holds 40 of the 50 characters; a "
                       "window of seq_len=50 and its next character needs at least 51") as e:
        load_text(TextOptions(path=str(path)))
    assert str(e.value).startswith(str(path)) and e.value.key == ("seq_len",)


def test_a_held_out_part_too_short_for_one_window_is_refused(tmp_path):
    path = _text_file(tmp_path, SAMPLE * 2)
    with pytest.raises(ConfigError, match="the test part holds 16 of the 158 characters; a "
                                          "window of seq_len=20") as e:
        load_text(TextOptions(path=str(path), seq_len=20, validation=0.5, test=0.1))
    assert e.value.key == ("seq_len",)


def test_more_streams_than_the_text_holds(tmp_path):
    path = _text_file(tmp_path, SAMPLE * 2)
    with pytest.raises(ConfigError, match=r"streams=8 of a window of seq_len=20 each needs at "
                                          r"least 161") as e:
        load_text(TextOptions(path=str(path), seq_len=20, streams=8, validation=0, test=0))
    assert e.value.key == ("streams",)


def test_a_vocabulary_beyond_its_cap(tmp_path):
    chars = "".join(chr(0x4E00 + i) for i in range(text_data.MAX_VOCAB + 1))
    path = _text_file(tmp_path, chars * 2)
    with pytest.raises(DataError, match=f"holds {text_data.MAX_VOCAB + 1:,} distinct characters, "
                                        f"more than the {text_data.MAX_VOCAB:,}"):
        load_text(TextOptions(path=str(path), validation=0, test=0))


def test_windows_beyond_the_cap_are_refused_before_they_are_made(tmp_path):
    T = MAX_SEQ_LEN
    path = _text_file(tmp_path, "ab" * T)  # stride 1: T windows of T ids
    assert T * T > MAX_SEQUENCE_VALUES
    with pytest.raises(ConfigError, match="the 10,000 train windows of 10000 characters make "
                                          "100,000,000 numbers, more than the 50,000,000") as e:
        load_text(TextOptions(path=str(path), seq_len=T, stride=1, validation=0, test=0))
    assert e.value.key == ("stride",)


def test_a_file_beyond_the_size_cap_is_refused_unread(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:  # sparse: takes no disk
        f.truncate(files.MAX_TEXT_BYTES + 1)
    with pytest.raises(DataError, match="more than the 32 MiB that scratchnet reads for a UTF-8 "
                                        "text file"):
        load_text(TextOptions(path=str(path)))


def test_a_folder_or_a_missing_file(tmp_path):
    for path, message in ((tmp_path, "is a folder, not a regular file"),
                          (tmp_path / "none.txt", "no such file")):
        with pytest.raises(DataError, match=message):
            load_text(TextOptions(path=str(path)))


@pytest.mark.parametrize("options, key, message", [
    ({}, "path", "text needs a file (path) or a known corpus (source)"),
    ({"path": "a", "source": "dlfs"}, "source", "both name the text; give one"),
    ({"source": "gutenberg"}, "source", "unknown text source 'gutenberg'; expected one of: dlfs"),
    ({"path": "a", "seq_len": 0}, "seq_len", "seq_len must be an integer in [1, 10000], got 0"),
    ({"path": "a", "seq_len": MAX_SEQ_LEN + 1}, "seq_len", "got 10001"),
    ({"path": "a", "validation": 0.6, "test": 0.4}, "validation", "leave no characters"),
    ({"path": "a", "test": 1.5}, "test", "test must be a number in [0, 1), got 1.5"),
    ({"path": "a", "stride": 0}, "stride", "stride must be a positive integer or null"),
    ({"path": "a", "stride": 2, "streams": 4}, "stride", "give one of them"),
])
def test_bad_options_name_their_key(options, key, message):
    with pytest.raises(ConfigError) as e:
        TextOptions(**options)
    assert message in str(e.value) and e.value.key == (key,)


# -- class ids as targets -----------------------------------------------------------------------
def test_class_ids_give_the_one_hot_loss_gradient_and_accuracy():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 6, 5))
    ids = rng.integers(0, 5, (4, 6))
    one_hot = np.eye(5)[ids]
    by_ids, by_rows = sn.SoftmaxCrossEntropy(), sn.SoftmaxCrossEntropy()
    assert by_ids.forward(z, ids.astype(np.float64)) == pytest.approx(
        by_rows.forward(z, one_hot), rel=1e-12)
    np.testing.assert_allclose(by_ids.backward(), by_rows.backward(), rtol=0, atol=1e-15)
    assert check_loss(sn.SoftmaxCrossEntropy(), z, ids.astype(np.float64)) < 1e-7
    assert sn.accuracy(z, ids) == sn.accuracy(z, one_hot)
    assert sn.accuracy(z[:, 0], ids[:, 0]) == sn.accuracy(z[:, 0], one_hot[:, 0])  # (n,) ids


@pytest.mark.parametrize("ids, message", [
    ([[0, 5]], r"got id 5: ids must be in 0\.\.4"), ([[0, -1]], "got id -1"),
    ([[0, 1.5]], "takes integer ids; got 1.5")])
def test_bad_class_ids_are_a_data_error(ids, message):
    with pytest.raises(DataError, match="softmax_cross_entropy's target " + message):
        sn.SoftmaxCrossEntropy().forward(np.zeros((1, 2, 5)), np.array(ids, dtype=float))


def test_a_character_model_trains_on_id_targets(tmp_path):
    data = load_text(TextOptions(path=str(_text_file(tmp_path, SAMPLE * 6)), seq_len=12))
    V = data.vocabulary.size
    net = sn.NeuralNetwork([sn.Embedding(V, 8), sn.GRU(24), sn.Dense(V)],
                           "softmax_cross_entropy", seed=0)
    history = sn.Trainer(net, sn.Adam(0.02)).fit(data.X_train, data.Y_train, data.X_val,
                                                 data.Y_val, epochs=30, eval_every=30,
                                                 batch_size=16)
    first, last = history.epochs[0]["train_loss"], history.epochs[-1]["train_loss"]
    assert first > 0.8 * math.log(V) and last < first / 3, (first, last)
    scores = sn.evaluate(net, data.X_val, data.Y_val, text=True)
    assert set(scores) == {"loss", "accuracy", "bits_per_char", "perplexity"}


# -- text metrics -------------------------------------------------------------------------------
def test_a_model_that_knows_nothing_scores_the_uniform_choice():
    """All-zero weights give equal scores to every character: ln V nats, log2 V bits and a
    perplexity of V."""
    V = 40
    net = sn.NeuralNetwork([sn.Embedding(V, 4), sn.RNN(3), sn.Dense(V)],
                           "softmax_cross_entropy", seed=0).build((7,))
    for p in net.params():
        p.value[...] = 0
    ids = np.random.default_rng(1).integers(0, V, (5, 7))
    scores = sn.evaluate(net, ids, np.roll(ids, -1, axis=1), text=True)
    assert scores["loss"] == pytest.approx(math.log(V), rel=1e-6)
    assert scores["bits_per_char"] == pytest.approx(math.log2(V), rel=1e-6)
    assert scores["perplexity"] == pytest.approx(V, rel=1e-5)
    assert "perplexity" not in sn.evaluate(net, ids, np.roll(ids, -1, axis=1))


def test_text_scores_of_a_diverged_model_are_infinite_not_an_error():
    assert text_scores(1e4) == {"bits_per_char": pytest.approx(1e4 / math.log(2)),
                                "perplexity": math.inf}
    assert text_scores(0.0) == {"bits_per_char": 0.0, "perplexity": 1.0}


# -- the adding problem ---------------------------------------------------------------------------
def test_each_sample_marks_two_values_one_per_half_and_sums_them():
    X, y = adding_problem(9, 500, np.random.default_rng(3))
    assert X.shape == (500, 9, 2) and y.shape == (500,)
    values, markers = X[..., 0], X[..., 1]
    assert ((values >= 0) & (values < 1)).all() and set(np.unique(markers)) == {0.0, 1.0}
    for row in range(500):
        marked = [t for t in range(9) if markers[row, t] == 1]
        assert len(marked) == 2 and marked[0] < 4 <= marked[1]
        assert y[row] == values[row, marked[0]] + values[row, marked[1]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_always_predicting_one_scores_a_sixth(seed):
    """(a + b - 1)^2 for independent uniform a, b has mean 1/6 and variance 7/180; over n
    samples the mean strays by more than 6 standard deviations with odds below 1e-8."""
    n = 200_000
    _, y = adding_problem(4, n, np.random.default_rng(seed))
    mse = float(np.mean((y - 1.0) ** 2))
    assert abs(mse - 1 / 6) < 6 * math.sqrt(7 / 180 / n), mse


def test_the_adding_data_set_is_seeded_split_and_described():
    ds = load_adding(AddingOptions(length=12, samples=100, test_fraction=0.25, seed=4))
    assert ds.X_train.shape == (75, 24) and ds.X_test.shape == (25, 24)
    assert ds.task == "regression" and ds.image_shape == (12, 2)
    assert ds.feature_names[:3] == ["value_0", "marker_0", "value_1"]
    again = load_adding(AddingOptions(length=12, samples=100, test_fraction=0.25, seed=4))
    other = load_adding(AddingOptions(length=12, samples=100, test_fraction=0.25, seed=5))
    np.testing.assert_array_equal(ds.X_test, again.X_test)
    assert not np.array_equal(ds.X_test, other.X_test)
    told = describe_adding(AddingOptions(length=12, samples=100, test_fraction=0.25))
    assert (told.n_train, told.n_test, told.n_features, told.image_shape, told.task) == \
        (75, 25, 24, (12, 2), "regression")
    assert sequence_shape_of(ds) == (12, 2)


@pytest.mark.parametrize("options, key", [
    ({"length": 1}, "length"), ({"length": MAX_SEQ_LEN + 1}, "length"),
    ({"samples": 1}, "samples"), ({"samples": 10**7, "length": 10}, "samples"),
    ({"test_fraction": 0.001, "samples": 100}, "test_fraction"), ({"seed": "a"}, "seed")])
def test_bad_adding_options_name_their_key(options, key):
    with pytest.raises(ConfigError) as e:
        AddingOptions(**options)
    assert e.value.key == (key,) and "\n" not in str(e.value)


def test_an_lstm_beats_the_adding_baseline():
    data = prepare(load_adding(AddingOptions(length=10, samples=2000, seed=0)), scale="none",
                   validation=0.1)
    X, X_test = (as_samples(a, (10, 2)) for a in (data.X_train, data.X_test))
    net = sn.NeuralNetwork([sn.LSTM(16, return_sequences=False), sn.Dense(1)], "mse", seed=0)
    sn.Trainer(net, sn.Adam(0.01)).fit(X, data.Y_train, epochs=40, eval_every=40,
                                       batch_size=32)
    mse = sn.evaluate(net, X_test, data.Y_test)["loss"]
    assert mse < (1 / 6) / 3, mse


# -- samples as sequences -------------------------------------------------------------------------
def test_images_are_read_row_by_row():
    digits = load_dataset("digits")
    assert sequence_shape_of(digits) == (8, 8)
    assert sequence_shape_of(digits, [1, 8, 8]) == (8, 8)
    assert sequence_shape_of(digits, [16, 4]) == (16, 4)
    rows = as_samples(digits.X_train[:2], sequence_shape_of(digits))
    np.testing.assert_array_equal(rows[1, 3], digits.X_train[1, 24:32])  # step 3 = row 3


@pytest.mark.parametrize("make, shape, message", [
    (lambda: load_dataset("iris"), None, r"iris has flat rows of 4 values and the first layer "
                                         r"is recurrent: give data.shape, \[time, features\]"),
    (lambda: load_dataset("digits"), [5, 5], r"got shape \[5, 5\]: a recurrent first layer "
                                             r"reads \[time, features\]"),
    (lambda: load_dataset("digits"), [4, 4, 4], "reads one-channel images row by row"),
])
def test_what_cannot_be_read_as_sequences(make, shape, message):
    with pytest.raises(ShapeError, match=message):
        sequence_shape_of(make(), shape)


def test_a_three_d_npz_holds_sequences_a_recurrent_network_trains_on(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((90, 7, 3))
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)  # needs every step
    np.savez(tmp_path / "seq.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    ds = load_dataset("npz", path=str(tmp_path / "seq.npz"))
    assert sequence_shape_of(ds) == (7, 3)
    data = prepare(ds, scale="none", validation=0.2)
    X = as_samples(data.X_train, sequence_shape_of(data))
    np.testing.assert_array_equal(as_samples(data.X_test, (7, 3)), x[60:].astype(np.float32))
    net = sn.NeuralNetwork([sn.GRU(8, return_sequences=False), sn.Dense(2)],
                           "softmax_cross_entropy", seed=0)
    history = sn.Trainer(net, sn.Adam(0.02)).fit(X, data.Y_train, epochs=20, eval_every=20,
                                                 batch_size=16)
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


def test_a_four_d_npz_of_one_channel_images_is_read_as_rows_of_pixels(tmp_path):
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float64).reshape(2, 1, 3, 4)
    np.savez(tmp_path / "im.npz", x_train=x, y_train=np.array([0, 1]), x_test=x,
             y_test=np.array([1, 0]))
    assert sequence_shape_of(load_dataset("npz", path=str(tmp_path / "im.npz"))) == (3, 4)

