"""``early_stopping="notebook"``: the study notebook's trainer, stop for stop. At the first
evaluation E that does not improve it puts back the copy it took at the *start* of epoch
E (the weights after epoch E - 1), a run that never stops keeps its last weights, and
checkpoints still resume bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

import scratchnet as sn
from conftest import write_config
from scratchnet.runs import load_arrays
from test_trainer import StopAt, assert_same_weights, digits_split


@pytest.fixture(scope="module")
def digits():
    return digits_split()


class EpochEnds(sn.Callback):
    """The network's weights after every epoch, by the number of epochs trained."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, trainer, epoch):
        self.weights[epoch + 1] = trainer.net.state_dict()


def overfitting_trainer():
    net = sn.NeuralNetwork([sn.Dense(64, sn.Tanh()), sn.Dense(10)], sn.SoftmaxCrossEntropy(),
                           seed=0)
    return sn.Trainer(net, sn.SGDMomentum(0.1, momentum=0.9))


def fit(trainer, data, early_stopping, **kwargs):
    """Thirty training images, validated on the same thirty with every label moved to the
    next class: learning the training labels is moving away from the validation ones, so
    the validation loss rises from one evaluation to the next whatever the BLAS kernel
    (measured: 8.0 at epoch 3, 10.8 at epoch 6), and the notebook's rule stops at 6."""
    X_train, Y_train, *_ = data
    X, Y = X_train[:30], Y_train[:30]
    args = dict(epochs=40, eval_every=3, batch_size=10, seed=0) | kwargs
    return trainer.fit(X, Y, X, np.roll(Y, 1, axis=1), early_stopping=early_stopping, **args)


def test_the_stopper_alone():
    w = np.zeros(2)
    arrays = {"w": w}
    stopper = sn.EarlyStopping.of("notebook")
    assert isinstance(stopper, sn.NotebookStopping) and stopper.keeps == "notebook"
    for epoch, loss in [(0, 1.0), (1, 0.5)]:  # epochs 1 and 2 evaluate and improve
        stopper.start_epoch(epoch, arrays, evaluates=True)
        w[:] = epoch + 1  # training the epoch
        assert stopper.update(epoch + 1, loss, arrays) is False
    stopper.start_epoch(2, arrays, evaluates=False)  # epoch 3 is not evaluated: no copy
    w[:] = 3
    stopper.start_epoch(3, arrays, evaluates=True)  # the copy: weights after epoch 3
    w[:] = 4
    assert stopper.update(4, 0.5, arrays) is True  # equal is not better: stop
    assert stopper.best_epoch == 2 and stopper.best == 0.5
    epoch, kept = stopper.final_weights(stopped=True)
    assert epoch == 3 and np.array_equal(kept["w"], [3, 3])  # never evaluated
    assert stopper.final_weights(stopped=False) is None  # a full run keeps its last weights


def test_an_evaluation_the_notebook_would_not_make_changes_nothing():
    arrays = {"w": np.zeros(1)}
    stopper = sn.NotebookStopping()
    stopper.start_epoch(1, arrays, evaluates=True)
    assert stopper.update(2, 1.0, arrays) is False
    # the trainer's extra evaluation at the last epoch, off the eval_every grid
    assert stopper.update(3, 9.0, arrays) is False
    assert (stopper.best_epoch, stopper.best, stopper.wait) == (2, 1.0, 0)


def test_it_puts_back_the_weights_after_epoch_e_minus_1(digits):
    ends = EpochEnds()
    notebook = overfitting_trainer()
    history = fit(notebook, digits, "notebook", callbacks=[ends])
    assert history.stopped_early
    stop = history.epochs_run  # E: the first evaluation that did not improve
    assert stop % 3 == 0 and history.best_epoch == stop - 3
    val = {r["epoch"]: r["val_loss"] for r in history}
    assert val[stop] >= val[stop - 3] == history.best_val_loss
    assert history.weights_epoch == stop - 1
    assert_same_weights_to(notebook.net, ends.weights[stop - 1])
    # the same run under the default rule puts back the previous evaluation's weights
    ours = overfitting_trainer()
    mine = fit(ours, digits, True)
    assert (mine.epochs_run, mine.best_epoch, mine.weights_epoch) == (stop, stop - 3, stop - 3)
    assert_same_weights_to(ours.net, ends.weights[stop - 3])


