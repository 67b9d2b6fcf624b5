"""Recurrent runs through the real command line: what ``validate`` refuses in a network
over sequences (one line naming the file, the line and the key), and every command on a
recurrent run: ``show``, ``generate``, ``predict``, ``eval``, ``gradcheck``, ``sweep``,
``tune``, ``plot``, ``compare``, ``export`` (checked by onnxruntime) and ``train --resume``.
Hostile text files and options are one line and a non-zero exit. Each test trains small
networks on a small text or on scikit-learn's digits read row by row: seconds each.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import TEXT, digits_config, run_cli, text_config
from hostile_helpers import one_line, run_bounded
from scratchnet.data.text import MAX_VOCAB

#: a stateful character model: an embedding, an LSTM carrying its state along 4 streams
STATEFUL = [{"type": "embedding", "dim": 4}, {"type": "lstm", "hidden_size": 8, "stateful": True},
            {"neurons": "auto"}]
#: the digits read row by row: 8 steps of 8 pixels to a GRU, its last state classified
ROWS = digits_config(name="rows", model={"layers": [
    {"type": "gru", "hidden_size": 6, "return_sequences": False}, {"neurons": "auto"}]},
    train={"epochs": 1})


def write(folder: Path, raw: dict, stem: str = "entry") -> Path:
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def stateful_text(folder: Path, epochs: int = 2) -> dict:
    raw = text_config(folder, STATEFUL, streams=4)
    raw["train"].update(batch_size=4, epochs=epochs)
    return raw


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A stateful character model of the test text, trained for 2 epochs in a real process
    into ``runs/`` of its folder."""
    folder = tmp_path_factory.mktemp("text_run")
    write(folder, stateful_text(folder), "text")
    rc, out, err = run_cli(["train", "text.yaml", "--json", "-q"], folder)
    assert rc == 0, err
    return folder / json.loads(out)["run_dir"]


@pytest.fixture(scope="module")
def rows_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rows_run")
    write(folder, ROWS, "rows")
    rc, out, err = run_cli(["train", "rows.yaml", "--json", "-q"], folder)
    assert rc == 0, err
    return folder / json.loads(out)["run_dir"]


# -- validate: one line naming the file, the line and the key -------------------------------
def _cases(folder: Path) -> dict:
    lstm = {"type": "lstm", "hidden_size": 4}
    embedding = {"type": "embedding", "dim": 4}
    auto = {"neurons": "auto"}
    text = text_config(folder, [embedding, lstm, auto])
    return {
        "recurrent after a flatten": (digits_config(model={"layers": [
            {"type": "flatten"}, lstm, auto]}), "model.layers.1.type",
            "a lstm layer reads sequences, samples of shape (time, features), and layer 0 "
            "(Flatten) gives samples of shape (64,) (remove the flatten"),
        "the last step before a loss at every step": (
            text_config(folder, [embedding, {**lstm, "return_sequences": False}, auto]),
            "model.layers.1.return_sequences", "got false: a text has a target at every one "
            "of its 10 steps (the next character), so the network must output every step"),
        "an embedding on numbers": (digits_config(model={"layers": [embedding, auto]}),
                                    "model.layers.0.type", "an embedding reads the character "
                                    "ids of a text (dataset: text); digits holds numbers"),
        "a text without an embedding": (text_config(folder, [lstm, auto]), "model.layers.0.type",
                                        "got 'lstm': a text's samples are character ids"),
        "an embedding after another layer": (text_config(folder, [embedding, embedding, auto]),
                                             "model.layers.1.type", "an embedding reads integer "
                                             "ids, so it can only be the first layer"),
        "batch size other than streams": ({**text, "data": {**text["data"], "streams": 4}},
                                          "train.batch_size", "got 16: data.streams is 4"),
        "stateful without streams": (text_config(folder, [embedding, {**lstm, "stateful": True},
                                                          auto]),
                                     "model.layers.1.stateful", "only for a text read as "
                                     "streams (data.streams)"),
        "seq_len beyond its cap": ({**text, "data": {**text["data"], "seq_len": 10_001}},
                                   "data.seq_len", "seq_len must be an integer in [1, 10000]"),
        "a window longer than the text": ({**text, "data": {**text["data"], "seq_len": 1500}},
                                          "data.seq_len", "the train part holds 1,048 of the "
                                          "1,310 characters; a window of seq_len=1500"),
        "auto before the last layer": (digits_config(model={"layers": [auto, auto]}),
                                       "model.layers.0.neurons", "got 'auto': auto is the "
                                       "width the data's targets need (10), the last layer's"),
        "a misspelt key": (digits_config(model={"layers": [{"type": "gru", "hiden_size": 4},
                                                           auto]}),
                           "model.layers.0.hiden_size", "did you mean 'hidden_size'?"),
        "a scale for a text": ({**text, "data": {**text["data"], "scale": "minmax"}},
                               "data.scale", "got 'minmax': a text's samples and targets are "
                               "character ids, never scaled"),
    }


