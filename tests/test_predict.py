"""``scratchnet predict`` on runs trained through the real CLI: CSV, .npy and pictures."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits

from scratchnet import DataError, ShapeError
from conftest import digits_config, run_main as cli
from scratchnet.experiment import load_run
from scratchnet.predict import IMAGE_LAYOUTS, read_image, read_inputs

DIGITS_CONFIG = yaml.safe_dump(digits_config(
    name="tiny_digits", model={"layers": [{"neurons": 32, "activation": "tanh"},
                                          {"neurons": 10, "activation": "linear"}]},
    train={"epochs": 15, "batch_size": 32, "eval_every": 5}))

DIABETES_CONFIG = """\
name: tiny_diabetes
seed: 3
data: {dataset: diabetes, scale: standard}
model:
  layers:
    - {neurons: 8, activation: tanh}
    - {neurons: 1, activation: linear}
  loss: mse
optimizer: {name: sgd_momentum, lr: 0.01, momentum: 0.9}
train: {epochs: 3, batch_size: 32, eval_every: 3}
"""


def _train(tmp: Path, text: str) -> Path:
    """Train through the real command line (a subprocess, as a user runs it)."""
    config = tmp / "experiment.yaml"
    config.write_text(text)
    subprocess.run([sys.executable, "-m", "scratchnet", "train", str(config), "--out",
                    str(tmp / "runs"), "--quiet"], check=True, capture_output=True, text=True)
    (run_dir,) = (tmp / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("digits"), DIGITS_CONFIG)


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("diabetes"), DIABETES_CONFIG)


@pytest.fixture(scope="module")
def digits():
    return load_digits()




def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _digit_png(path: Path, pixels: np.ndarray, size: int = 64) -> Path:
    """An 8x8 digits image (0..16, light ink on black) as a dark-on-white PNG, enlarged."""
    gray = (255 - pixels.reshape(8, 8) * (255 / 16)).astype(np.uint8)
    Image.fromarray(gray).resize((size, size), Image.Resampling.NEAREST).save(path)
    return path


# -- the three kinds of input --------------------------------------------------------------
def test_predict_npy_rows_as_csv(digits_run, digits, tmp_path, capsys):
    X, y = digits.data[-100:], digits.target[-100:]
    np.save(tmp_path / "rows.npy", X)
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "rows.npy", "--format", "csv")
    assert code == 0, err
    rows = csv_rows(out)
    assert rows[0] == ["input", "prediction"]
    assert [r[0] for r in rows[1:3]] == ["rows.npy[0]", "rows.npy[1]"]
    predicted = np.array([int(r[1]) for r in rows[1:]])
    assert len(predicted) == 100
    assert (predicted == y).mean() > 0.85
    # the same as the network on the scaler's transform, done here from the library
    cfg, net, info, _ = load_run(digits_run)
    from scratchnet.data import Scaler
    scaled = Scaler.from_dict(info["scaler"]).transform(X, cfg.train.dtype)
    expected = net.predict(scaled).argmax(axis=1)
    np.testing.assert_array_equal(predicted, expected)


def test_predict_csv_with_header_in_any_order_or_without_header(digits_run, digits, tmp_path,
                                                                capsys):
    X = digits.data[:6]
    names = list(digits.feature_names)
    order = np.random.default_rng(0).permutation(64)
    with open(tmp_path / "shuffled.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([names[j] for j in order])
        w.writerows(X[:, order].tolist())
    with open(tmp_path / "plain.csv", "w", newline="") as f:
        csv.writer(f).writerows(X.tolist())
    np.save(tmp_path / "same.npy", X)
    results = []
    for name in ("shuffled.csv", "plain.csv", "same.npy"):
        code, out, err = cli(capsys, "predict", digits_run, tmp_path / name, "-f", "json",
                             "--proba", "3")
        assert code == 0, err
        results.append(json.loads(out))
    assert [r["input"] for r in results[0]] == [f"shuffled.csv:{i}" for i in range(1, 7)]
    strip = [[{k: v for k, v in r.items() if k != "input"} for r in res] for res in results]
    assert strip[0] == strip[1] == strip[2]


def test_proba_gives_the_top_k_sorted_and_all_k_sum_to_one(digits_run, digits, tmp_path, capsys):
    np.save(tmp_path / "x.npy", digits.data[:4])
    code, out, _ = cli(capsys, "predict", digits_run, tmp_path / "x.npy", "--proba", "3",
                       "-f", "json")
    assert code == 0
    for row in json.loads(out):
        probs = [e["probability"] for e in row["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert row["top"][0]["class"] == row["prediction"]
    code, out, _ = cli(capsys, "predict", digits_run, tmp_path / "x.npy", "--proba", "50",
                       "-f", "csv")
    rows = csv_rows(out)
    assert rows[0][:4] == ["input", "prediction", "class_1", "probability_1"]
    assert len(rows[0]) == 2 + 2 * 10  # K larger than the number of classes: all of them
    for r in rows[1:]:
        assert sum(float(p) for p in r[3::2]) == pytest.approx(1.0, abs=1e-4)


def test_predict_table_is_the_default(digits_run, digits, tmp_path, capsys):
    np.save(tmp_path / "one.npy", digits.data[0])  # a single row of shape (64,)
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "one.npy", "--proba", "2")
    assert code == 0 and err == ""
    assert "one.npy[0]" in out and "prediction" in out and "top 2" in out


def test_predict_png_of_real_digits_matches_their_arrays(digits_run, digits, tmp_path, capsys):
    """Pictures go through inversion, cropping, resizing and rescaling to 0..16: real test
    digits drawn dark on white and enlarged must mostly get their arrays' predictions."""
    idx = range(1700, 1720)
    pngs = [_digit_png(tmp_path / f"d{i}.png", digits.data[i]) for i in idx]
    np.save(tmp_path / "d.npy", digits.data[list(idx)])
    code, out, err = cli(capsys, "predict", digits_run, *pngs, tmp_path / "d.npy", "-f", "csv")
    assert code == 0, err
    rows = csv_rows(out)[1:]
    from_png, from_npy = [r[1] for r in rows[:20]], [r[1] for r in rows[20:]]
    assert [r[0] for r in rows[:2]] == ["d1700.png", "d1701.png"]
    agree = sum(a == b for a, b in zip(from_png, from_npy, strict=True))
    assert agree >= 16, (from_png, from_npy)


