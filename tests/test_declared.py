"""One declaration per option: an option declared in an engine constructor's signature is,
with no other edit, a key of experiment files (validated with the engine's own message, at
the key the engine names), settable with ``--set``, in the JSON Schema, and shown by
``show``; and the JSON Schema tells an editor the real mistake first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import jsonschema
import pytest
import yaml

import scratchnet as sn
from conftest import run_main, write_config
from scratchnet.config import json_schema, load_config, validate
from scratchnet.errors import ConfigError
from scratchnet.experiment import plan_experiment
from scratchnet.experiment.build import build_layer, build_optimizer
from scratchnet.nn import LAYERS, OPTIMIZERS, SCHEDULES
from scratchnet.options import Doc, Fraction, PositiveFloat, checked

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "scratchnet.schema.json"


# -- entries that exist only for these tests, each with one option of its own -------------
class _KickSGD(sn.SGD):
    """Plain SGD with a test option."""

    name = "kick_sgd"

    @checked
    def __init__(self, *args, kick: Annotated[Fraction, Doc("a test option")] = 0.5,
                 **options):
        super().__init__(*args, **options)
        self.kick = kick


@dataclass(frozen=True)
class _WobbleDecay(sn.Constant):
    """A constant rate with a test field."""

    wobble: Annotated[Fraction, Doc("a test field")] = 0.25


class _GainDense(sn.Dense):
    """A dense layer with a test option."""

    @checked
    def __init__(self, *args, gain: Annotated[PositiveFloat, Doc("a test option")] = 2.0,
                 **options):
        super().__init__(*args, **options)
        self.gain = gain


@pytest.fixture
def registered(monkeypatch):
    """The three test entries in the engine's registries (and out again afterwards)."""
    monkeypatch.setitem(OPTIMIZERS, "kick_sgd", _KickSGD)
    monkeypatch.setitem(SCHEDULES, "wobble", _WobbleDecay)
    monkeypatch.setitem(LAYERS, "gain_dense", _GainDense)


RAW = {"model": {"layers": [{"type": "gain_dense", "neurons": 8, "gain": 3.0},
                            {"neurons": 10}]},
       "optimizer": {"name": "kick_sgd", "lr": 0.05, "kick": 0.75,
                     "decay": {"type": "wobble", "wobble": 0.5}},
       "train": {"epochs": 2}}


def test_a_declared_option_reaches_every_place(registered, tmp_path, capsys, monkeypatch):
    path = write_config(tmp_path, "declared", raw=RAW)
    # an experiment file, and the engine objects made from it
    cfg = load_config(path)
    assert (cfg.model.layers[0].gain, cfg.optimizer.kick, cfg.optimizer.decay.wobble) == \
        (3.0, 0.75, 0.5)
    assert build_layer(cfg.model.layers[0]).gain == 3.0
    optimizer = build_optimizer(cfg)
    assert optimizer.kick == 0.75 and optimizer.schedule(2).wobble == 0.5
    # --set
    cfg = load_config(path, ["optimizer.kick=0.25", "optimizer.decay.wobble=0.125",
                             "model.layers.0.gain=4"])
    assert (cfg.model.layers[0].gain, cfg.optimizer.kick, cfg.optimizer.decay.wobble) == \
        (4.0, 0.25, 0.125)
    # the JSON Schema
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(RAW)) == []
    for where, value in ((("optimizer", "kick"), 1.5), (("optimizer", "decay", "wobble"), -1),
                         (("model", "layers", 0, "gain"), 0)):
        broken = json.loads(json.dumps(RAW))
        node = broken
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = value
        error = jsonschema.exceptions.best_match(validator.iter_errors(broken))
        assert tuple(error.absolute_path) == where, (where, error.message)
    # show: the values a run will use
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "show", path.name)
    assert code == 0, err
    shown = yaml.safe_load(out[:out.index("model: declared")].rsplit("\n", 2)[0])
    assert shown["optimizer"]["kick"] == 0.75 and shown["optimizer"]["decay"]["wobble"] == 0.5
    assert shown["model"]["layers"][0]["gain"] == 3.0
    # an error names the key: the engine's words at the file's line
    code, _, err = run_main(capsys, "validate", path.name, "--set", "optimizer.kick=1.5")
    assert code == 2
    assert ("declared.yaml (--set optimizer.kick=1.5): optimizer.kick: kick must be a number "
            "in [0, 1), got 1.5") in err
    for override, where in (("optimizer.decay.wobble=2", "optimizer.decay.wobble: wobble must"),
                            ("model.layers.0.gain=0", "model.layers.0.gain: gain must"),
                            ("optimizer.kik=0.1", "optimizer.kik: unknown key 'kik' (did you "
                                                  "mean 'kick'?)")):
        code, _, err = run_main(capsys, "validate", path.name, "--set", override)
        assert code == 2 and where in err, err


