"""`scratchnet plot`, `compare` and `train --plot` on real runs (digits and diabetes, a
few epochs): the PNGs exist, have the expected size, and show the runs' lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from scratchnet import runs  # noqa: E402
from conftest import digits_config, run_cli, run_main as cli  # noqa: E402
from scratchnet.config import validate  # noqa: E402
from scratchnet.experiment import train_experiment  # noqa: E402
from scratchnet.plots import DPI, PANEL_HEIGHT, PANEL_WIDTH, confusion_matrix_of  # noqa: E402
from scratchnet.compare import read_run, run_labels  # noqa: E402

DIGITS = digits_config(name="digits_plot", seed=5, train={"epochs": 4})
DIABETES = {
    "name": "diabetes_plot",
    "seed": 5,
    "data": {"dataset": "diabetes", "validation": 0.2},
    "model": {"layers": [{"neurons": 8, "activation": "tanh"},
                         {"neurons": 1, "activation": "linear"}], "loss": "mse"},
    "optimizer": {"name": "sgd_momentum", "lr": 0.001, "momentum": 0.9},
    "train": {"epochs": 3, "batch_size": 32},
}
C0, C1 = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colours
DARK_BLUE = (8, 48, 107)  # the top of the "Blues" colour map: a confusion matrix's diagonal


def train(tmp_path: Path, raw: dict, **changes) -> Path:
    raw = json.loads(json.dumps(raw))
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return train_experiment(validate(raw, "test"), out=tmp_path / "runs").run_dir




def pixels_near(img: np.ndarray, color, tol: int = 40) -> int:
    return int((np.abs(img[..., :3].astype(int) - np.array(color)).sum(axis=-1) < tol).sum())


def load_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def assert_not_blank(img: np.ndarray) -> None:
    non_white = (img.sum(axis=-1) < 3 * 245).mean()
    assert non_white > 0.02, f"only {non_white:.1%} of the picture is drawn on"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50


def size(panels: int) -> tuple[int, int]:
    return round(panels * PANEL_WIDTH * DPI), round(PANEL_HEIGHT * DPI)


def test_plot_two_runs_labels_them_by_what_differs(tmp_path, capsys):
    a = train(tmp_path, DIGITS, optimizer__lr=0.05)
    b = train(tmp_path, DIGITS, optimizer__lr=0.2)
    assert run_labels([read_run(a), read_run(b)]) == ["lr=0.05", "lr=0.2"]
    out_png = tmp_path / "both.png"
    code, out, err = cli(capsys, "plot", a, b, "-o", out_png)
    assert code == 0, err
    assert out.strip() == str(out_png)
    img = load_png(out_png)
    assert img.shape[1::-1] == size(2)  # (width, height): two panels, no confusion matrix
    assert_not_blank(img)
    half = img.shape[1] // 2
    for panel in (img[:, :half], img[:, half:]):  # both runs drawn in both panels
        assert pixels_near(panel, C0) > 200 and pixels_near(panel, C1) > 200
    assert pixels_near(img, (214, 39, 40)) < 20  # no third run's colour (C3 red)


def test_plot_one_classification_run_adds_its_confusion_matrix(tmp_path, capsys):
    run = train(tmp_path, DIGITS)
    code, out, err = cli(capsys, "plot", run, "--no-confusion", "-o", tmp_path / "plain.png")
    assert code == 0, err
    plain = load_png(tmp_path / "plain.png")
    assert plain.shape[1::-1] == size(2)

    code, out, err = cli(capsys, "plot", run)  # default: curves.png in the run folder
    assert code == 0, err
    assert Path(out.strip()) == run / runs.PLOT
    img = load_png(run / runs.PLOT)
    assert img.shape[1::-1] == size(3)
    assert_not_blank(img)
    third = img[:, 2 * img.shape[1] // 3:]
    assert pixels_near(third, DARK_BLUE) > 1000  # a strong diagonal: most digits right
    assert pixels_near(img[:, : 2 * img.shape[1] // 3], DARK_BLUE) < 200

    # the matrix drawn is the one `scratchnet eval` reports
    cm, classes = confusion_matrix_of(run)
    code, out, err = cli(capsys, "eval", run, "--json")
    assert code == 0, err
    assert cm.tolist() == json.loads(out)["confusion_matrix"]
    assert classes == list(range(10)) and np.trace(cm) / cm.sum() > 0.8


def test_plot_regression_shows_mae_and_no_confusion_matrix(tmp_path, capsys):
    run = train(tmp_path, DIABETES)
    code, out, err = cli(capsys, "plot", run, "-o", tmp_path / "reg.png")
    assert code == 0, err
    img = load_png(tmp_path / "reg.png")
    assert img.shape[1::-1] == size(2)
    assert_not_blank(img)
    assert pixels_near(img, C0) > 200


def test_train_plot_writes_curves_into_the_run_folder(tmp_path, capsys):
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump(DIGITS))
    code, out, err = cli(capsys, "train", cfg, "--out", tmp_path / "runs", "--plot", "--quiet")
    assert code == 0, err
    (run,) = list((tmp_path / "runs").iterdir())
    img = load_png(run / runs.PLOT)
    assert img.shape[1::-1] == size(2)
    assert_not_blank(img)


def test_compare_shows_only_the_keys_that_differ(tmp_path, capsys):
    a = train(tmp_path, DIGITS, optimizer__lr=0.05)
    b = train(tmp_path, DIGITS, optimizer__lr=0.2, model__layers=[
        {"neurons": 16, "activation": "sigmoid"}, {"neurons": 10, "activation": "linear"}])
    code, out, err = cli(capsys, "compare", a, b, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["keys"] == ["model.layers.0.activation", "optimizer.lr"]
    for got, run in zip(result["runs"], (a, b), strict=True):
        summary = json.loads((run / runs.SUMMARY).read_text())
        assert got["run_dir"] == str(run) and got["status"] == "completed"
        assert got["metrics"]["accuracy"] == summary["test"]["accuracy"]
        assert got["metrics"]["val_loss"] == summary["best_val_loss"]
    assert [r["config"]["optimizer.lr"] for r in result["runs"]] == [0.05, 0.2]

    code, out, err = cli(capsys, "compare", a, b)
    assert code == 0, err
    assert "layers.0.activation" in out and "sigmoid" in out and a.name in out and b.name in out


def test_plot_and_compare_refuse_what_is_not_a_run(tmp_path, capsys):
    code, _, err = cli(capsys, "plot", tmp_path)
    assert code == 2 and "neither a run folder" in err
    code, _, err = cli(capsys, "compare", tmp_path / "missing")
    assert code == 2 and "no such folder" in err
    run = train(tmp_path, DIGITS)
    code, _, err = cli(capsys, "plot", run, "-o", tmp_path / "curves.jpg")
    assert code == 2 and "PNG" in err


def test_a_sweep_is_one_line_per_grid_point_with_its_seeds_band_and_a_legend(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(DIGITS))
    code, out, err = cli(capsys, "sweep", config, "--grid", "optimizer.lr=0.02,0.1,0.5",
                         "--seeds", "2", "--jobs", "1", "-q", "--out", tmp_path / "sweeps")
    assert code == 0, err
    (folder,) = (tmp_path / "sweeps").iterdir()
    from scratchnet.plots import group_runs
    from scratchnet.compare import expand_paths
    groups = group_runs([read_run(d) for d in expand_paths([folder])])
    assert [label for label, _ in groups] == ["lr=0.02 (2 seeds)", "lr=0.1 (2 seeds)",
                                              "lr=0.5 (2 seeds)"]
    code, out, err = cli(capsys, "plot", folder)
    assert code == 0, err
    img = load_png(Path(out.strip()))
    assert img.shape[1::-1] == size(2)
    for colour in (C0, C1, (44, 160, 44)):  # three lines, C0 C1 C2
        assert pixels_near(img, colour) > 200
    assert pixels_near(img, (214, 39, 40)) < 20  # no fourth
    # the seeds' bands: light tints of the line colours
    assert pixels_near(img, (215, 229, 240), tol=25) > 500


def test_classification_and_regression_never_share_an_axis(tmp_path, capsys):
    a, b = train(tmp_path, DIGITS), train(tmp_path, DIABETES)
    code, out, err = cli(capsys, "plot", a, b, "-o", tmp_path / "mixed.png")
    assert code == 0, err
    img = load_png(tmp_path / "mixed.png")
    width, height = size(2)
    assert img.shape[1::-1] == (width, 2 * height)  # a row of panels per task


CNN = digits_config(name="digits_cnn_plot", seed=5, train={"epochs": 2}, model={"layers": [
    {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "activation": "relu"},
    {"type": "flatten"}, {"type": "dense", "neurons": 10, "activation": "linear"}]})


def _figure_of(monkeypatch, draw):
    """The matplotlib figure ``draw()`` saves (it is written to its file as well)."""
    import scratchnet.plots as plots

    saved = []
    save = plots.save_png
    monkeypatch.setattr(plots, "save_png",
                        lambda fig, output: saved.append(fig) or save(fig, output))
    draw()
    return saved[0]


def test_runs_of_different_configs_get_short_labels_and_a_table(tmp_path, monkeypatch):
    """An MLP, a CNN (dozens of differing keys), a second MLP of the same name and a
    regression run: #1..#4 in the legends, a table naming each folder, every run's label
    in the legend of its own row (the regression one too), no matplotlib warning."""
    mlp, cnn = train(tmp_path, DIGITS), train(tmp_path, CNN)
    again, reg = train(tmp_path, DIGITS, optimizer__lr=0.2, train__epochs=3), \
        train(tmp_path, DIABETES)
    runs_ = [reg, mlp, cnn, again]
    rc, out, err = run_cli(["plot", *runs_, "-o", "mixed.png"], tmp_path,
                           env={"PYTHONWARNINGS": "error"})
    assert (rc, err) == (0, ""), err
    from scratchnet.plots import TABLE_LINE, learning_curves, legend_labels

    labels, table = legend_labels([read_run(r) for r in runs_])
    assert labels == ["#1", "#2", "#3", "#4"]
    assert [line.split() for line in table] == [[f"#{i}", r.name] for i, r in
                                                enumerate(runs_, 1)]
    img = load_png(tmp_path / "mixed.png")
    width, height = size(2)
    assert img.shape[1::-1] == (width, 2 * height + round(5 * TABLE_LINE * DPI))
    for colour in (C0, C1, (44, 160, 44), (214, 39, 40)):  # four runs, four colours
        assert pixels_near(img, colour) > 100

    fig = _figure_of(monkeypatch, lambda: learning_curves(runs_, tmp_path / "again.png"))
    legends = [[t.get_text() for t in ax.get_legend().get_texts()]
               for ax in fig.axes if ax.get_legend() is not None]
    assert legends == [["#1"], ["#2", "#3", "#4"]]  # regression row, classification row
    assert [t.get_text() for t in fig.axes[-1].texts] == table


def test_runs_of_different_experiments_are_labelled_by_name(tmp_path):
    mlp, cnn = train(tmp_path, DIGITS), train(tmp_path, CNN)
    from scratchnet.plots import legend_labels

    assert legend_labels([read_run(mlp), read_run(cnn)]) == (["digits_plot",
                                                             "digits_cnn_plot"], [])
    rc, out, err = run_cli(["plot", mlp, cnn, "-o", "two.png"], tmp_path,
                           env={"PYTHONWARNINGS": "error"})
    assert (rc, err) == (0, ""), err
    assert load_png(tmp_path / "two.png").shape[1::-1] == size(2)  # no table under it
