"""Tests of scratchnet.data: IDX files, dataset search and download, scikit-learn sets,
CSV files, scaling and preparation.

Everything runs on real files: small IDX sets that the tests write into tmp_path, a
local HTTP server standing in for a download mirror, and the real MNIST files when
$SCRATCHNET_DATA_DIR/mnist/ holds them (those tests skip otherwise). No test touches
the network or the user's real cache folder.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from scratchnet.data import (DATASETS, SCALERS, Dataset, FileCheck, Prepared, Scaler,
                             load_dataset, one_hot, prepare, read_idx, resolve_data_files,
                             split_indices, write_idx)
from scratchnet.data import mnist as sources
from scratchnet.errors import ConfigError, DataError, ShapeError

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
_ENV_DATA = os.environ.get("SCRATCHNET_DATA_DIR")
REAL_MNIST = Path(_ENV_DATA) / "mnist" if _ENV_DATA else None


# --------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """A valid IDX file for a uint8 array, built by hand from the format description:
    two zero bytes, type byte 0x08, number of dimensions, big-endian uint32 sizes, data."""
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_file(path: Path, data: bytes) -> Path:
    """Write bytes, gzip-compressed when the name ends in .gz."""
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_fake_set(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True,
                   seed: int = 0) -> dict:
    """Write a tiny but valid MNIST-style set (28x28 images, labels 0..9) into folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        NAMES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_file(folder / (name + (".gz" if gz else "")), idx_bytes(array))
    return arrays


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Never read the user's environment or cache, never reach a real mirror."""
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sources, "MIRRORS", {"mnist": ["http://127.0.0.1:9/"],
                                             "fashion_mnist": ["http://127.0.0.1:9/"]})


@pytest.fixture
def fake_checksums(monkeypatch):
    """Fake sets are not the official files: drop the official size/checksum table for
    mnist so only the structural checks apply (see sources.CHECKSUMS)."""
    monkeypatch.setitem(sources.CHECKSUMS, "mnist", {})


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    if REAL_MNIST is None or not all(
            (REAL_MNIST / n).exists() or (REAL_MNIST / (n + ".gz")).exists() for n in NAMES):
        pytest.skip("real MNIST not available (set SCRATCHNET_DATA_DIR)")
    return load_dataset("mnist", path=str(REAL_MNIST), download=False)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = write_file(tmp_path / f"images{suffix}", idx_bytes(images))
    got = read_idx(path, ndim=3)
    assert got.dtype == np.uint8 and got.shape == (5, 28, 28)
    np.testing.assert_array_equal(got, images)
    labels = np.arange(7, dtype=np.uint8)
    np.testing.assert_array_equal(
        read_idx(write_file(tmp_path / f"labels{suffix}", idx_bytes(labels)), ndim=1), labels)


def test_write_idx_matches_format(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert write_idx(tmp_path / "a", array).read_bytes() == idx_bytes(array)
    assert gzip.decompress(write_idx(tmp_path / "a.gz", array).read_bytes()) == idx_bytes(array)


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="corrupt gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_cut_off_gzip_stream_is_refused(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8) + 7))
    path = tmp_path / "images.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt gzip") as err:
        read_idx(path, ndim=3)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("header", [b"\x00\x00\x09\x03", b"\x12\x34\x08\x03", b"\x00\x00\x08\x01"])
def test_bad_magic_is_refused(tmp_path, header):
    # wrong type byte, garbage, and a labels file (1 dim) where images (3 dims) are wanted
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + struct.pack(">III", 1, 2, 2) + bytes(4))
    with pytest.raises(DataError, match="bad magic number") as err:
        read_idx(path, ndim=3)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_file_is_refused(tmp_path, suffix):
    full = idx_bytes(np.ones((10, 28, 28), np.uint8))
    path = write_file(tmp_path / f"t10k-images-idx3-ubyte{suffix}", full[:-100])
    with pytest.raises(DataError, match="truncated") as err:
        read_idx(path, ndim=3)
    assert str(path) in str(err.value) and "(10, 28, 28)" in str(err.value)