def test_the_schema_forgets_an_entry_taken_out_again(registered, monkeypatch):
    assert "kick_sgd" in json.dumps(json_schema())
    monkeypatch.undo()
    assert "kick_sgd" not in json.dumps(json_schema())
    with pytest.raises(ConfigError) as caught:
        validate(RAW, "raw.yaml")
    assert any("optimizer.name: unknown optimizer 'kick_sgd'" in line
               for line in caught.value.messages), caught.value.messages


# -- keys the engine checks across options point at the option ----------------------------
def test_a_check_across_options_names_its_key(tmp_path):
    path = write_config(tmp_path, "across", raw={
        "model": {"layers": [{"neurons": 8, "batch_norm": True, "bias_init": "normal"},
                             {"neurons": 10}]},
        "optimizer": {"lr": 0.01, "decay": {"type": "plateau", "min_lr": 0.5}}})
    with pytest.raises(ConfigError) as caught:
        plan_experiment(load_config(path))
    lines = caught.value.messages
    assert any(": model.layers.0.bias_init: bias_init 'normal' has no effect with batch_norm"
               in line for line in lines), lines
    assert any(": optimizer.decay.min_lr: min_lr must be at most lr=0.01, got 0.5" in line
               for line in lines), lines


def test_the_plateau_threshold_from_a_file_and_from_set(tmp_path):
    path = write_config(tmp_path, "plateau", raw={
        "model": {"layers": [{"neurons": 10}]},
        "optimizer": {"decay": {"type": "plateau", "threshold": 0.01}}})
    assert build_optimizer(load_config(path)).schedule(3).threshold == 0.01
    cfg = load_config(path, ["optimizer.decay.threshold=0.05"])
    assert build_optimizer(cfg).schedule(3).threshold == 0.05
    with pytest.raises(ConfigError, match=r"optimizer.decay.threshold: threshold must be a "
                                          r"number in \[0, 1\), got 1.5"):
        load_config(path, ["optimizer.decay.threshold=1.5"])


# -- the JSON Schema chooses a layer's branch by its type ------------------------------------
BROKEN_DENSE = "model:\n  layers:\n    - {neurons: 89, activation: tanhh}\n    - {neurons: 10}\n"
BROKEN_SGD = ("model:\n  layers:\n    - {neurons: 10}\noptimizer: {name: sgd, momentum: 0.9}\n")


def test_best_match_names_the_real_mistake():
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    error = jsonschema.exceptions.best_match(validator.iter_errors(yaml.safe_load(BROKEN_DENSE)))
    assert list(error.absolute_path) == ["model", "layers", 0, "activation"]
    assert error.message.startswith("'tanhh' is not one of ['linear', 'sigmoid', 'tanh'")
    error = jsonschema.exceptions.best_match(validator.iter_errors(yaml.safe_load(BROKEN_SGD)))
    assert "'momentum' was unexpected" in error.message


