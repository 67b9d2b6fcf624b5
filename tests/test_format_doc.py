"""docs/format.md's examples, run against a freshly trained run: the plain-NumPy reading of
weights.safetensors and the onnxruntime one give the probabilities ``scratchnet predict``
gives, so the document cannot go stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from scratchnet.config import load_config
from scratchnet.experiment import load_run, train_experiment
from scratchnet.onnx_export import export_run
from scratchnet.predict import Inputs, predict_rows

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "format.md"


def _example(needle: str) -> str:
    """The one ```python block of the document that contains ``needle``."""
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
               if needle in block]
    return code


def _run(code: str, argument: Path, monkeypatch) -> np.ndarray:
    """Run an example as ``python example.py ARGUMENT`` does; its ``probs``."""
    monkeypatch.setattr(sys, "argv", ["example.py", str(argument)])
    namespace = {"__name__": "__main__"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["probs"]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory) -> Path:
    cfg = load_config(ROOT / "configs" / "digits_quickstart.yaml", ["train.epochs=2"])
    return train_experiment(cfg, out=tmp_path_factory.mktemp("runs")).run_dir


def _predicted(run_dir: Path) -> np.ndarray:
    """``scratchnet predict --proba 10``'s probabilities of the first three digits, by class."""
    _, net, info, _ = load_run(run_dir)
    rows = predict_rows(net, info, Inputs(load_digits().data[:3], ["0", "1", "2"]), top_k=10)
    probs = np.zeros((3, len(info["classes"])))
    for i, row in enumerate(rows):
        for entry in row["top"]:
            probs[i, info["classes"].index(entry["class"])] = entry["probability"]
    return probs


def test_the_numpy_example_gives_predicts_probabilities(quickstart_run, monkeypatch, capsys):
    probs = _run(_example("load_file"), quickstart_run, monkeypatch)
    np.testing.assert_allclose(probs, _predicted(quickstart_run), rtol=1e-5, atol=1e-5)
    assert capsys.readouterr().out.startswith("[0 1 2] [")


def test_the_onnx_example_gives_predicts_probabilities(quickstart_run, tmp_path, monkeypatch):
    model = export_run(quickstart_run, tmp_path / "digits.onnx")
    probs = _run(_example("onnxruntime"), model, monkeypatch)
    np.testing.assert_allclose(probs, _predicted(quickstart_run), rtol=1e-5, atol=1e-5)