def test_predict_a_digit_the_test_draws(digits_run, tmp_path, capsys):
    # A thick black 7 on white paper, crossed as most 7s in sklearn's digits are (drawn
    # this way, 20 networks trained with different seeds all read it as a 7).
    img = Image.new("L", (120, 120), 255)
    pen = ImageDraw.Draw(img)
    pen.line([(30, 15), (92, 15), (50, 110)], fill=0, width=14, joint="curve")
    pen.line([(42, 62), (88, 62)], fill=0, width=14)
    img.save(tmp_path / "seven.png")
    img.convert("RGB").save(tmp_path / "seven.jpg", quality=80)
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "seven.png",
                         tmp_path / "seven.jpg", "-f", "json", "--proba", "10")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["input"] for r in rows] == ["seven.png", "seven.jpg"]
    assert [r["prediction"] for r in rows] == [7, 7]
    assert sum(e["probability"] for e in rows[0]["top"]) == pytest.approx(1.0)


def test_predict_regression_run(diabetes_run, tmp_path, capsys):
    from sklearn.datasets import load_diabetes

    X = load_diabetes(scaled=False).data[:5]
    np.save(tmp_path / "patients.npy", X)
    code, out, err = cli(capsys, "predict", diabetes_run, tmp_path / "patients.npy", "-f", "json")
    assert code == 0, err
    values = [r["prediction"] for r in json.loads(out)]
    assert len(values) == 5 and all(isinstance(v, float) for v in values)
    code, _, err = cli(capsys, "predict", diabetes_run, tmp_path / "patients.npy", "--proba", "2")
    assert code == 2 and "classification" in err
    png = _digit_png(tmp_path / "x.png", np.zeros(64))
    code, _, err = cli(capsys, "predict", diabetes_run, png)
    assert code == 2 and "not images" in err and len(err.strip().splitlines()) == 1


# -- errors: one line, naming what was expected ---------------------------------------------
def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_wrong_columns_name_the_expected_ones(digits_run, tmp_path, capsys):
    (tmp_path / "wrong.csv").write_text("sepal_length,sepal_width\n1,2\n")
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "wrong.csv")
    line = _one_line(err)
    assert code == 2 and out == ""
    assert "missing pixel_0_0" in line and "unexpected sepal_length, sepal_width" in line
    assert "expected the 64 columns pixel_0_0" in line