def test_extra_bytes_are_refused(tmp_path):
    path = write_file(tmp_path / "labels", idx_bytes(np.arange(5, dtype=np.uint8)) + b"xx")
    with pytest.raises(DataError, match="extra bytes"):
        read_idx(path, ndim=1)


def test_wrong_checksum_and_size_are_refused(tmp_path):
    data = idx_bytes(np.arange(100, dtype=np.uint8))
    path = write_file(tmp_path / "train-labels-idx1-ubyte.gz", data)
    read_idx(path, check=FileCheck(len(data)))  # right size, no checksum: fine
    with pytest.raises(DataError, match="SHA-256") as err:
        read_idx(path, check=FileCheck(len(data), sha256="0" * 64))
    assert str(path) in str(err.value)
    with pytest.raises(DataError, match="official file has") as err:
        read_idx(path, check=FileCheck(len(data) + 1))
    assert str(path) in str(err.value)
    with pytest.raises(DataError, match="MD5 of the .gz"):
        read_idx(path, check=FileCheck(len(data), gz_md5="0" * 32))


# --------------------------------------------------------------------------------------
# real MNIST
# --------------------------------------------------------------------------------------

def test_real_mnist_shapes_and_labels(mnist):
    assert mnist.X_train.shape == (60000, 784) and mnist.X_train.dtype == np.uint8
    assert mnist.X_test.shape == (10000, 784) and mnist.X_test.dtype == np.uint8
    assert mnist.y_train.dtype == np.int64 and mnist.y_train.shape == (60000,)
    assert mnist.y_train.min() == 0 and mnist.y_train.max() == 9
    # The well-known class counts of MNIST's training set.
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421,
                                                   5918, 6265, 5851, 5949]
    assert mnist.task == "classification" and mnist.classes == list(range(10))
    assert mnist.image_shape == (28, 28) and len(mnist.feature_names) == 784


def test_real_mnist_checksum(mnist):
    labels = REAL_MNIST / "t10k-labels-idx1-ubyte.gz"
    if not labels.exists():
        labels = REAL_MNIST / "t10k-labels-idx1-ubyte"
    official = sources.CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte"]
    assert read_idx(labels, ndim=1, check=official).shape == (10000,)
    with pytest.raises(DataError, match="SHA-256"):
        read_idx(labels, ndim=1, check=FileCheck(official.size, sha256="f" * 64))


def test_real_mnist_prepare_stays_float32_and_small(mnist):
    tracemalloc.start()  # NumPy reports its array memory to tracemalloc
    try:
        data = prepare(mnist, scale="global", validation=0.1, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for array in (data.X_train, data.Y_train, data.X_val, data.Y_val, data.X_test,
                  data.Y_test):
        assert array.dtype == np.float32
    assert data.X_train.shape == (54000, 784) and data.X_val.shape == (6000, 784)
    # The float32 outputs alone are ~212 MB; a float64 copy of the training images would
    # add another ~320 MB, so this bound catches one.
    assert peak < 260 * 2**20, f"prepare peaked at {peak / 2**20:.0f} MB"
    saved = data.scaler.to_dict()
    assert saved["kind"] == "global" and 30 < saved["mean"] < 37 and 75 < saved["std"] < 82
    assert abs(float(data.X_train[:5000].mean())) < 0.05
    assert mnist.X_train.dtype == np.uint8  # the source is untouched


# --------------------------------------------------------------------------------------
# finding the IDX files
# --------------------------------------------------------------------------------------

def test_fake_set_loads_from_path(tmp_path, fake_checksums):
    arrays = write_fake_set(tmp_path / "set", gz=False)
    ds = load_dataset("mnist", path=str(tmp_path / "set"), download=False)
    assert ds.X_train.shape == (30, 784) and ds.X_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.X_test.reshape(-1, 28, 28), arrays[NAMES[2]])
    np.testing.assert_array_equal(ds.y_train, arrays[NAMES[1]])


