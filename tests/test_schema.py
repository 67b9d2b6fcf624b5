"""The JSON Schema of experiment files: committed, current, and right about the configs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from scratchnet import ConfigError
from conftest import run_main
from scratchnet.config import SCHEMA_URL_COMMENT, json_schema, validate
from scratchnet.config.bases import load_layered

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "scratchnet.schema.json"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json_schema(), (
        "scratchnet.schema.json is stale: regenerate it with "
        "`scratchnet schema -o scratchnet.schema.json`")


def test_schema_command_prints_and_writes_the_schema(tmp_path, capsys):
    code, out, _ = run_main(capsys, "schema")
    assert code == 0
    assert json.loads(out) == json_schema()
    code, out, _ = run_main(capsys, "schema", "-o", tmp_path / "s.json")
    assert code == 0 and out == ""
    # byte for byte what is committed: regenerating gives no diff
    assert (tmp_path / "s.json").read_text() == SCHEMA_FILE.read_text()


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no experiment files"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_validates_and_points_editors_at_the_schema(path, validator):
    text = path.read_text()
    assert text.splitlines()[0] == SCHEMA_URL_COMMENT, (
        f"{path.name}: the first line should be {SCHEMA_URL_COMMENT!r} so that editors "
        "complete and check its keys")
    # the comment's relative path reaches the committed schema
    target = SCHEMA_URL_COMMENT.split("$schema=", 1)[1]
    assert (path.parent / target).resolve() == SCHEMA_FILE
    raw = yaml.safe_load(text)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(raw)]
    assert errors == []
    validate(load_layered(path).raw, str(path))  # and the loader agrees (bases merged in)


def _quickstart() -> dict:
    return yaml.safe_load((ROOT / "configs" / "digits_quickstart.yaml").read_text())


def _set(raw: dict, dotted: str, value) -> dict:
    raw = copy.deepcopy(raw)
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return raw


_DELETE = object()


def _messages(error) -> list[str]:
    """An error's message and those of the alternatives it tried (a layer is one of
    several layer types, so its own complaints sit in the error's context)."""
    return [error.message, *(m for sub in error.context for m in _messages(sub))]


@pytest.mark.parametrize("dotted, value, complaint", [
    ("optimiser", {"lr": 0.1},
     "Additional properties are not allowed ('optimiser' was unexpected)"),
    ("optimizer.lr", -0.1, "less than or equal to the minimum of 0"),
    ("optimizer.lr", "fast", "is not of type 'number'"),
    ("model.layers.0.neurons", 0, "0 is less than the minimum of 1"),
    ("model.layers.0.dropout", 1.0, "greater than or equal to the maximum of 1"),
    ("model.layers.0.neuron", 64, "'neuron' was unexpected"),
    ("train.epochs", 2.5, "is not of type 'integer'"),
    ("data.validation", "train", "is not valid under any of the given schemas"),
    ("model", _DELETE, "'model' is a required property"),
])
def test_schema_rejects_a_broken_config(validator, dotted, value, complaint):
    raw = _set(_quickstart(), dotted, value)
    messages = [m for e in validator.iter_errors(raw) for m in _messages(e)]
    assert any(complaint in m for m in messages), messages
    with pytest.raises(ConfigError):  # the loader refuses it as well
        validate(raw, "broken.yaml")


# -- shells: Typer's completion ------------------------------------------------------------
def _complete(words: str) -> list[str]:
    """What bash completion offers for the command line ``words`` (the protocol the
    script from ``scratchnet --show-completion`` speaks), from the real program."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "_SCRATCHNET_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    out = subprocess.run([sys.executable, "-m", "scratchnet"], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_shell_completion_offers_commands_options_and_choices(capsys):
    assert "predict" in _complete("scratchnet pre")
    assert _complete("scratchnet predict --for") == ["--format"]
    assert _complete("scratchnet predict run --format ") == ["table", "csv", "json"]
    _, help_text, _ = run_main(capsys, "--help")
    assert "--install-completion" in help_text and "--show-completion" in help_text
