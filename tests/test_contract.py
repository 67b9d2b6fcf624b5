"""The config is the contract: what ``validate`` accepts trains, what it refuses ``train``
refuses with the same one line (before any run folder exists), and what a config
promises (restore_best, resuming, extending, the data's place) is what happens."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import scratchnet as sn
from conftest import digits_config, run_cli, write_config
from scratchnet import runs
from scratchnet.config import load_config
from scratchnet.errors import DivergenceError, DropoutRateWarning, ScratchnetError
from scratchnet.experiment import plan_experiment, train_experiment
from scratchnet.experiment.build import (as_samples, build_network, build_optimizer,
                                         early_stopping_of, prepare_data)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUICK = CONFIGS / "digits_quickstart.yaml"
DIABETES = CONFIGS / "diabetes_linear.yaml"


def invalid_everywhere(main_here, tmp_path, config, *options) -> str:
    """``validate`` and ``train`` both refuse with the same single line, exit 2, and no
    run folder is made. Returns the line."""
    rc, out, err = main_here("validate", config, *options)
    assert rc == 2 and out == "", (rc, out, err)
    lines = [line for line in err.strip().splitlines()]
    assert lines and all(line.startswith("invalid: ") for line in lines), err
    first = lines[0][len("invalid: "):]
    rc, out, err = main_here("train", config, *options, "--out", tmp_path / "runs", "-q")
    assert rc == 2 and err.strip() == f"error: {first}", err
    assert not (tmp_path / "runs").exists()
    return first


# -- the examples, each a one-line error naming file, line, key and value ---------
@pytest.mark.parametrize("options, where, says", [
    (["--set", "optimizer.lr=1e-3"], "digits_quickstart.yaml:18: optimizer.decay.final_lr",
     "final_lr must be at most lr=0.001, got 0.01"),
    (["--set", "model.layers.1.neurons=3"],
     "(--set model.layers.1.neurons=3): model.layers.1.neurons",
     "got 3: the output layer needs 10 units for the 10 classes of digits"),
    (["--set", "optimizer.decay.step_size=3"], "optimizer.decay.step_size",
     "unknown key 'step_size'; expected one of: final_lr, warmup_epochs, type"),
    (["--set", "optimizer.decay.type=exponential", "--set", "optimizer.decay.final_lr=0"],
     "optimizer.decay.final_lr", "final_lr must be a number > 0, got 0"),
    (["--set", "model.layers.0.activation={name: leaky_relu, negative_slope: -1}"],
     "model.layers.0.activation.negative_slope", "negative_slope must be a number >= 0, got -1"),
    (["--set", "model.layers.0.activation={name: leaky_relu, negative_slope: .nan}"],
     "model.layers.0.activation.negative_slope", "negative_slope must be a number >= 0, got nan"),
    (["--set", "model.loss={name: huber, delta: -1}"], "model.loss.delta",
     "delta must be a number > 0, got -1"),
    (["--set", "optimizer.decay={type: plateau, threshold: 1.5}"], "optimizer.decay.threshold",
     "threshold must be a number in [0, 1), got 1.5"),
    (["--set", "seed=-1"], "seed", "got -1"),
    (["--set", "model.layers.0.neurons=1000000000"], "model.layers.0.neurons",
     "training would need about"),
    (["--set", "model.loss=binary_cross_entropy"], "model.loss",
     "it needs two classes, and digits has 10"),
])
def test_examples_are_refused_before_training(main_here, tmp_path, options, where, says):
    line = invalid_everywhere(main_here, tmp_path, QUICK, *options)
    assert where in line and says in line, line


def test_a_classification_loss_on_a_regression_set(main_here, tmp_path):
    line = invalid_everywhere(main_here, tmp_path, DIABETES, "--set",
                              "model.loss=softmax_cross_entropy")
    assert "model.loss: got 'softmax_cross_entropy': a classification loss, but diabetes is " \
           "a regression set; expected mse, mae or huber" in line


def test_validate_lists_every_mistake_in_a_file(main_here):
    rc, out, err = main_here("validate", QUICK, "--set", "optimizer.decay.step_size=3",
                             "--set", "model.layers.0.activation={name: elu, alpha: 0}",
                             "--set", "model.loss={name: huber, delta: -1}")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    for key in ("model.layers.0.activation", "model.loss", "optimizer.decay.step_size"):
        assert sum(key in line for line in lines) == 1, (key, err)


def test_a_key_given_twice_names_both_lines(main_here, tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(QUICK.read_text() + "seed: 4\n", encoding="utf-8")
    line = invalid_everywhere(main_here, tmp_path, path)
    seed_line = QUICK.read_text().splitlines().index(next(
        text for text in QUICK.read_text().splitlines() if text.startswith("seed:"))) + 1
    last = len(path.read_text().splitlines())
    assert f"twice.yaml:{last}: invalid YAML: key 'seed' is given twice, at lines " \
           f"{seed_line} and {last}" in line


def test_a_huge_batch_is_one_batch_per_epoch(tmp_path):
    cfg = load_config(QUICK, ["train.batch_size=1000000000", "train.epochs=2"])
    plan = plan_experiment(cfg)
    usual = plan_experiment(load_config(QUICK)).memory["total"]
    assert plan.memory["total"] < usual + 50 * 2**20  # no billion-row buffer planned...
    result = train_experiment(cfg, out=tmp_path)  # ...nor allocated
    assert result.status == "completed" and result.summary["epochs_run"] == 2


def test_the_plan_describes_the_data_without_loading_it():
    from scratchnet.data import DATASETS, Description, describe_dataset, load_dataset

    for name, source in DATASETS.items():
        if "path" in source.options:
            continue  # a file's description is the file read (MNIST's: tested below)
        told = describe_dataset(name, test_fraction=0.25, seed=5)
        real = Description.of(load_dataset(name, test_fraction=0.25, seed=5))
        for field in ("task", "n_train", "n_test", "n_features", "n_classes", "image_shape"):
            assert getattr(told, field) == getattr(real, field), (name, field)


@pytest.mark.skipif(not (Path(__import__("os").environ.get("SCRATCHNET_DATA_DIR", "/x"))
                         / "mnist").is_dir(), reason="needs MNIST")
def test_mnist_is_described_as_it_loads():
    from scratchnet.data import Description, describe_dataset, load_dataset

    told, real = describe_dataset("mnist"), Description.of(load_dataset("mnist"))
    assert (told.n_train, told.n_test, told.n_features, told.n_classes, told.image_shape) == \
        (real.n_train, real.n_test, real.n_features, real.n_classes, real.image_shape)


def test_the_planned_rows_are_the_prepared_rows(tmp_path):
    from scratchnet.experiment import prepare_data

    for options in ([], ["data.validation=0.25"], ["data.validation=test"],
                    ["data.dataset=iris", "model.layers.1.neurons=3"]):
        cfg = load_config(QUICK, options)
        plan, data = plan_experiment(cfg), prepare_data(cfg)
        assert (plan.n_train, plan.n_val) == (len(data.X_train), len(data.X_val)), options


# -- losses and tasks ------------------------------------------------------------------
BCE = {"name": "bce", "seed": 2, "data": {"dataset": "breast_cancer"},
       "model": {"layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 1}],
                 "loss": "binary_cross_entropy"},
       "optimizer": {"name": "adam", "lr": 0.01}, "train": {"epochs": 5, "batch_size": 32}}


def test_binary_cross_entropy_trains_from_yaml_and_every_command_reads_it(tmp_path, main_here):
    config = write_config(tmp_path, "bce", raw=BCE)
    rc, out, err = main_here("train", config, "--json", "-q", "--out", "runs")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["test"]["accuracy"] > 0.9
    run = tmp_path / summary["run_dir"]
    info = runs.read_json(run / runs.DATA)
    assert info["targets"] == "binary" and info["n_outputs"] == 1
    rc, out, err = main_here("eval", run, "--json", "--proba", "2", "--examples", "3")
    assert rc == 0, err
    report = json.loads(out)
    assert report["test"] == summary["test"]
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (2, 2)
    assert np.trace(cm) / cm.sum() == pytest.approx(summary["test"]["accuracy"])
    assert len(report["examples"]) == 3
    for row in report["examples"]:  # the same rows as predict --proba gives
        probabilities = [e["probability"] for e in row["top"]]
        assert len(probabilities) == 2 and sum(probabilities) == pytest.approx(1)
        assert row["prediction"] == row["top"][0]["class"]
    from sklearn.datasets import load_breast_cancer
    X = load_breast_cancer().data[:4]
    np.save(tmp_path / "rows.npy", X)
    rc, out, err = main_here("predict", run, tmp_path / "rows.npy", "--format", "json",
                             "--proba", "2")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["prediction"] for r in rows] == [r["top"][0]["class"] for r in rows]
    assert {r["prediction"] for r in rows} <= {"malignant", "benign"}


def test_the_classifier_estimator_takes_binary_cross_entropy():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    from scratchnet.sklearn import ScratchNetClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = ScratchNetClassifier(loss="binary_cross_entropy", epochs=10, random_state=0).fit(X, y)
    assert clf.network_.n_outputs == 1 and clf.predict_proba(X).shape == (len(X), 2)
    assert clf.score(X, y) > 0.95
    with pytest.raises(ValueError, match="needs two classes"):
        ScratchNetClassifier(loss="binary_cross_entropy").fit(X[:30], np.arange(30) % 3)


# -- what early stopping promises --------------------------------------------------------
@pytest.mark.parametrize("early_stopping", [False, {"patience": 50, "restore_best": False}])
def test_without_restore_best_the_last_weights_are_tested_and_saved(tmp_path, early_stopping):
    raw = digits_config(name="last", optimizer={"lr": 0.5},  # a rate that makes it wander
                        train={"epochs": 6, "early_stopping": early_stopping})
    result = train_experiment(load_config(write_config(tmp_path, raw=raw)), out=tmp_path / "runs")
    history = result.history
    assert result.summary["weights"] == "last"
    assert history.best_epoch is not None  # the best is still recorded
    saved, meta = runs.load_arrays(result.run_dir / runs.WEIGHTS)
    assert meta["epoch"] == 6
    for name, value in result.net.state_dict().items():
        np.testing.assert_array_equal(saved[name], value)
    # the test metrics are those of these last weights
    assert result.summary["test"]["loss"] == pytest.approx(
        sn.evaluate(result.net, result.data.X_test, result.data.Y_test)["loss"])


def test_with_restore_best_the_best_weights_are_tested_and_saved(tmp_path):
    raw = digits_config(name="best", optimizer={"lr": 0.5},
                        train={"epochs": 6, "early_stopping": {"patience": 50}})
    result = train_experiment(load_config(write_config(tmp_path, raw=raw)), out=tmp_path / "runs")
    _, meta = runs.load_arrays(result.run_dir / runs.WEIGHTS)
    assert result.summary["weights"] == "best" and meta["epoch"] == result.history.best_epoch


# -- divergence beyond NaN ------------------------------------------------------------------
def test_an_exploding_loss_is_divergence(main_here, tmp_path):
    rc, out, err = main_here("train", QUICK, "--set", "optimizer.lr=1e9", "-q", "--out", "runs")
    assert rc == 1, err
    [line] = err.strip().splitlines()
    assert "training diverged: the training loss of epoch 1 is" in line
    assert "more than 1000 times its starting value" in line
    (run,) = (tmp_path / "runs").iterdir()
    assert runs.read_json(run / runs.SUMMARY)["status"] == "diverged"


def test_a_fit_from_earlier_weights_has_no_start_to_explode_from():
    data = np.random.default_rng(0).standard_normal((64, 3))
    y = data[:, :1] * 3
    net = sn.NeuralNetwork([sn.Dense(1)], "mse", seed=0, dtype="float64")
    trainer = sn.Trainer(net, sn.SGD(0.01))
    trainer.fit(data, y, epochs=3, batch_size=16, seed=1)
    # continued on new targets: its losses are far above what this network started at,
    # but a continued fit has no fresh start to measure from, so even factor 1 allows it
    trainer.divergence_factor = 1.0
    history = trainer.fit(data, y * 5, epochs=2, batch_size=16, seed=2, restart=False)
    assert history.epochs_run == 2
    with pytest.raises(DivergenceError, match=r"epoch \d+ is .*, more than 1000 times its "
                                              "starting value"):
        sn.Trainer(net, sn.SGD(1.5)).fit(data, y, epochs=20, batch_size=16, seed=2)


# -- resuming and extending --------------------------------------------------------------
def test_resume_needs_no_config_and_refuses_fewer_epochs(tmp_path, main_here):
    config = write_config(tmp_path, "short", train={"epochs": 3})
    rc, out, err = main_here("train", config, "-q", "--out", "runs")
    assert rc == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    rc, out, err = main_here("train", "--resume", run)
    assert rc == 2 and "nothing to resume" in err and "--set train.epochs=N" in err
    rc, out, err = main_here("train", "--resume", run, "--set", "train.epochs=2")
    assert rc == 2 and "fewer than the run's 3" in err, err
    rc, out, err = main_here("train", "--resume", run, "--set", "optimizer.lr=0.5")
    assert rc == 2 and "differs from the run's saved config at optimizer.lr" in err, err


def test_extending_a_finished_run_writes_a_new_folder_from_its_final_state(tmp_path, main_here):
    decay = {"type": "linear", "final_lr": 0.01}
    config = write_config(tmp_path, "ext", optimizer={"lr": 0.1, "decay": decay},
                          train={"epochs": 4, "eval_every": 1,
                                 "early_stopping": {"patience": 10}})
    assert main_here("train", config, "-q", "--out", "runs")[0] == 0
    (old,) = (tmp_path / "runs").iterdir()
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    rc, out, err = main_here("train", "--resume", old, "--set", "train.epochs=7", "--json")
    assert rc == 0, err
    assert f"extending {old} to 7 epochs in a new run folder" in err
    summary = json.loads(out)
    new = Path(summary["run_dir"])
    assert new != old and new.parent == old.parent
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before  # untouched
    cfg = yaml.safe_load((new / runs.CONFIG).read_text())
    assert cfg["train"]["epochs"] == 7
    assert not set(cfg["train"]) & {"schedule_epochs", "extends"}  # in extends.json
    lineage = json.loads((new / runs.EXTENDS).read_text())
    assert lineage == {"extends": str(old.resolve()), "schedule_epochs": 4}
    assert summary["extends"] == str(old.resolve())
    rates = [r["lr"] for r in runs.read_metrics(new)]
    assert rates[:4] == pytest.approx([0.1, 0.07, 0.04, 0.01])
    assert rates[4:] == pytest.approx([0.01] * 3)
    rc, out, err = main_here("eval", new, "--json")
    assert rc == 0 and "edited" not in err
    # the same as a fit of 7 epochs planned that way from the start
    straight = load_config(new / runs.CONFIG)
    data = prepare_data(straight, lazy=True)
    shape = json.loads((new / runs.DATA).read_text())["input_shape"]
    net = build_network(straight, shape)
    trainer = sn.Trainer(net, build_optimizer(straight, 4))
    trainer.fit(as_samples(data.X_train, shape), data.Y_train, as_samples(data.X_val, shape),
                data.Y_val, epochs=7, eval_every=1,
        batch_size=straight.train.batch_size, seed=straight.seed, schedule_epochs=4,
        early_stopping=early_stopping_of(straight))
    a, _ = runs.load_arrays(new / runs.WEIGHTS)
    b = net.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class StopSoon(sn.Callback):
    def on_batch_end(self, trainer, epoch, batch, n_batches, loss):
        trainer.stop_requested = batch >= 3


@pytest.mark.slow
def test_two_resumes_of_one_folder_cannot_both_write(tmp_path):
    """A second process resuming a folder that another is training is refused at once,
    and nothing of the folder changes; the lock goes with its process."""
    cfg = load_config(write_config(tmp_path, "twice", train={"epochs": 2}))
    result = train_experiment(cfg, out=tmp_path / "runs", callbacks=[StopSoon()])
    assert result.status == "interrupted"
    run = result.run_dir
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with runs.locked(run):  # this process holds it, as a training process would
        rc, out, err = run_cli(["train", "--resume", str(run)], tmp_path)
        assert rc == 1, err
        assert f"{run}: another process (pid {__import__('os').getpid()}) is training this " \
               "run folder" in err and "Traceback" not in err
        with pytest.raises(ScratchnetError, match="another process"):
            with runs.locked(run):
                pass
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    rc, out, err = run_cli(["train", "--resume", str(run), "-q"], tmp_path)  # free again
    assert rc == 0, err
    assert not (run / runs.LOCK).exists()


# -- where the data came from --------------------------------------------------------------
@pytest.mark.skipif(not (Path(__import__("os").environ.get("SCRATCHNET_DATA_DIR", "/x"))
                         / "mnist").is_dir(), reason="needs MNIST")
@pytest.mark.slow
def test_a_run_remembers_where_its_data_was(tmp_path):
    import os
    data_dir = Path(os.environ["SCRATCHNET_DATA_DIR"])
    env = {"SCRATCHNET_DATA_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}
    raw = {"name": "m", "data": {"dataset": "mnist", "validation": "test", "scale": "global"},
           "model": {"layers": [{"neurons": 10}]}, "optimizer": {"lr": 0.05},
           "train": {"epochs": 1, "batch_size": 500}}
    config = write_config(tmp_path, "m", raw=raw)
    rc, out, err = run_cli(["train", config.name, "-q", "--json", "--data-dir", data_dir,
                            "--out", "runs"], tmp_path, env=env)
    assert rc == 0, err
    run = Path(json.loads(out)["run_dir"])
    rc, out, err = run_cli(["eval", run, "--json"], tmp_path, env=env)  # no --data-dir
    assert rc == 0, err
    rc, out, err = run_cli(["plot", run, "-o", "c.png"], tmp_path, env=env)
    assert rc == 0, err


def test_the_data_folder_variable_searches_like_the_option(tmp_path, monkeypatch):
    from scratchnet.data import candidate_dirs

    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(tmp_path))
    dirs = candidate_dirs("mnist")
    assert dirs[:2] == [tmp_path / "mnist", tmp_path]
    assert candidate_dirs("mnist", data_dir=tmp_path)[:2] == dirs[:2]


# -- for readers of the book ------------------------------------------------------------
def test_a_keep_probability_from_the_book_gets_a_warning():
    with pytest.warns(DropoutRateWarning, match="drop rate.*keep probability.*dropout=0.2"):
        sn.Dense(10, dropout=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sn.Dense(10, dropout=0.2)
        load_config(QUICK, ["model.layers.0.dropout=0.8"])  # a config means what it says
        plan_experiment(load_config(QUICK, ["model.layers.0.dropout=0.8"]))


def test_integer_labels_get_a_hint_to_one_hot():
    net = sn.NeuralNetwork([sn.Dense(3)], "softmax_cross_entropy", seed=0)
    X, labels = np.zeros((6, 2)), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(sn.ShapeError, match=r"one_hot\(labels, n_classes\)"):
        sn.Trainer(net, sn.SGD(0.1)).fit(X, labels, epochs=1)


def test_every_shipped_config_plans(main_here):
    for path in sorted(CONFIGS.glob("*.yaml")):
        if "boston" in path.name:
            continue  # needs the user's CSV file: tests/test_configs.py trains them
        plan = plan_experiment(cfg := load_config(path))
        assert plan.n_params == sum(r["params"] for r in plan.layers) > 0, path
        assert plan.schedule.epochs == cfg.train.epochs



def _cnn(first: dict, second: dict | None = None) -> list[str]:
    """``--set`` options for a digits CNN: ``first`` conv2d, then ``second`` (if any),
    flattened into the 10 outputs, trained on every row at once."""
    convs = [{"type": "conv2d", "kernel_size": 3, "padding": "same", **first}]
    if second is not None:
        convs.append({"type": "conv2d", "padding": "same", **second})
    layers = [*convs, {"type": "flatten"}, {"neurons": 10, "activation": "linear"}]
    return ["--set", f"model.layers={json.dumps(layers)}", "--set", "train.batch_size=100000"]


def test_a_memory_refusal_names_the_conv_key_at_fault(main_here, tmp_path):
    """A convolution too wide for this machine: its out_channels; one whose columns are
    the bulk (many input channels, a wide kernel): its kernel_size; never ``neurons``,
    which a conv layer does not have. Sized from this machine's memory, so that it is
    refused on any machine."""
    from scratchnet.experiment.plan import physical_memory

    # a training pass holds at least 4 bytes for each of a digit's 64 positions of each
    # channel, for each of the 1,293 training rows
    channels = 2 * physical_memory() // (1293 * 64 * 4) + 1
    line = invalid_everywhere(main_here, tmp_path, QUICK,
                              *_cnn({"out_channels": channels}))
    assert "model.layers.0.out_channels: training would need about" in line, line
    assert "layer 0 takes most of it" in line
    # the second convolution's columns: its input channels x 7 x 7 at each position
    channels = 2 * physical_memory() // (1293 * 64 * 49 * 4) + 1
    line = invalid_everywhere(main_here, tmp_path, QUICK, *_cnn(
        {"out_channels": channels, "kernel_size": 1}, {"out_channels": 1, "kernel_size": 7}))
    assert "model.layers.1.kernel_size: training would need about" in line, line
    assert "layer 1 takes most of it" in line