def test_wrong_width_without_header(digits_run, tmp_path, capsys):
    (tmp_path / "short.csv").write_text("1,2,3\n4,5,6\n")
    code, _, err = cli(capsys, "predict", digits_run, tmp_path / "short.csv")
    assert code == 2 and "rows have 3 columns, expected 64 feature columns" in _one_line(err)


def test_wrong_shape_npy(digits_run, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 10)))
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "bad.npy")
    line = _one_line(err)
    assert code == 2 and out == ""
    assert "shape (3, 10)" in line and "expected (n, 64) or (64,) or (n, 8, 8) or (8, 8)" in line


def test_pickled_npy_is_refused(digits_run, tmp_path, capsys):
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    code, out, err = cli(capsys, "predict", digits_run, tmp_path / "objects.npy")
    assert code == 1 and out == ""
    assert "pickled" in _one_line(err) and "refused" in err


def test_unknown_input_type_and_missing_file(digits_run, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = cli(capsys, "predict", digits_run, tmp_path / "notes.txt")
    assert code == 1 and "unknown input type '.txt'" in _one_line(err)
    code, _, err = cli(capsys, "predict", digits_run, tmp_path / "absent.npy")
    assert code == 1 and "input not found" in _one_line(err)


def test_non_numeric_csv_cell_names_line_and_column(digits_run, digits, tmp_path, capsys):
    rows = digits.data[:2].astype(int).astype(str).tolist()
    rows[1][5] = "oops"
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(digits.feature_names)
        w.writerows(rows)
    code, _, err = cli(capsys, "predict", digits_run, tmp_path / "bad.csv")
    assert code == 1 and "file line 3, column 'pixel_0_5': 'oops' is not a number" in _one_line(err)


# -- pictures, in the library --------------------------------------------------------------
def _drawing(light_ink: bool) -> Image.Image:
    img = Image.new("L", (90, 90), 0 if light_ink else 255)
    ImageDraw.Draw(img).ellipse([(25, 10), (65, 80)], outline=255 if light_ink else 0, width=9)
    return img


def test_dark_on_light_and_light_on_dark_read_the_same(tmp_path):
    _drawing(light_ink=False).save(tmp_path / "paper.png")
    _drawing(light_ink=True).save(tmp_path / "screen.png")
    for layout, shape in ((IMAGE_LAYOUTS["digits"], (8, 8)), (IMAGE_LAYOUTS["mnist"], (28, 28))):
        a = read_image(tmp_path / "paper.png", shape, layout)
        b = read_image(tmp_path / "screen.png", shape, layout)
        np.testing.assert_allclose(a, b)
        assert a.shape == shape and a.max() == pytest.approx(layout.pixel_max) and a.min() == 0


def test_mnist_layout_fits_the_digit_in_20_pixels_around_the_centre_of_mass(tmp_path):
    _drawing(light_ink=False).save(tmp_path / "zero.png")
    a = read_image(tmp_path / "zero.png", (28, 28), IMAGE_LAYOUTS["mnist"])
    rows = np.flatnonzero(a.any(axis=1))
    cols = np.flatnonzero(a.any(axis=0))
    assert rows[-1] - rows[0] + 1 <= 21 and cols[-1] - cols[0] + 1 <= 21
    ys, xs = np.indices(a.shape)
    assert abs((ys * a).sum() / a.sum() - 14) <= 1 and abs((xs * a).sum() / a.sum() - 14) <= 1


def test_transparent_background_and_blank_pictures(tmp_path):
    rgba = Image.new("RGBA", (60, 60), (0, 0, 0, 0))  # black ink on a transparent sheet
    ImageDraw.Draw(rgba).line([(30, 5), (30, 55)], fill=(0, 0, 0, 255), width=8)
    rgba.save(tmp_path / "transparent.png")
    a = read_image(tmp_path / "transparent.png", (8, 8), IMAGE_LAYOUTS["digits"])
    assert a.max() == 16 and a[:, 3:5].sum() > 0.9 * a.sum()  # the stroke, centred
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    assert not read_image(tmp_path / "blank.png", (8, 8), IMAGE_LAYOUTS["digits"]).any()
    (tmp_path / "fake.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        read_image(tmp_path / "fake.png", (8, 8))


def test_pictures_need_an_image_run(tmp_path):
    _drawing(False).save(tmp_path / "d.png")
    info = {"n_features": 4, "feature_names": ["a", "b", "c", "d"], "image_shape": None}
    with pytest.raises(ShapeError, match="4 tabular features, not images"):
        read_inputs([tmp_path / "d.png"], info)


MNIST_DIR = Path(os.environ.get("SCRATCHNET_DATA_DIR", "/nonexistent")) / "mnist"


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
                    and not (MNIST_DIR / "t10k-images-idx3-ubyte").exists(),
                    reason="real MNIST not found under $SCRATCHNET_DATA_DIR/mnist")
def test_real_mnist_digits_survive_the_picture_path(tmp_path):
    """MNIST test images saved as pictures come back (nearly) as they were: the layout
    (20x20 box, centre of mass at the middle, 0..255) is MNIST's own."""
    from scratchnet.data import read_idx

    name = "t10k-images-idx3-ubyte"
    path = MNIST_DIR / name if (MNIST_DIR / name).exists() else MNIST_DIR / (name + ".gz")
    images = read_idx(path, ndim=3)[:20]
    same, redrawn = [], []
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        same.append(read_image(tmp_path / f"{i}.png", (28, 28), IMAGE_LAYOUTS["mnist"]))
        # as a person would have it: dark ink on white, five times larger
        big = Image.fromarray(255 - img).resize((140, 140), Image.Resampling.BILINEAR)
        big.save(tmp_path / f"{i}b.png")
        redrawn.append(read_image(tmp_path / f"{i}b.png", (28, 28), IMAGE_LAYOUTS["mnist"]))

    def corr(a, b):
        return np.corrcoef(a.ravel().astype(float), b.ravel())[0, 1]

    assert np.median([corr(a, b) for a, b in zip(images, same, strict=True)]) > 0.99
    assert np.median([corr(a, b) for a, b in zip(images, redrawn, strict=True)]) > 0.9


MNIST_CONFIG = """\
name: tiny_mnist
seed: 1
data: {dataset: mnist, scale: global, validation: 0.05}
model:
  layers:
    - {neurons: 32, activation: tanh}
    - {neurons: 10, activation: linear}
optimizer: {name: sgd_momentum, lr: 0.1, momentum: 0.9}
train: {epochs: 1, batch_size: 64, eval_every: 1}
"""


@pytest.mark.skipif(not os.environ.get("SCRATCHNET_DATA_DIR") or not MNIST_DIR.is_dir(),
                    reason="real MNIST not found under $SCRATCHNET_DATA_DIR/mnist")
def test_predict_pictures_on_a_real_mnist_run(tmp_path, capsys):
    """One epoch on real MNIST (about 2 s), then MNIST test digits as a person would give
    them: dark ink on white, four times larger. They must be read as well as the arrays."""
    from scratchnet.data import read_idx

    run_dir = _train(tmp_path, MNIST_CONFIG)
    found = {p.name.removesuffix(".gz"): p for p in MNIST_DIR.iterdir()}
    images = read_idx(found["t10k-images-idx3-ubyte"], ndim=3)[:30]
    labels = read_idx(found["t10k-labels-idx1-ubyte"], ndim=1)[:30]
    pngs = []
    for i, img in enumerate(images):
        big = Image.fromarray(255 - img).resize((112, 112), Image.Resampling.BILINEAR)
        big.save(tmp_path / f"{i}.png")
        pngs.append(tmp_path / f"{i}.png")
    np.save(tmp_path / "images.npy", images)  # (30, 28, 28): image-shaped arrays work too
    code, out, err = cli(capsys, "predict", run_dir, *pngs, tmp_path / "images.npy", "-f", "json")
    assert code == 0, err
    rows = json.loads(out)
    from_png = np.array([r["prediction"] for r in rows[:30]])
    from_npy = np.array([r["prediction"] for r in rows[30:]])
    assert (from_npy == labels).mean() >= 0.8
    assert (from_png == labels).mean() >= 0.8
    assert (from_png == from_npy).mean() >= 0.8