def test_official_checks_reject_a_fake_set(tmp_path):
    # Without the fake_checksums fixture the official sizes apply.
    write_fake_set(tmp_path / "set")
    with pytest.raises(DataError, match="official file has"):
        load_dataset("mnist", path=str(tmp_path / "set"), download=False)


def test_search_order(tmp_path, monkeypatch, fake_checksums):
    # Four complete sets that differ in their number of training images.
    where = {"path": tmp_path / "given", "data_dir": tmp_path / "dd" / "mnist",
             "env": tmp_path / "env" / "mnist", "cache": tmp_path / "xdg" / "scratchnet" / "mnist"}
    for n, folder in enumerate(where.values()):
        write_fake_set(folder, n_train=20 + n, gz=n % 2 == 0)
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(tmp_path / "env"))

    def n_train(**kw):
        return len(load_dataset("mnist", download=False, **kw).X_train)

    assert n_train(path=str(where["path"]), data_dir=str(tmp_path / "dd")) == 20
    assert n_train(data_dir=str(tmp_path / "dd")) == 21
    assert n_train() == 22
    monkeypatch.delenv("SCRATCHNET_DATA_DIR")
    assert n_train() == 23
    # data_dir itself is searched too, after data_dir/mnist/
    write_fake_set(tmp_path / "flat", n_train=40)
    assert n_train(data_dir=str(tmp_path / "flat")) == 40
    files = resolve_data_files("mnist", data_dir=str(tmp_path / "flat"))
    assert set(files) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert files["train_images"] == tmp_path / "flat" / (NAMES[0] + ".gz")


def test_incomplete_folder_is_skipped(tmp_path, fake_checksums):
    write_fake_set(tmp_path / "partial", n_train=25)
    (tmp_path / "partial" / (NAMES[3] + ".gz")).unlink()
    write_fake_set(tmp_path / "xdg" / "scratchnet" / "mnist", n_train=33)
    ds = load_dataset("mnist", path=str(tmp_path / "partial"), download=False)
    assert len(ds.X_train) == 33


def test_corrupt_file_in_a_set_names_the_file(tmp_path, fake_checksums):
    write_fake_set(tmp_path / "set")
    bad = tmp_path / "set" / (NAMES[1] + ".gz")
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", path=str(tmp_path / "set"), download=False)
    assert str(bad) in str(err.value)


def test_missing_files_message_without_download(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=str(tmp_path / "nowhere"), download=False)
    message = str(err.value)
    for name in NAMES:
        assert name + "(.gz)" in message
    assert str(tmp_path / "nowhere" / "mnist") in message
    assert str(tmp_path / "xdg" / "scratchnet" / "mnist") in message  # where to put them
    assert "--data-dir" in message and "SCRATCHNET_DATA_DIR" in message


def test_offline_download_fails_with_one_clear_error(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("fashion_mnist", download=True)
    message = str(err.value)
    assert message.startswith("Fashion-MNIST files missing: ")
    assert "127.0.0.1:9" in message and "Download failed" in message
    assert all(name in message for name in NAMES)
    cache = tmp_path / "xdg" / "scratchnet" / "fashion_mnist"
    assert list(cache.iterdir()) == []  # no half-written files left behind


def test_download_falls_over_to_a_working_mirror(tmp_path, monkeypatch, fake_checksums,
                                                 mirror_server):
    root, url = mirror_server
    # mirror 1 refuses connections, mirror 2 serves garbage, mirror 3 the real thing
    (root / "bad").mkdir()
    for name in NAMES:
        (root / "bad" / (name + ".gz")).write_bytes(b"not gzip")
    arrays = write_fake_set(root / "good", n_train=12)
    monkeypatch.setitem(sources.MIRRORS, "mnist",
                        ["http://127.0.0.1:9/", url + "bad/", url + "good/"])
    ds = load_dataset("mnist", download=True)
    np.testing.assert_array_equal(ds.X_train.reshape(-1, 28, 28), arrays[NAMES[0]])
    cache = tmp_path / "xdg" / "scratchnet" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in NAMES)


