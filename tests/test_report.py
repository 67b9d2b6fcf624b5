"""``scratchnet report``: one HTML file that stands alone, through the real command line on
real runs (digits images, diabetes regression, a sweep, runs with health, recurrent runs),
and in a real browser (headless Chromium, network off): every picture decodes, nothing is
fetched, no console error, a phone's width, print."""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pytest

from browser import Browser
from conftest import run_cli, text_config, write_config

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

DATA_URL = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
HOSTILE = '<script>alert("x")</script> & "quoted"'


def pictures(text: str) -> list:
    """Every inline picture of the page, decoded (PIL checks the PNG is whole)."""
    out = []
    for data in DATA_URL.findall(text):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            out.append(image.size)
    return out


def stands_alone(text: str) -> None:
    """No script, no stylesheet or font from elsewhere, every src a data: URL."""
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', text)
    assert all(s.startswith(("data:image/png;base64,", "#")) for s in sources), sources
    assert "default-src 'none'" in text  # the browser is told to fetch nothing


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    config = write_config(folder, "digits", name="digits_report", train={"epochs": 2})
    rc, _, err = run_cli(["train", config, "--health", "-q"], folder)
    assert rc == 0, err
    [run_dir] = (folder / "runs").iterdir()
    rc, out, err = run_cli(["report", run_dir], folder)
    assert rc == 0, err
    assert out.strip() == str(run_dir / "report.html")
    return folder, run_dir, (run_dir / "report.html").read_text(encoding="utf-8")


def test_a_classification_report_holds_everything_and_stands_alone(digits_run):
    _, run_dir, text = digits_run
    stands_alone(text)
    for anchor in ("summary", "curves", "health", "gradient-flow", "test", "config"):
        assert f'<section id="{anchor}">' in text
    # curves with the confusion matrix, health, gradient flow, the mistakes drawn
    assert len(pictures(text)) == 4
    rows = re.findall(r"<tr><td>(\d)</td>(?:<td class=\"num\">[^<]*</td>){4}</tr>", text)
    assert sorted(rows) == [str(d) for d in range(10)]  # precision and recall per digit
    config = (run_dir / "config.yaml").read_text()
    assert html.escape(config, quote=True) in text  # the resolved config, as the run has it


@pytest.fixture(scope="module")
def hostile_run(digits_run):
    """The digits run as someone sent it, its config's name edited to markup."""
    import shutil

    folder, run_dir, _ = digits_run
    copy = folder / "sent"
    shutil.copytree(run_dir, copy)
    config = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(config.replace("name: digits_report",
                                                     f"name: '{HOSTILE}'"))
    rc, out, err = run_cli(["report", copy], folder)
    assert rc == 0, err
    return copy / "report.html"


def test_what_a_run_folder_says_is_text_never_markup(hostile_run):
    text = hostile_run.read_text()
    assert HOSTILE not in text and "<script>" not in text
    assert f"<h1>{html.escape(HOSTILE, quote=True)}</h1>" in text
    # the edited config no longer loads: said in a note, the name in it escaped too
    test = text[text.index('<section id="test">'):text.index('<section id="config">')]
    assert 'class="note">no test evaluation:' in test and "&lt;script&gt;" in test


def test_a_regression_report_shows_predictions_against_the_truth(tmp_path):
    config = write_config(tmp_path, "diabetes", raw={
        "name": "diabetes_report", "seed": 1, "data": {"dataset": "diabetes",
                                                       "validation": 0.2},
        "model": {"layers": [{"neurons": 8, "activation": "tanh"},
                             {"neurons": 1, "activation": "linear"}], "loss": "mse"},
        "optimizer": {"name": "sgd_momentum", "lr": 0.001, "momentum": 0.9},
        "train": {"epochs": 2, "batch_size": 32, "eval_every": 1}})
    rc, _, err = run_cli(["train", config, "-q"], tmp_path)
    assert rc == 0, err
    [run_dir] = (tmp_path / "runs").iterdir()
    rc, out, err = run_cli(["report", run_dir, "-o", "r.html"], tmp_path)
    assert rc == 0, err
    text = (tmp_path / "r.html").read_text()
    stands_alone(text)
    assert 'alt="predicted against true"' in text and "precision" not in text
    assert len(pictures(text)) == 2  # curves, scatter (no health recorded)


def test_several_runs_get_the_comparison_table_and_the_curves_together(tmp_path):
    config = write_config(tmp_path, "tiny", train={"epochs": 1})
    rc, out, err = run_cli(["sweep", config, "--grid", "optimizer.lr=0.05,0.2", "-j", "1",
                            "-q"], tmp_path)
    assert rc == 0, err
    [sweep] = (tmp_path / "sweeps").iterdir()
    rc, out, err = run_cli(["report", sweep], tmp_path)
    assert rc == 0, err
    assert out.strip() == str(sweep / "report.html")
    text = (sweep / "report.html").read_text()
    stands_alone(text)
    table = text[text.index('<section id="comparison">'):text.index('<section id="curves">')]
    assert table.count("<tr>") == 1 + 2 and "<th>lr</th>" in table
    assert len(pictures(text)) == 1  # the curves of both runs in one picture