def _check_jsonschema() -> list[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    return [exe]


@pytest.mark.parametrize("text, first", [
    (BROKEN_DENSE, "$.model.layers[0].activation: 'tanhh' is not one of ['linear', "),
    (BROKEN_SGD, "$.optimizer: Additional properties are not allowed ('momentum' was "
                 "unexpected)"),
])
def test_check_jsonschema_reports_the_real_mistake_first(tmp_path, text, first):
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    proc = subprocess.run([*_check_jsonschema(), "--schemafile", str(SCHEMA_FILE), str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line.strip() for line in proc.stdout.splitlines() if "::$" in line]
    assert errors and errors[0].split("::", 1)[1].startswith(first), proc.stdout


def test_check_jsonschema_accepts_every_shipped_config():
    configs = sorted(str(p) for p in (ROOT / "configs").glob("*.yaml"))
    proc = subprocess.run([*_check_jsonschema(), "--schemafile", str(SCHEMA_FILE), *configs],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the README's table of options is made from the declarations --------------------------
def test_the_readme_options_table_is_the_generated_one():
    from scratchnet.config.reference import BEGIN, END, options_table

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block == "\n" + options_table(), (
        "README.md's options table is stale: run python -m scratchnet.config.reference")


def test_the_reference_command_rewrites_only_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- options -->\nold\n<!-- /options -->\nafter\n")
    command = [sys.executable, "-m", "scratchnet.config.reference"]
    stale = subprocess.run([*command, "--check", readme], capture_output=True, text=True)
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert subprocess.run([*command, readme]).returncode == 0
    text = readme.read_text()
    assert "| `optimizer.decay.threshold` (plateau) |" in text and text.endswith("after\n")
    assert subprocess.run([*command, "--check", readme]).returncode == 0


# -- run folders written before: their config.yaml holds every option, null where unset ----
OLD_CONFIG = """\
name: old
seed: 7
data: {dataset: digits, path: null, target: null, task: null, scale: standard,
  validation: 0.1, test_fraction: 0.2, shape: null, target_scale: none, split_seed: null}
model:
  layers:
  - {activation: tanh, weight_init: glorot, bias_init: zeros, dropout: 0.0, batch_norm: false,
    type: dense, neurons: 16}
  - {activation: linear, weight_init: glorot, bias_init: zeros, dropout: 0.0,
    batch_norm: false, type: dense, neurons: 10}
  loss: softmax_cross_entropy
  input_dropout: 0.0
optimizer:
  name: adam
  lr: 0.01
  momentum: null
  beta1: null
  beta2: null
  rho: null
  eps: null
  weight_decay: null
  clip_norm: null
  decay: {type: linear, final_lr: 0.001, step_size: null, gamma: null, factor: null,
    patience: null, min_lr: null, warmup_epochs: 0}
train: {epochs: 2, batch_size: 64, eval_every: 1, early_stopping: false, dtype: float32,
  health: false, checkpoint_every: null, schedule_epochs: SCHEDULE, extends: EXTENDS}
sweep: null
tracking: null
tune: null
"""


@pytest.fixture
def old_run(tmp_path):
    """A run folder as an earlier release left it: its config.yaml in the old shape, and
    the hash of that file in summary.json (returns a function: (schedule, extends) -> run)."""
    from scratchnet import runs
    from scratchnet.config import config_digest
    from scratchnet.experiment import train_experiment

    def make(schedule="null", extends="null"):
        text = OLD_CONFIG.replace("SCHEDULE", str(schedule)).replace("EXTENDS", str(extends))
        raw = yaml.safe_load(text)
        cfg = validate(raw, "old.yaml", saved=True)
        run = train_experiment(cfg, out=tmp_path / "runs").run_dir
        (run / runs.CONFIG).write_text(text)
        summary = runs.read_json(run / runs.SUMMARY)
        runs.write_json(run / runs.SUMMARY, {**summary, "config_hash": config_digest(raw)})
        return run

    return make


def test_an_old_run_folder_evaluates_and_extends(old_run, tmp_path, capsys, monkeypatch):
    from scratchnet import runs

    run = old_run()
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "eval", run, "--json")
    assert code == 0 and "edited" not in err, err
    code, out, err = run_main(capsys, "train", "--resume", run, "--set", "train.epochs=3",
                              "--json", "-q")
    assert code == 0, err
    new = Path(json.loads(out)["run_dir"])
    assert json.loads((new / runs.EXTENDS).read_text()) == {
        "extends": str(run.resolve()), "schedule_epochs": 2}


def test_an_old_extended_run_keeps_its_schedule(old_run, tmp_path, capsys, monkeypatch):
    from scratchnet.experiment.run import lineage

    run = old_run(schedule=1, extends=tmp_path / "first")
    assert lineage(run) == {"extends": str(tmp_path / "first"), "schedule_epochs": 1}
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "eval", run, "--json")
    assert code == 0 and "edited" not in err, err
    code, out, err = run_main(capsys, "show", run / "config.yaml")
    assert code == 0 and "schedule_epochs" not in out and "extends" not in out, out


def test_show_prints_the_values_a_run_uses_and_no_internal_keys(tmp_path, capsys, monkeypatch):
    path = write_config(tmp_path, "adam", raw={"model": {"layers": [{"neurons": 10}]},
                                               "optimizer": {"name": "adam"}})
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "show", path.name)
    assert code == 0, err
    shown = yaml.safe_load(out[:out.index("model: adam")].rsplit("\n", 2)[0])
    assert shown["optimizer"] == {"name": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.999,
                                  "eps": 1e-8, "weight_decay": 0.0, "clip_norm": None,
                                  "decay": {"type": "none", "final_lr": None,
                                            "warmup_epochs": 0}}
    assert not set(shown["train"]) & {"schedule_epochs", "extends"}


@pytest.mark.parametrize("monitor, mode", [("val_loss", "min"), ("accuracy", "max")])
def test_show_prints_the_mode_early_stopping_will_use(tmp_path, capsys, monkeypatch, monitor,
                                                       mode):
    path = write_config(tmp_path, "stop", raw={
        "model": {"layers": [{"neurons": 10}]},
        "train": {"early_stopping": {"monitor": monitor, "patience": 2}}})
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, "show", path.name)
    assert code == 0, err
    shown = yaml.safe_load(out[:out.index("model: stop")].rsplit("\n", 2)[0])
    assert shown["train"]["early_stopping"]["mode"] == mode