# --------------------------------------------------------------------------------------
# scikit-learn sets
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, n, d, k, task", [
    ("digits", 1797, 64, 10, "classification"),
    ("iris", 150, 4, 3, "classification"),
    ("wine", 178, 13, 3, "classification"),
    ("breast_cancer", 569, 30, 2, "classification"),
    ("diabetes", 442, 10, 0, "regression"),
])
def test_sklearn_sets(name, n, d, k, task):
    ds = load_dataset(name, test_fraction=0.2, seed=0)
    n_test = int(np.ceil(0.2 * n))
    assert ds.X_train.shape == (n - n_test, d) and ds.X_test.shape == (n_test, d)
    assert ds.task == task and len(ds.classes) == k and len(ds.feature_names) == d
    json.dumps(ds.classes)  # plain ints/strings
    if task == "classification":
        assert ds.y_train.dtype == np.int64
        # stratified: each class has (to within one row) 20 % of its rows in the test part
        train_counts = np.bincount(ds.y_train, minlength=k)
        test_counts = np.bincount(ds.y_test, minlength=k)
        assert np.all(np.abs(test_counts - 0.2 * (train_counts + test_counts)) <= 1)
    else:
        assert ds.y_train.dtype == np.float64
    assert ds.image_shape == ((8, 8) if name == "digits" else None)


def test_diabetes_is_unscaled_and_splits_are_seeded():
    ds = load_dataset("diabetes")
    assert ds.X_train[:, 0].max() > 10  # raw ages, not sklearn's scaled values
    again, other = load_dataset("diabetes", seed=0), load_dataset("diabetes", seed=1)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    assert not np.array_equal(ds.y_test, other.y_test)


def test_bad_arguments_list_the_choices():
    with pytest.raises(ConfigError, match="mnist, fashion_mnist, digits"):
        load_dataset("cifar")
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            load_dataset("iris", test_fraction=bad)
    with pytest.raises(ConfigError, match="classification, regression"):
        load_dataset("iris", task="ranking")
    assert set(DATASETS) >= {"mnist", "csv", "diabetes"}


# --------------------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------------------

def test_csv_text_target(tmp_path):
    rows = [f"{i},{i * 0.5},{['virginica', 'setosa', 'versicolor'][i % 3]}" for i in range(30)]
    path = write_csv(tmp_path / "f.csv", "a, b ,species\n" + "\n".join(rows))
    ds = load_dataset("csv", path=str(path), target="species")
    assert ds.task == "classification"
    assert ds.classes == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names == ["a", "b"]
    assert ds.X_train.shape == (24, 2) and ds.X_test.shape == (6, 2)
    # every row keeps its label: a = i, label = (i % 3) -> ['virginica','setosa','versicolor']
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        names = [ds.classes[k] for k in y]
        assert names == [["virginica", "setosa", "versicolor"][int(a) % 3] for a in X[:, 0]]


def test_csv_small_integer_target_is_classification(tmp_path):
    rows = [f"{i},{i % 3 * 2}" for i in range(30)]  # targets 0, 2, 4
    path = write_csv(tmp_path / "f.csv", "x,label\n" + "\n".join(rows))
    ds = load_dataset("csv", path=str(path), target="label")
    assert ds.task == "classification" and ds.classes == [0, 2, 4]
    assert all(isinstance(c, int) for c in ds.classes)
    np.testing.assert_array_equal(ds.y_train, (ds.X_train[:, 0] % 3).astype(np.int64))
    # overriding the guess
    forced = load_dataset("csv", path=str(path), target="label", task="regression")
    assert forced.task == "regression" and forced.classes == []


