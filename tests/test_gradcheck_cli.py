"""`scratchnet gradcheck`: passes on the real networks, and catches a backward pass that
is wrong (an activation registered in this test whose derivative is deliberately off)."""

from __future__ import annotations

import json

import numpy as np
import yaml
from conftest import digits_config, run_main
from scratchnet.nn.activations import ACTIVATIONS, Tanh

DIGITS = digits_config(name="digits_check", seed=1,
                       model={"layers": [{"neurons": 12, "activation": "tanh"},
                                         {"neurons": 10, "activation": "linear"}]},
                       train={"dtype": "float32"})  # the check must still run in float64

def write(tmp_path, raw, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


class Result:
    def __init__(self, capsys, args):
        self.exit_code, self.stdout, self.stderr = run_main(capsys, "gradcheck", *args)


def gradcheck(capsys, *args) -> Result:
    return Result(capsys, args)


def test_gradcheck_passes_on_a_correct_network(tmp_path, capsys):
    result = gradcheck(capsys, write(tmp_path, DIGITS), "--json", "--entries", "0")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["batch"] == 16
    rows = {r["param"]: r for r in report["params"]}
    assert set(rows) == {"layers.0.W", "layers.0.B", "layers.1.W", "layers.1.B"}
    assert rows["layers.0.W"]["shape"] == [64, 12]
    assert rows["layers.0.W"]["entries"] == 64 * 12  # --entries 0: every entry
    for r in rows.values():
        assert r["passed"] and r["max_rel_error"] < 1e-6


def test_gradcheck_table_on_a_deeper_network_with_dropout_and_batch_norm(tmp_path, capsys):
    raw = dict(DIGITS, model={"layers": [
        {"neurons": 10, "activation": "relu", "batch_norm": True},
        {"neurons": 8, "activation": "sigmoid", "dropout": 0.2},
        {"neurons": 10, "activation": "linear"}]})
    result = gradcheck(capsys, write(tmp_path, raw), "--entries", "30")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "gradient check passed" in result.stderr
    assert "FAIL" not in result.stdout
    for i in range(3):
        assert f"layers.{i}.W" in result.stdout
    assert "30 of 640" in result.stdout  # 64 x 10 weights, 30 of them checked


class BadTanh(Tanh):
    """tanh whose backward pass forgets to square: 1 - t instead of 1 - t**2."""

    name = "bad_tanh"

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad * (1 - self.output)


def test_gradcheck_fails_on_a_broken_backward_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ACTIVATIONS, "bad_tanh", BadTanh)
    raw = dict(DIGITS, model={"layers": [{"neurons": 12, "activation": "bad_tanh"},
                                         {"neurons": 10, "activation": "linear"}]})
    path = write(tmp_path, raw)
    result = gradcheck(capsys, path, "--json")
    assert result.exit_code == 1
    rows = {r["param"]: r for r in json.loads(result.stdout)["params"]}
    # The wrong derivative corrupts the gradient flowing into layer 0 only: layer 1's
    # gradients use tanh's output, not its derivative, and must still pass.
    assert not rows["layers.0.W"]["passed"] and rows["layers.0.W"]["max_rel_error"] > 1e-3
    assert not rows["layers.0.B"]["passed"]
    assert rows["layers.1.W"]["passed"] and rows["layers.1.B"]["passed"]
    assert "gradient check failed for layers.0.W, layers.0.B" in result.stderr

    table = gradcheck(capsys, path)
    assert table.exit_code == 1
    assert table.stdout.count("FAIL") == 2 and table.stdout.count("pass") >= 2


def test_gradcheck_reports_bad_input_as_usage_errors(tmp_path, capsys):
    for args, message in [
        ([str(tmp_path / "missing.yaml")], "no such file"),
        ([write(tmp_path, DIGITS), "--tol", "0"], "--tol must be > 0"),
    ]:
        result = gradcheck(capsys, *args)
        assert result.exit_code == 2
        assert message in result.stderr