def assert_same_weights_to(net, state):
    final = net.state_dict()
    assert final.keys() == state.keys()
    for name in final:
        assert np.array_equal(final[name], state[name]), name


def test_a_run_that_never_stops_keeps_its_last_weights(digits):
    """epochs=5, eval_every=3: the notebook evaluates once, at 3 (its first evaluation
    cannot stop it), the trainer also at 5; whatever the loss at 5, the notebook's trainer
    ends with the weights after epoch 5."""
    ends = EpochEnds()
    trainer = overfitting_trainer()
    history = fit(trainer, digits, "notebook", epochs=5, callbacks=[ends])
    assert [r["epoch"] for r in history] == [3, 5]
    assert not history.stopped_early and history.epochs_run == 5
    assert history.weights_epoch == 5 and history.best_epoch == 3
    assert_same_weights_to(trainer.net, ends.weights[5])


@pytest.mark.parametrize("stop_epoch, stop_batch", [(5, 1), (3, 2), (4, -1)])
def test_resume_is_bit_identical(digits, stop_epoch, stop_batch):
    """Interrupted inside an evaluation epoch (after its copy), between two, or at the end
    of one: the copy travels in the checkpoint."""
    full = overfitting_trainer()
    expected = fit(full, digits, "notebook")
    first = overfitting_trainer()
    partial = fit(first, digits, "notebook", callbacks=[StopAt(stop_epoch, stop_batch)])
    assert partial.interrupted
    meta, arrays = first.checkpoint()
    meta = json.loads(json.dumps(meta))  # as a run folder stores it
    second = overfitting_trainer()
    resumed = fit(second, digits, "notebook", resume=(meta, arrays))
    assert (resumed.epochs_run, resumed.weights_epoch, resumed.stopped_early) == \
        (expected.epochs_run, expected.weights_epoch, True)
    assert_same_weights(full.net, second.net)


# -- from an experiment file -----------------------------------------------------------------
#: a learning rate far below float32's resolution of the weights (1e-30 against weights
#: near 0.1): the network's outputs, and so the validation loss, come out the same at every
#: evaluation, so the second one (epoch 4) does not improve on the first, on every CPU
NOTEBOOK_RUN = dict(optimizer={"lr": 1e-30}, train={"epochs": 30, "eval_every": 2,
                                                    "early_stopping": "notebook"})


def test_a_run_folder_keeps_and_tests_the_notebooks_weights(cli, tmp_path):
    """The validation loss first fails to improve at epoch 4 (best 2), so the run keeps
    the weights after epoch 3, tests them and saves them."""
    config = write_config(tmp_path, "nb", **NOTEBOOK_RUN)
    rc, out, err = cli("train", config, "--json", "--quiet")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["config"]["train"]["early_stopping"] == "notebook"
    assert (summary["weights"], summary["stopped_early"]) == ("notebook", True)
    assert (summary["epochs_run"], summary["best_epoch"], summary["weights_epoch"]) == (4, 2, 3)
    run_dir = tmp_path / summary["run_dir"]  # relative to the folder it ran in
    _, meta = load_arrays(run_dir / "weights.safetensors")
    assert (meta["epoch"], meta["val_loss"]) == (3, None)  # weights it never evaluated
    rc, out, err = cli("eval", run_dir, "--json")
    assert rc == 0, err
    assert json.loads(out)["test"] == summary["test"]
    rc, out, err = cli("train", config)
    assert rc == 0, err
    assert " weights        epoch 3, by the notebook's rule" in out.splitlines()


def test_a_misspelt_rule_is_one_line(main_here, tmp_path):
    config = write_config(tmp_path, "nb", train={"early_stopping": "notebok"})
    rc, out, err = main_here("validate", config)
    assert rc == 2
    assert err.strip().endswith("train.early_stopping: got 'notebok': expected true, false, "
                                "notebook or a mapping of patience, min_delta, restore_best, "
                                "monitor and mode")