def test_csv_regression(tmp_path):
    rows = [f"{i},{i % 7},{i * 1.5 + 0.25}" for i in range(40)]
    path = write_csv(tmp_path / "f.csv", "x1,x2,y\n" + "\n".join(rows))
    ds = load_dataset("csv", path=str(path), target="y", test_fraction=0.25)
    assert ds.task == "regression" and ds.classes == []
    assert ds.y_train.dtype == np.float64 and ds.X_train.shape == (30, 2)
    np.testing.assert_allclose(ds.y_train, ds.X_train[:, 0] * 1.5 + 0.25)
    # many distinct integers in few rows: a quantity, not classes
    rows = [f"{i},{i * 3}" for i in range(30)]
    path = write_csv(tmp_path / "g.csv", "x,count\n" + "\n".join(rows))
    assert load_dataset("csv", path=str(path), target="count").task == "regression"


@pytest.mark.parametrize("cell", ["", "NA", "nan", " NaN "])
def test_csv_missing_value_names_row_and_column(tmp_path, cell):
    path = write_csv(tmp_path / "f.csv", f"a,b,y\n1,2,0\n3,4,1\n5,{cell},0\n")
    with pytest.raises(DataError) as err:
        load_dataset("csv", path=str(path), target="y")
    message = str(err.value)
    assert "missing value" in message and "data row 3" in message
    assert "file line 4" in message and "'b'" in message


def test_csv_non_numeric_feature(tmp_path):
    path = write_csv(tmp_path / "f.csv", "size,colour,y\n1,red,0\n2,blue,1\n")
    with pytest.raises(DataError, match="feature column 'colour' is not numeric"):
        load_dataset("csv", path=str(path), target="y")


