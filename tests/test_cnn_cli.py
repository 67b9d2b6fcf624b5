"""Convolutional networks from experiment files, through every command: layer types with
their own schemas, shapes checked at validation, images in their shape for the network,
flat rows for a dense one, and the run read back by eval, predict, gradcheck, sweep,
resume, export and the estimators."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

import scratchnet as sn
from conftest import digits_config, run_cli, write_config
from scratchnet import runs
from scratchnet.config import load_config
from scratchnet.experiment import plan_experiment, train_experiment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CNN = [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "relu"},
       {"type": "max_pool2d", "size": 2},
       {"type": "flatten"},
       {"type": "dense", "neurons": 10}]


def cnn_config(**sections) -> dict:
    """The tiny digits experiment with a convolution first (``sections`` merged in)."""
    return digits_config(**{"name": "cnn", "model": {"layers": CNN},
                            "optimizer": {"name": "adam", "lr": 0.01, "momentum": None},
                            **sections})


def refused(main_here, tmp_path, raw: dict) -> list[str]:
    path = tmp_path / "cnn.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    rc, out, err = main_here("validate", path)
    assert rc == 2 and out == "", err
    rc, _, err2 = main_here("train", path, "-q", "--out", tmp_path / "runs")
    assert rc == 2 and not (tmp_path / "runs").exists()
    assert err2.strip() == "error: " + err.strip().splitlines()[0][len("invalid: "):]
    return err.strip().splitlines()


def layers(*entries) -> dict:
    return cnn_config(model={"layers": list(entries)})


@pytest.mark.parametrize("raw, says", [
    (layers({"type": "conv2d", "out_channels": 4, "kernel_size": 9, "padding": "valid"},
            {"type": "flatten"}, {"neurons": 10}),
     ["cnn.yaml:", "model.layers.0: ", "kernel 9x9 is larger than its padded input 8x8"]),
    (layers({"type": "conv2d", "out_channels": 4, "kernel_size": 3},
            {"type": "max_pool2d", "size": 9}, {"type": "flatten"}, {"neurons": 10}),
     ["model.layers.1: ", "pool 9x9 does not fit its input 8x8"]),
    (layers({"type": "conv2d", "out_channels": 4, "kernel_size": 3}, {"neurons": 10}),
     ["model.layers.1: ", "add a flatten layer before this dense layer"]),
    (layers({"type": "conv2d", "out_channels": 4, "kernel_sise": 3}, {"type": "flatten"},
            {"neurons": 10}),
     ["model.layers.0.kernel_sise: unknown key 'kernel_sise' (did you mean 'kernel_size'?)"]),
    (layers({"type": "conv3d", "out_channels": 4}, {"neurons": 10}),
     ["model.layers.0.type: unknown layer type 'conv3d' (did you mean 'conv2d'?); expected one of: "
      "dense, conv2d, max_pool2d, avg_pool2d, flatten"]),
    (layers({"type": "max_pool2d", "size": 0}, {"type": "flatten"}, {"neurons": 10}),
     ["model.layers.0.size: ", "size must be an integer in [1, 2147483647]"]),
    (cnn_config(data={"dataset": "iris"}),
     ["data.shape: ", "iris has flat rows of 4 values and model.layers.0 takes images"]),
    (cnn_config(data={"shape": [1, 4, 4]}),
     ["data.shape: got [1, 4, 4]: 16 values a row, but the rows of digits hold 64"]),
])
def test_shapes_and_layer_keys_are_checked_at_validation(main_here, tmp_path, raw, says):
    lines = refused(main_here, tmp_path, raw)
    assert any(all(part in line for part in says) for line in lines), lines


def test_show_prints_every_layers_output_shape(main_here):
    rc, out, err = main_here("show", CONFIGS / "mnist_cnn.yaml")
    assert rc == 0, err
    for shape in ("1 x 28 x 28", "32 x 28 x 28", "32 x 14 x 14", "64 x 7 x 7", "3136"):
        assert shape in out
    assert "421,706" in out  # the total, without building the network


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("cnn")
    rc, out, err = run_cli(["train", CONFIGS / "digits_cnn.yaml", "--json", "-q", "--out", "runs"],
                           work)
    assert rc == 0, err
    return work, Path(work / json.loads(out)["run_dir"]), json.loads(out)


def test_digits_cnn_trains_and_eval_reads_it_back(cnn_run, main_here):
    work, run, summary = cnn_run
    assert summary["test"]["accuracy"] > 0.95
    info = runs.read_json(run / runs.DATA)
    assert info["input_shape"] == [1, 8, 8]
    rc, out, err = main_here("eval", run, "--json")
    assert rc == 0, err
    test = json.loads(out)["test"]  # in float32: BLAS's thread count may move the last digits
    assert test["accuracy"] == summary["test"]["accuracy"]
    assert test["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)


def test_predict_feeds_images_to_a_cnn_run(cnn_run, main_here, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    _, run, _ = cnn_run
    digits = load_digits()
    np.save(tmp_path / "rows.npy", digits.data[:20])
    np.save(tmp_path / "images.npy", digits.images[:20])
    rc, out, err = main_here("predict", run, tmp_path / "rows.npy", tmp_path / "images.npy",
                             "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    first, second = [r["prediction"] for r in rows[:20]], [r["prediction"] for r in rows[20:]]
    assert first == second and np.mean(np.array(first) == digits.target[:20]) >= 0.9
    picture = Image.fromarray((255 - digits.images[0] * 255 / 16).astype(np.uint8)).resize((64, 64))
    picture.save(tmp_path / "zero.png")
    rc, out, err = main_here("predict", run, tmp_path / "zero.png", "--format", "json")
    assert rc == 0 and json.loads(out)[0]["prediction"] == 0, (out, err)


def test_gradcheck_passes_through_the_convolutions(main_here):
    rc, out, err = main_here("gradcheck", CONFIGS / "digits_cnn.yaml", "--json", "--batch", "4",
                             "--entries", "20")
    assert rc == 0, err
    report = json.loads(out)
    assert report["passed"] and {r["param"] for r in report["params"]} >= {"layers.0.W",
                                                                            "layers.2.gamma"}


def test_a_sweep_over_a_cnn(main_here, tmp_path):
    config = write_config(tmp_path, "cnn", raw=cnn_config(train={"epochs": 2}))
    rc, out, err = main_here("sweep", config, "--grid", "model.layers.0.out_channels=2,4",
                             "--jobs", "1", "--json", "--out", "sweeps")
    assert rc == 0, err
    table = json.loads(out)
    assert [r["status"] for r in table["points"]] == ["ok", "ok"]


class StopSoon(sn.Callback):
    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        trainer.stop_requested = epoch == 1 and batch >= 5


def test_a_cnn_run_resumes_bit_for_bit(tmp_path):
    cfg = load_config(write_config(tmp_path, "cnn", raw=cnn_config(train={"epochs": 3})))
    whole = train_experiment(cfg, out=tmp_path / "a")
    part = train_experiment(cfg, out=tmp_path / "b", callbacks=[StopSoon()])
    assert part.status == "interrupted"
    rest = train_experiment(cfg, resume=part.run_dir)
    a, _ = runs.load_arrays(whole.run_dir / runs.WEIGHTS)
    b, _ = runs.load_arrays(rest.run_dir / runs.WEIGHTS)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_npz_data_flat_or_as_images(main_here, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((300, 1, 6, 6))
    labels = (images[:, 0, :3].mean(axis=(1, 2)) > images[:, 0, 3:].mean(axis=(1, 2))).astype(int)
    np.savez(tmp_path / "images.npz", x_train=images[:200], y_train=labels[:200],
             x_test=images[200:], y_test=labels[200:])
    np.savez(tmp_path / "flat.npz", x_train=images[:200].reshape(200, -1), y_train=labels[:200],
             x_test=images[200:].reshape(100, -1), y_test=labels[200:])
    model = {"layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3,
                         "activation": "relu"}, {"type": "flatten"}, {"neurons": 2}]}
    cnn = cnn_config(data={"dataset": "npz", "path": str(tmp_path / "images.npz")}, model=model)
    plan = plan_experiment(load_config(write_config(tmp_path, "a", raw=cnn)))
    assert plan.input_shape == (1, 6, 6)
    dense = cnn_config(data={"dataset": "npz", "path": str(tmp_path / "flat.npz")},
                       model={"layers": [{"neurons": 8}, {"neurons": 2}]})
    shaped = cnn_config(data={"dataset": "npz", "path": str(tmp_path / "flat.npz"),
                              "shape": [1, 6, 6]}, model=model)
    for stem, raw in (("a", cnn), ("b", dense), ("c", shaped)):
        rc, out, err = main_here("train", write_config(tmp_path, stem, raw=raw), "--json", "-q",
                                 "--out", tmp_path / "runs")
        assert rc == 0, (stem, err)
        assert json.loads(out)["test"]["accuracy"] > 0.5
    np.savez(tmp_path / "pickled.npz", x_train=np.array([{"a": 1}], dtype=object),
             y_train=np.zeros(1), x_test=np.zeros((1, 1)), y_test=np.zeros(1))
    bad = cnn_config(data={"dataset": "npz", "path": str(tmp_path / "pickled.npz")})
    rc, out, err = main_here("validate", write_config(tmp_path, "d", raw=bad))
    assert rc == 2 and "holds Python objects" in err and "refused" in err


def test_csv_rows_become_images_with_data_shape(main_here, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    lines = [",".join([f"p{i}" for i in range(64)] + ["digit"])]
    lines += [",".join([str(int(v)) for v in row] + [str(t)])
              for row, t in zip(digits.data[:600], digits.target[:600], strict=True)]
    (tmp_path / "digits.csv").write_text("\n".join(lines) + "\n")
    raw = cnn_config(data={"dataset": "csv", "path": str(tmp_path / "digits.csv"),
                           "target": "digit", "shape": [1, 8, 8]}, train={"epochs": 4})
    rc, out, err = main_here("train", write_config(tmp_path, "csv", raw=raw), "--json", "-q",
                             "--out", tmp_path / "runs")
    assert rc == 0, err
    assert json.loads(out)["test"]["accuracy"] > 0.7


def test_the_estimators_take_conv_layers_and_an_input_shape():
    from sklearn.base import clone
    from sklearn.datasets import load_digits

    from scratchnet.sklearn import ScratchNetClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16
    clf = ScratchNetClassifier(layers=[*CNN[:3], {"neurons": 16, "activation": "relu"}],
                               input_shape=(1, 8, 8), learning_rate=0.01, epochs=8,
                               random_state=0)
    clf.fit(X[:1400], y[:1400])
    assert clf.network_.input_shape == (1, 8, 8) and clf.score(X[1400:], y[1400:]) > 0.85
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[1400:]), clf.predict_proba(X[1400:]))
    assert clone(clf).get_params()["input_shape"] == (1, 8, 8)
    with pytest.raises(ValueError, match="input_shape"):
        ScratchNetClassifier(layers=CNN[:3], input_shape=(1, 4, 4)).fit(X[:50], y[:50])
