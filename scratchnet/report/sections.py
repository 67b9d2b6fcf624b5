"""The parts of a report, each ``(anchor, title, html)``: what a run did, its pictures,
what its weights do on the test split, its config; for several runs, their comparison.

A part that cannot be made (the test data is not on this machine, a run folder from
elsewhere does not load) becomes a note saying why, never a failed report.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from .. import files, runs
from ..errors import ScratchnetError
from . import page
from .page import note, paragraph, table

Section = tuple[str, str, str]

#: generated text per temperature in a text run's report, and its length
SAMPLE_TEMPERATURES, SAMPLE_LENGTH = (0.5, 1.0), 300


class Pictures:
    """Draws PNGs with the functions that write them (``scratchnet plot``'s own) into a
    temporary folder, and hands back their bytes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.count = 0

    def draw(self, draw, *args, **kwargs) -> bytes | None:
        """``draw(*args, PATH, **kwargs)``'s PNG (None when it drew nothing)."""
        self.count += 1
        path = self.folder / f"{self.count}.png"
        written = draw(*args, path, **kwargs)
        return None if written is None else Path(written).read_bytes()


def _attempt(make, what: str) -> tuple[object, str]:
    """``(make(), "")``, or ``(None, a note)`` naming ``what`` could not be made and why."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = make()
        said = "".join(note(f"warning: {w.message}") for w in caught)
        return result, said
    except ScratchnetError as e:
        return None, note(f"no {what}: {' '.join(str(e).split())}")


def _figure_html(pictures: Pictures, draw, args, alt: str, caption: str, what: str,
                 **kwargs) -> str:
    png, said = _attempt(lambda: pictures.draw(draw, *args, **kwargs), what)
    return said + (page.figure(png, alt, caption) if png else "")


# -- one run --------------------------------------------------------------------------------
def summary_section(record: dict) -> Section:
    """How the run ended and its test metrics, from its summary.json."""
    s = record["summary"] or {}
    rows = [["status", record["status"]]]
    for key, label in (("task", "task"), ("dataset", "data set"), ("n_params", "parameters"),
                       ("epochs_run", "epochs run"), ("best_epoch", "best epoch"),
                       ("weights", "weights kept"), ("seconds", "seconds")):
        if s.get(key) is not None:
            value = s[key]
            rows.append([label, f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
                         if isinstance(value, int) else value])
    for name, value in (s.get("test") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = f"{100 * value:.2f}%" if name == "accuracy" else f"{value:.4f}"
            rows.append([f"test {name}", shown])
    body = table(None, rows)
    if s.get("error"):
        body += note(f"error: {s['error']}")
    return "summary", "Summary", body


def curves_section(run_dirs: list[Path], pictures: Pictures, confusion) -> Section:
    from ..plots import learning_curves

    caption = ("Loss per evaluated epoch (solid: training, dashed: validation) and the "
               "validation accuracy or MAE" + ("; the test split's confusion matrix, rows the "
                                              "true class" if confusion else "") + ".")
    return "curves", "Learning curves", _figure_html(
        pictures, learning_curves, (run_dirs,), "learning curves", caption, "learning curves",
        confusion=confusion or False)


def health_sections(records: list[dict], pictures: Pictures) -> list[Section]:
    """The health and gradient-flow pictures, when the runs recorded health."""
    from ..health_plots import grad_flow, health_curves

    watched = [Path(r["run_dir"]) for r in records
               if any(h.get("health") for h in r["history"])]
    if not watched:
        return []
    return [("health", "Health of each layer", _figure_html(
                pictures, health_curves, (watched,), "per-layer health",
                "Per evaluation: dead units, inactive and saturated outputs, update-to-weight "
                "ratios; for recurrent layers the gradient reaching each step back and the "
                "gates' saturation (docs/health.md says how each is measured).", "health")),
            ("gradient-flow", "Gradient flow", _figure_html(
                pictures, grad_flow, (watched,), "gradient flow",
                "Mean (solid) and largest (dashed) |gradient| of each layer's weights in the "
                "last batch before each evaluation, input to output, later evaluations "
                "darker: where the lines fall, the signal dies.", "gradient flow"))]


def config_section(record: dict, heading: str = "Config") -> Section:
    """The run's resolved config, as its config.yaml says it."""
    text, said = _attempt(lambda: files.read_text(
        Path(record["run_dir"]) / runs.CONFIG, files.MAX_CONFIG_BYTES, "a run's YAML config"),
        "config")
    return "config", heading, said + (page.pre(text) if text is not None else "")


def test_sections(run_dir: Path, pictures: Pictures, data_dir: str | None
                  ) -> tuple[list[Section], tuple | None]:
    """What the run's weights do on its test split, as ``eval`` computes it; and the
    confusion matrix (with the classes) for the learning curves' picture."""
    from ..experiment.evaluation import load_run

    info, said = _attempt(lambda: runs.read_json(run_dir / runs.DATA), "data description")
    if info is not None and info.get("kind") == "text":
        loaded, said = _attempt(lambda: load_run(run_dir), "generated text")
        body = said + (text_samples(loaded[1], loaded[2]) if loaded else "")
        return [("samples", "Generated text", body)], None
    evaluated, said = _attempt(lambda: _evaluate(run_dir, data_dir), "test evaluation")
    if evaluated is None:
        return [("test", "Test split", said)], None
    ev, net, ds, X_test, Y_test, info = evaluated
    if ev.task == "classification":
        return [("test", "Test split", said + _classification(ev, net, ds, X_test, info,
                                                              pictures))], \
            (ev.confusion_matrix(), ev.classes)
    return [("test", "Test split", said + _regression(ev, net, X_test, Y_test, info,
                                                      pictures))], None


def _evaluate(run_dir: Path, data_dir: str | None):
    """``experiment.evaluation``'s evaluation of a run on its test split, and what the
    pictures need besides: the network, the data set as read, the prepared split."""
    from ..config import check_data_files
    from ..data import saved_target_scaler
    from ..experiment.build import load_data
    from ..experiment.evaluation import evaluate_split, load_run, read_test_split

    cfg, net, info, _ = load_run(run_dir)
    check_data_files(cfg)
    ds = load_data(cfg, data_dir, found_at=info.get("source"))
    X_test, Y_test = read_test_split(cfg, net, info, data_dir, ds=ds)
    target_scaler = saved_target_scaler(info)
    ev = evaluate_split(net, X_test, Y_test, info["task"], info["classes"],
                        target_scaler.inverse_transform if target_scaler else None)
    return ev, net, ds, X_test, Y_test, info


def _classification(ev, net, ds, X_test, info, pictures: Pictures) -> str:
    from .pictures import confident_mistakes

    rows = [[c["class"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
             f"{c['support']:,}"] for c in ev.per_class()]
    body = paragraph(f"Test accuracy {100 * ev.scores.get('accuracy', float('nan')):.2f}% on "
                     f"{len(ev.y_true):,} examples; per class (precision: of those the "
                     "network called this class, the share that were; recall: of this "
                     "class, the share it found):")
    body += table(["class", "precision", "recall", "F1", "support"], rows, {1, 2, 3, 4})
    shape = info.get("image_shape")
    if shape and len(shape) == 2 and min(shape) >= 4:  # images (not sequences of features)
        probabilities = ev.probabilities is not None
        scores = ev.probabilities if probabilities else net.predict(X_test)
        scores = np.hstack([1 - scores, scores]) if scores.shape[1] == 1 else scores
        confidence = scores[np.arange(len(ev.predicted)), ev.predicted]
        body += _figure_html(
            pictures, confident_mistakes, (ds.X_test, ds.channels, shape, ev.y_true,
                                           ev.predicted, confidence, ev.classes),
            "the most confident mistakes",
            "Test images the network got wrong, the most confident first: the true class, "
            "what it said and its " + ("probability." if probabilities else "score (its "
                                       "loss gives no probabilities)."),
            "pictures of mistakes", probabilities=probabilities)
    return body


def _regression(ev, net, X_test, Y_test, info, pictures: Pictures) -> str:
    from ..data import saved_target_scaler
    from .pictures import predicted_against_true

    predicted = net.predict(X_test)
    scaler = saved_target_scaler(info)
    if scaler is not None:  # both in the data's units
        predicted, Y_test = scaler.inverse_transform(predicted), scaler.inverse_transform(Y_test)
    scores = ", ".join(f"{k} {v:.4g}" for k, v in ev.scores.items())
    return paragraph(f"Test split ({len(Y_test):,} rows): {scores}.") + _figure_html(
        pictures, predicted_against_true, (Y_test, predicted), "predicted against true",
        "Each test row's prediction against its true value; a perfect model's points lie on "
        "the dashed line.", "scatter", title=f"test: predicted against true ({scores})")


def text_samples(net, info: dict) -> str:
    """Text a character model generates (``scratchnet.generate``), one sample per
    temperature of :data:`SAMPLE_TEMPERATURES`, each from seed 0."""
    from ..data import Vocabulary
    from ..generate import generate

    vocabulary = Vocabulary.from_dict(info["vocabulary"])
    body = paragraph(f"{SAMPLE_LENGTH} characters sampled from the model at each temperature "
                     "(lower: closer to always the likeliest character), seed 0:")
    for temperature in SAMPLE_TEMPERATURES:
        text = generate(net, vocabulary, length=SAMPLE_LENGTH, temperature=temperature, seed=0)
        body += f"<h3>temperature {temperature:g}</h3>" + page.pre(text)
    return body


def run_sections(record: dict, data_dir: str | None) -> list[Section]:
    """Everything about one run."""
    run_dir = Path(record["run_dir"])
    with tempfile.TemporaryDirectory(prefix="scratchnet-report-") as folder:
        pictures = Pictures(folder)
        tests, confusion = test_sections(run_dir, pictures, data_dir)
        return [summary_section(record), curves_section([run_dir], pictures, confusion),
                *health_sections([record], pictures), *tests, config_section(record)]


# -- several runs ---------------------------------------------------------------------------
def comparison_section(records: list[dict]) -> Section:
    """``scratchnet compare``'s table: the config keys that differ, and the metrics."""
    from ..compare import (METRIC_HEADERS, compared, format_metric, in_config_order,
                           run_metrics)
    from ..config.diff import differing_keys, flatten, short_keys, show_value

    keys = in_config_order(differing_keys([compared(r) for r in records]))
    names = short_keys(keys)
    metrics = run_metrics(records)
    header = ["run"] + [names[k] for k in keys] + ["status"] + \
        [METRIC_HEADERS[m] + (" (%)" if m == "accuracy" else "") for m in metrics]
    rows = []
    for r in records:
        flat = flatten(compared(r))
        rows.append([Path(r["run_dir"]).name] + [show_value(flat.get(k, "-")) for k in keys]
                    + [r["status"]] + [format_metric(m, r["metrics"].get(m)) for m in metrics])
    first = 2 + len(keys)
    body = paragraph(f"{len(records)} runs" + ("; the config keys where they differ, and their "
                                               "test metrics:" if keys else
                                               " of identical configs:"))
    return "comparison", "Comparison", body + table(
        header, rows, set(range(first, first + len(metrics))))


def comparison_sections(records: list[dict]) -> list[Section]:
    """Several runs (or a sweep's): the table, the curves together, their health."""
    with tempfile.TemporaryDirectory(prefix="scratchnet-report-") as folder:
        pictures = Pictures(folder)
        run_dirs = [Path(r["run_dir"]) for r in records]
        return [comparison_section(records), curves_section(run_dirs, pictures, None),
                *health_sections(records, pictures),
                config_section(records[0], f"Config of {Path(records[0]['run_dir']).name}")]


def title_of(records: list[dict]) -> tuple[str, str]:
    """The report's title and the line under it."""
    if len(records) == 1:
        r = records[0]
        return r["name"], f"run folder {r['run_dir']}: {r['status']}"
    names = sorted({r["name"] for r in records})
    return (names[0] if len(names) == 1 else f"{len(records)} runs",
            f"{len(records)} run folders: " + ", ".join(Path(r["run_dir"]).name for r in records))