def test_csv_bad_target_and_path(tmp_path):
    path = write_csv(tmp_path / "f.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="the columns are: a, b, c"):
        load_dataset("csv", path=str(path), target="label")
    with pytest.raises(DataError, match="the columns are: a, b, c"):
        load_dataset("csv", path=str(path))
    with pytest.raises(DataError, match="nope.csv"):
        load_dataset("csv", path=str(tmp_path / "nope.csv"), target="c")
    with pytest.raises(DataError, match="path"):
        load_dataset("csv", target="c")


# --------------------------------------------------------------------------------------
# scaling and preparation
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wine() -> Dataset:
    return load_dataset("wine")


def test_scaler_is_fitted_on_the_training_rows_only(wine):
    data = prepare(wine, scale="standard", validation=0.25, seed=3)
    keep, held = split_indices(wine.y_train, 0.25, seed=3, stratify=True)
    train_part = wine.X_train[keep]
    np.testing.assert_allclose(data.scaler.offset, train_part.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(data.scaler.scale, train_part.std(axis=0), rtol=1e-12)
    assert not np.allclose(data.scaler.offset, wine.X_train.mean(axis=0), rtol=1e-6)
    # test and validation rows use the training statistics
    expected = ((wine.X_test - train_part.mean(axis=0)) / train_part.std(axis=0))
    np.testing.assert_allclose(data.X_test, expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.X_val, ((wine.X_train[held] - train_part.mean(axis=0))
                                            / train_part.std(axis=0)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-5)


def test_validation_split_is_stratified_and_seeded(wine):
    data = prepare(wine, validation=0.2, seed=0)
    n = len(wine.X_train)
    assert len(data.X_val) == round(0.2 * n) and len(data.X_train) == n - round(0.2 * n)
    counts = np.bincount(wine.y_train)
    val_counts = data.Y_val.sum(axis=0)
    assert np.all(np.abs(val_counts - 0.2 * counts) <= 1)
    again = prepare(wine, validation=0.2, seed=0)
    np.testing.assert_array_equal(data.X_val, again.X_val)
    assert not np.array_equal(data.X_val, prepare(wine, validation=0.2, seed=1).X_val)


def test_prepare_shapes_and_types(wine):
    data = prepare(wine, scale="minmax", validation=0.1, dtype="float64")
    assert isinstance(data, Prepared)
    assert data.Y_train.shape == (len(data.X_train), 3) and data.Y_train.dtype == np.float64
    np.testing.assert_array_equal(data.Y_train.sum(axis=1), 1)
    assert data.n_features == 13 and data.n_outputs == 3
    assert data.X_train.min() == 0 and data.X_train.max() == 1
    assert data.classes == wine.classes and data.feature_names == wine.feature_names


def test_prepare_regression_targets_are_a_column():
    ds = load_dataset("diabetes")
    data = prepare(ds, scale="standard", validation=0.1)
    assert data.Y_train.shape == (len(data.X_train), 1) and data.Y_train.dtype == np.float32
    assert data.n_outputs == 1 and data.task == "regression"
    np.testing.assert_allclose(np.sort(np.concatenate([data.Y_train, data.Y_val])[:, 0]),
                               np.sort(ds.y_train).astype(np.float32))


def test_prepare_validation_test_reproduces_the_notebook(wine):
    data = prepare(wine, scale="global", validation="test")
    assert data.X_val is data.X_test and data.Y_val is data.Y_test
    assert len(data.X_train) == len(wine.X_train)
    assert data.scaler.to_dict()["mean"] == pytest.approx(wine.X_train.mean(), rel=1e-12)
    assert data.scaler.to_dict()["std"] == pytest.approx(wine.X_train.std(), rel=1e-12)


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.2, -0.5, "train", True])
def test_prepare_rejects_bad_validation(wine, bad):
    with pytest.raises(ConfigError, match="'test'"):
        prepare(wine, validation=bad)


@pytest.mark.parametrize("kind", SCALERS)
def test_scaler_round_trip_is_exact(kind, wine):
    X = wine.X_train
    scaler = Scaler(kind).fit(X)
    saved = json.loads(json.dumps(scaler.to_dict()))
    rebuilt = Scaler.from_dict(saved)
    for dtype in ("float32", "float64"):
        np.testing.assert_array_equal(rebuilt.transform(wine.X_test, dtype),
                                      scaler.transform(wine.X_test, dtype))


def test_scaler_details():
    X = np.array([[1, 5, 0], [3, 5, 10], [5, 5, 20]], dtype=np.uint8)
    copy = X.copy()
    standard = Scaler("standard").fit(X).transform(X)
    assert standard.dtype == np.float32
    np.testing.assert_allclose(standard[:, 1], 0)  # constant column: std 0 -> 1, no NaN
    np.testing.assert_allclose(standard[:, 0], [-1.2247449, 0, 1.2247449], rtol=1e-6)
    minmax = Scaler("minmax").fit(X).transform(X)
    np.testing.assert_allclose(minmax, [[0, 0, 0], [0.5, 0, 0.5], [1, 0, 1]])
    glob = Scaler("global").fit(X)
    assert glob.to_dict()["mean"] == pytest.approx(X.mean())
    assert glob.to_dict()["std"] == pytest.approx(X.std())
    out = Scaler("none").fit(X).transform(X, "float64")
    assert out.dtype == np.float64 and np.array_equal(out, X)
    np.testing.assert_array_equal(X, copy)  # never modified in place
    with pytest.raises(ConfigError, match="global, standard, minmax, none"):
        Scaler("robust")
    with pytest.raises(ShapeError):
        Scaler("standard").fit(X).transform(X[:, :2])
    with pytest.raises(ConfigError, match="dtype"):
        Scaler("standard").fit(X).transform(X, "int32")


def test_one_hot():
    np.testing.assert_array_equal(one_hot([2, 0, 1], 3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert one_hot(np.array([1]), 4, "float64").dtype == np.float64
    with pytest.raises(DataError, match="0..2"):
        one_hot([0, 3], 3)
