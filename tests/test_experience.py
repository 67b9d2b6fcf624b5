"""What a person sees: errors that point the way, tables laid out for their terminal,
the book's trainer output from Python."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from conftest import digits_config, run_cli, run_in_terminal, screen_of, write_config
from scratchnet.data import one_hot

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUICK = CONFIGS / "digits_quickstart.yaml"


@pytest.mark.parametrize("args, says", [
    (["train", QUICK, "--momentum", "0.5"],
     "train has no option --momentum; set it with --set optimizer.momentum=0.5"),
    (["sweep", QUICK, "--eval-every=2"],
     "sweep has no option --eval-every; set it with --set train.eval_every=2"),
    (["show", QUICK, "--learning-rate", "1"],
     "show has no option --learning-rate; set it with --set optimizer.lr=1 (or --lr 1)"),
])
def test_options_people_try_get_the_set_that_does_it(main_here, args, says):
    rc, out, err = main_here(*args)
    assert (rc, out) == (2, "") and err.strip() == f"error: {says}"


def test_debug_works_after_the_command_too(main_here, capsys):
    for args in (["--debug", "train", "nope.yaml"], ["train", "nope.yaml", "--debug"]):
        rc, out, err = main_here(*args)
        assert rc == 2 and "Traceback" in err and "nope.yaml: no such file" in err, args
    rc, out, err = main_here("train", "nope.yaml")
    assert rc == 2 and "Traceback" not in err


def test_validate_says_a_config_needs_the_users_file_as_a_note(main_here):
    rc, out, err = main_here("validate", *sorted(CONFIGS.glob("*.yaml")))
    assert rc == 0, err
    boston = sorted(CONFIGS.glob("boston_*.yaml"))
    assert out.count("(needs your data file)") == len(boston) == 3
    assert err.count("note: ") == 3 and "--set data.path=FILE" in err and "invalid" not in err
    rc, out, err = main_here("train", boston[0])  # training still needs it
    assert rc == 2 and "data.path: required for dataset csv" in err


def _in_a_terminal(args: list, columns: int, cwd: Path) -> str:
    """The command's output as a terminal of ``columns`` columns shows it."""
    _, text = run_in_terminal(args, cwd, columns)
    return "\n".join(screen_of(text, columns))


@pytest.fixture(scope="module")
def twelve_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("twelve")
    config = write_config(work, "wide_experiment_name", raw=digits_config(
        name="wide_experiment_name", train={"epochs": 1}))
    rc, out, err = run_cli(["sweep", config.name, "--grid", "optimizer.lr=0.01,0.05,0.1,0.2",
                            "--grid", "model.layers.0.activation=tanh,relu,sigmoid", "--jobs",
                            "1", "-q", "--out", "sweeps"], work, timeout=600)
    assert rc == 0, err
    (folder,) = (work / "sweeps").iterdir()
    return work, folder


@pytest.mark.parametrize("columns", [80, 160])
def test_compare_is_laid_out_for_the_terminal(twelve_runs, columns):
    work, folder = twelve_runs
    screen = _in_a_terminal(["compare", folder], columns, work)
    lines = screen.splitlines()
    assert lines and max(len(line) for line in lines) <= columns, screen
    assert "…" not in screen and "..." not in screen  # nothing cut
    names = re.findall(r"wide_experiment_name-\w+-s0", screen)
    assert len(set(names)) == 12, screen  # every run told apart
    for value in ("0.01", "0.05", "0.2", "tanh", "relu", "sigmoid", "activation", "lr"):
        assert value in screen


def test_compare_of_an_mlp_and_a_cnn_turns_keys_into_rows(tmp_path):
    """Dozens of keys differ between the two configs: one row per key, a column per run, read
    at 80 columns (not 56 columns one character wide)."""
    for config in ("digits_quickstart", "digits_cnn"):
        rc, _, err = run_cli(["train", CONFIGS / f"{config}.yaml", "--set", "train.epochs=1",
                              "-q", "--out", "runs"], tmp_path)
        assert rc == 0, err
    runs = sorted((tmp_path / "runs").iterdir())
    rc, out, err = run_cli(["compare", *runs, "--json"], tmp_path)
    keys = json.loads(out)["keys"]
    assert rc == 0 and len(keys) > 40, err
    lines = _in_a_terminal(["compare", *runs], 80, tmp_path).splitlines()
    screen = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80 and "…" not in screen, screen
    [head] = [line for line in lines if "cnn" in line and "quickstart" in line]
    assert head.split() == ["┃", "┃", "cnn", "┃", "quickstart", "┃"]  # the runs: columns
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines
            if line.startswith("│")]
    assert len(rows) == len(keys) + 7  # a row per key, the status and six metrics
    assert all(len(r) == 3 and r[0] and r[1] and r[2] for r in rows), screen
    by_key = {r[0]: r[1:] for r in rows}
    assert by_key["layers.0.type"] == ["conv2d", "dense"]
    assert by_key["layers.0.out_channels"] == ["8", "-"]
    assert by_key["optimizer.name"] == ["adam", "sgd_momentum"]
    assert by_key["status"] == ["completed", "completed"]
    # the layers in the order a config reads: layer 0's keys, then layer 1's...
    layers = [int(r[0].split(".")[1]) for r in rows if r[0].startswith("layers.")]
    assert layers == sorted(layers)


def test_the_books_trainer_output_from_python(capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    Y = one_hot((X[:, 0] > 0).astype(int), 2)
    net = sn.NeuralNetwork([sn.Dense(8, "tanh"), sn.Dense(2)], "softmax_cross_entropy", seed=0)
    trainer = sn.Trainer(net, sn.SGDMomentum(0.1))
    trainer.fit(X, Y, X[:50], Y[:50], epochs=6, eval_every=2, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" is ")[0] for line in lines] == [
        f"Validation loss after {e} epochs" for e in (2, 4, 6)]
    assert all(re.search(r"is \d\.\d{3}, accuracy \d\.\d{4}$", line) for line in lines)
    trainer.fit(X, Y, X[:50], Y[:50], epochs=2, eval_every=1)  # verbose=0: silent
    assert capsys.readouterr().out == ""