def test_a_recurrent_run_report_shows_its_health_and_its_test_split(adding_runs, tmp_path):
    made = adding_runs
    rc, out, err = run_cli(["report", *made, "-o", "two.html"], tmp_path)
    assert rc == 0, err
    text = (tmp_path / "two.html").read_text()
    assert '<section id="health">' in text and '<section id="gradient-flow">' in text
    rc, out, err = run_cli(["report", made[1], "-o", "one.html"], tmp_path)
    assert rc == 0, err
    text = (tmp_path / "one.html").read_text()
    stands_alone(text)
    # curves, health (steps back, gates), gradient flow, test predictions against the truth
    assert len(pictures(text)) == 4
    test = text[text.index('<section id="test">'):text.index('<section id="config">')]
    assert "no test evaluation" not in test


def test_bad_arguments_are_one_line(tmp_path, digits_run):
    _, run_dir, _ = digits_run
    rc, out, err = run_cli(["report", run_dir, "-o", "report.txt"], tmp_path)
    assert rc == 2 and "use a name ending in .html" in err and len(err.splitlines()) == 1
    rc, out, err = run_cli(["report", tmp_path], tmp_path)
    assert rc == 2 and "neither a run folder" in err


def test_a_text_run_trained_from_its_config_reports_generated_text(tmp_path):
    """A character model trained by ``scratchnet train`` from a text config, on a text of
    markup characters: its report holds a sample at each temperature, of the sample's
    length, drawn from the text's characters, and escaped where it is shown."""
    from scratchnet.report.sections import SAMPLE_LENGTH, SAMPLE_TEMPERATURES

    config = text_config(tmp_path, [{"type": "embedding", "dim": 4},
                                    {"type": "lstm", "hidden_size": 8}, {"neurons": "auto"}])
    (tmp_path / "text.txt").write_text("<a&b> " * 200, encoding="utf-8")
    path = write_config(tmp_path, "text", raw=config)
    rc, _, err = run_cli(["train", path, "-q", "--epochs", "2"], tmp_path)
    assert rc == 0, err
    [run_dir] = (tmp_path / "runs").iterdir()
    rc, out, err = run_cli(["report", run_dir], tmp_path)
    assert rc == 0, err
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    stands_alone(text)
    shown = re.findall(r"<h3>temperature ([\d.]+)</h3>\s*<pre>(.*?)</pre>", text, re.S)
    assert [float(t) for t, _ in shown] == list(SAMPLE_TEMPERATURES)
    samples = [html.unescape(raw) for _, raw in shown]
    assert all(len(s) == SAMPLE_LENGTH and set(s) <= set("<a&b> ") for s in samples)
    assert any(c in "<&>" for c in "".join(samples))  # markup the page must not run
    assert not any("<" in raw or ">" in raw for _, raw in shown)


# -- in a real browser ----------------------------------------------------------------------
def test_the_report_in_a_real_browser(digits_run, hostile_run, tmp_path):
    folder, run_dir, _ = digits_run
    page = run_dir / "report.html"
    with Browser() as browser:
        wide = browser.open(page, width=1200)
        shot = browser.screenshot(tmp_path / "report-1200.png")
        phone = browser.open(page, width=390, height=844, mobile=True)
        phone_shot = browser.screenshot(tmp_path / "report-390.png")
        printed = browser.open(page, width=800, media="print")
        pdf = browser.pdf()
        sent = browser.open(hostile_run)
    for visit in (wide, phone, printed):
        assert visit.console_errors == []
        assert [u for u in visit.requests if not u.startswith("data:")] == [page.as_uri()]
        images = visit.facts["images"]
        assert len(images) == 4 and all(i["ok"] and i["width"] > 0 for i in images), images
        assert visit.facts["scripts"] == 0 and visit.facts["stylesheets"] == 0
        assert visit.facts["linked"] == []
    assert sent.facts["title"] == HOSTILE and sent.console_errors == []  # shown as text
    assert HOSTILE in sent.facts["text"]
    # a phone's width: nothing wider than the screen, every picture within it
    assert phone.facts["scrollWidth"] <= 390
    assert all(i["shown"] <= 390 for i in phone.facts["images"])
    assert printed.facts["nav"] == "none" and pdf.startswith(b"%PDF")
    with Image.open(shot) as image:
        assert image.size[0] <= 1200 and image.size[1] > 1500
    with Image.open(phone_shot) as image:
        assert image.size[0] == 390
        pixels = np.asarray(image.convert("L"))
        assert pixels.min() < 100 and pixels.max() > 200  # something drawn on white
    print(f"screenshots: {shot} {phone_shot}")