CASES = ["recurrent after a flatten", "the last step before a loss at every step",
         "an embedding on numbers", "a text without an embedding",
         "an embedding after another layer", "batch size other than streams",
         "stateful without streams", "seq_len beyond its cap", "a window longer than the text",
         "auto before the last layer", "a misspelt key", "a scale for a text"]


def test_the_cases_are_those_listed(tmp_path):
    assert list(_cases(tmp_path)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_validate_names_the_file_the_line_and_the_key(main_here, tmp_path, case):
    raw, key, message = _cases(tmp_path)[case]
    path = write(tmp_path, raw)
    rc, out, err = main_here("validate", path)
    assert rc == 2 and not out
    lines = [line for line in err.splitlines() if line.startswith("invalid:")]
    found = [line for line in lines if f": {key}:" in line]
    assert found and message in " ".join(found[0].split()), err
    line = int(re.search(rf"entry\.yaml:(\d+): {re.escape(key)}:", found[0]).group(1))
    shown = path.read_text().splitlines()[line - 1]
    assert key.rsplit(".", 1)[-1] in shown or key.split(".")[-2] in shown, (line, shown)
    if case != "a misspelt key":  # (it also misses hidden_size: two lines)
        assert len(lines) == 1, err
    # train refuses it with the same first line, before any run folder is made
    rc, _, train_err = main_here("train", path, "--out", tmp_path / "runs")
    assert rc != 0 and not (tmp_path / "runs").exists()
    assert one_line(train_err).removeprefix("error: ") == lines[0].removeprefix("invalid: ")


def test_a_text_run_may_stop_on_its_perplexity(main_here, tmp_path):
    raw = stateful_text(tmp_path)
    raw["train"]["early_stopping"] = {"monitor": "perplexity", "patience": 2}
    rc, out, err = main_here("train", write(tmp_path, raw), "-q", "--json", "--out",
                             tmp_path / "runs")
    assert rc == 0, err
    assert json.loads(out)["status"] == "completed"


# -- show -----------------------------------------------------------------------------------
def test_show_gives_batches_of_sequences(main_here, tmp_path):
    rc, out, err = main_here("show", write(tmp_path, stateful_text(tmp_path)))
    assert rc == 0, err
    for shape in ("(batch, 10)", "(batch, 10, 4)", "(batch, 10, 8)"):
        assert shape in out
    assert "LSTM(8, stateful)" in out and "training windows" in out
    rc, out, err = main_here("show", write(tmp_path, ROWS, "rows"))
    assert rc == 0, err
    assert "(batch, 8, 8)" in out and "(batch, 6)" in out and "(batch, 10)" in out


# -- generate and predict -------------------------------------------------------------------
def test_generate_samples_text_from_a_text_run(text_run):
    folder = text_run.parent.parent
    rc, out, err = run_cli(["generate", "@last", "--length", "40", "--prime", "line 3",
                            "--temperature", "0.8", "--seed", "0"], folder)
    assert rc == 0, err
    assert out.startswith("line 3") and len(out) == len("line 3") + 40 + 1
    assert set(out) <= set(TEXT)  # only characters it was trained on
    again = run_cli(["generate", text_run, "--length", "40", "--prime", "line 3",
                     "--temperature", "0.8", "--seed", "0"], folder)[1]
    other = run_cli(["generate", text_run, "--length", "40", "--prime", "line 3",
                     "--temperature", "0.8", "--seed", "1"], folder)[1]
    assert again == out and other != out
    rc, out, err = run_cli(["generate", text_run, "--length", "5", "--json"], folder)
    assert rc == 0, err
    record = json.loads(out)
    assert len(record["text"]) == 5 and record["prime"] == "" and record["seed"] == 0


def test_generate_refuses_a_run_that_is_not_a_text_run(main_here, rows_run):
    rc, out, err = main_here("generate", rows_run)
    assert rc == 2 and not out
    assert "is not a text run" in one_line(err)


def test_predict_gives_the_likeliest_next_characters(main_here, text_run, tmp_path):
    (tmp_path / "prefix.txt").write_text("line 1", encoding="utf-8")
    rc, out, err = main_here("predict", text_run, "--text", "the cat sat on the m",
                             tmp_path / "prefix.txt", "--proba", "3", "-f", "json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["input"] for r in rows] == ["the cat sat on the m", "prefix.txt"]
    for r in rows:
        p = [e["probability"] for e in r["top"]]
        assert len(p) == 3 and p == sorted(p, reverse=True) and sum(p) <= 1 + 1e-9
        assert r["prediction"] == r["top"][0]["class"] and len(r["prediction"]) == 1
    rc, out, err = main_here("predict", text_run, "--text", "the cat")  # a table, top 5
    assert rc == 0 and "top 5" in out, err


def test_predict_text_on_a_run_that_is_not_a_text_run_is_refused(main_here, rows_run):
    rc, out, err = main_here("predict", rows_run, "--text", "abc")
    assert rc == 2 and "is not a text run" in one_line(err)


# -- eval, gradcheck ------------------------------------------------------------------------
def test_eval_of_a_text_run_reports_bits_per_character_and_perplexity(main_here, text_run):
    rc, out, err = main_here("eval", text_run, "--json")
    assert rc == 0, err
    test = json.loads(out)["test"]
    assert test["bits_per_char"] == pytest.approx(test["loss"] / math.log(2))
    assert test["perplexity"] == pytest.approx(math.exp(test["loss"]))
    assert 0 <= test["accuracy"] <= 1 and "confusion_matrix" not in json.loads(out)
    summary = json.loads((text_run / "summary.json").read_text())
    assert summary["test"] == pytest.approx(test)  # the same windows as training tested
    records = [json.loads(line) for line in (text_run / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_loss", "bits_per_char", "perplexity"} <= set(r) for r in records)
    rc, out, err = main_here("eval", text_run, "--data", text_run / "data.json")
    assert rc == 2 and "is a text run" in one_line(err)


@pytest.mark.parametrize("raw", ["stateful", "rows"])
def test_gradcheck_of_a_recurrent_network(main_here, tmp_path, raw):
    path = write(tmp_path, stateful_text(tmp_path) if raw == "stateful" else ROWS)
    rc, out, err = main_here("gradcheck", path, "--batch", "4", "--entries", "30")
    assert rc == 0, err
    assert "gradient check passed" in err and ("W_h" in out)


# -- sweep, tune, plot, compare -------------------------------------------------------------
def test_sweep_plot_and_compare_take_recurrent_runs(main_here, tmp_path):
    pytest.importorskip("matplotlib")
    raw = stateful_text(tmp_path, epochs=1)
    raw["sweep"] = {"grid": {"model.layers.1.hidden_size": [4, 6]}}
    rc, out, err = main_here("sweep", write(tmp_path, raw), "--out", tmp_path / "sweeps",
                             "--json")
    assert rc == 0, err
    runs = sorted((tmp_path / "sweeps").glob("*/runs/*"))
    assert len(runs) == 2
    rc, out, err = main_here("compare", *runs)
    assert rc == 0 and "test bits/char" in out and "test perplexity" in out, err
    rc, out, err = main_here("plot", *runs, "-o", tmp_path / "curves.png")
    assert rc == 0 and (tmp_path / "curves.png").stat().st_size > 0, err


def test_tune_takes_a_recurrent_experiment(main_here, tmp_path):
    pytest.importorskip("optuna")
    raw = stateful_text(tmp_path, epochs=1)
    raw["tune"] = {"space": {"optimizer.lr": "loguniform:0.001:0.03"}, "trials": 2}
    rc, out, err = main_here("tune", write(tmp_path, raw), "--out", tmp_path / "tunes")
    assert rc == 0, err
    assert len(list((tmp_path / "tunes").glob("*/best.yaml"))) == 1


# -- export: onnxruntime gives what the network gives ---------------------------------------
@pytest.mark.parametrize("which", ["text_run", "rows_run"])
def test_export_of_a_recurrent_run_runs_in_onnxruntime(main_here, request, tmp_path, which):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from scratchnet.experiment import load_run

    run = request.getfixturevalue(which)
    rc, out, err = main_here("export", run, "-o", tmp_path / "model.onnx")
    assert rc == 0, err
    _, net, info, _ = load_run(run)
    rng = np.random.default_rng(0)
    if which == "text_run":  # ids, as floats
        x = rng.integers(0, info["n_outputs"], (5, info["n_features"])).astype(np.float32)
        expected = net.predict(x)
    else:  # raw pixels: the graph scales them as training did
        from scratchnet.data import Scaler

        x = rng.integers(0, 17, (5, 64)).astype(np.float32)
        scaled = Scaler.from_dict(info["scaler"]).transform(x, "float32")
        expected = net.predict(scaled.reshape(5, 8, 8))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


# -- resume ---------------------------------------------------------------------------------
def test_a_stateful_text_run_extends_with_resume(main_here, tmp_path):
    path = write(tmp_path, stateful_text(tmp_path, epochs=1))
    rc, out, err = main_here("train", path, "-q", "--json", "--out", tmp_path / "runs")
    assert rc == 0, err
    first = Path(json.loads(out)["run_dir"])
    rc, out, err = main_here("train", "--resume", first, "--epochs", "2", "-q", "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert summary["extends"] == str(first.resolve())


# -- hostile text files and options ---------------------------------------------------------
HOSTILE = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, 1, "not UTF-8 text"),
    "latin-1": ("caf\xe9 au lait. ".encode("latin-1") * 40, 1, "not UTF-8 text"),
    "nul bytes": (b"text\x00\x00 and zeros " * 40, 1, "a NUL byte: a binary file"),
    "empty": (b"", 1, "empty; expected a UTF-8 text file"),
    "one character": (b"x", 1, "holds one character"),
    "a vocabulary beyond its cap": ("".join(chr(0x4E00 + i) for i in range(MAX_VOCAB + 1))
                                    .encode("utf-8") * 2, 1,
                                    f"more than the {MAX_VOCAB:,} a vocabulary may hold"),
    "shorter than a window": (b"short text" * 3, 2, "data.seq_len: "),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_text_file_is_one_line_and_a_failure(tmp_path, case):
    """The real command in its own process, bounded in time and memory (run_bounded)."""
    content, code, message = HOSTILE[case]
    raw = text_config(tmp_path, [{"type": "embedding", "dim": 4}, {"neurons": "auto"}])
    Path(raw["data"]["path"]).write_bytes(content)
    path = write(tmp_path, raw)
    rc, out, err, _ = run_bounded(["train", path, "--out", tmp_path / "runs", "-q"], tmp_path)
    assert rc == code and not out
    line = one_line(err)
    assert message in line and "text.txt" in line, line
    if code == 2:  # an option at fault: the experiment file's line and key
        assert re.search(r"entry\.yaml:\d+: data\.seq_len: ", line), line
    assert not any((tmp_path / "runs").glob("*/weights.safetensors"))


@pytest.mark.parametrize("key, value, message", [
    ("seq_len", 10**6, "seq_len must be an integer in [1, 10000]"),
    ("streams", 10**4, "streams=10000 of a window of seq_len=10 each needs at least"),
    ("stride", 0, "stride must be a positive integer"),
    ("length", 20, "length=20 does not apply to the text dataset"),
])
def test_a_text_option_out_of_bounds_names_its_key(tmp_path, key, value, message):
    raw = text_config(tmp_path, [{"type": "embedding", "dim": 4}, {"neurons": "auto"}],
                      **{key: value})
    raw["train"]["batch_size"] = raw["data"].get("streams", 16)
    rc, out, err, _ = run_bounded(["validate", write(tmp_path, raw)], tmp_path)
    assert rc == 2
    line = one_line(err)
    assert re.search(rf"entry\.yaml:\d+: data\.{key}: ", line) and message in line, line
