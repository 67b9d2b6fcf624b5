"""The report's own pictures (the others are ``scratchnet plot``'s): a classification run's
most confident mistakes drawn as images, and a regression run's predictions against the
truth. Drawn as :mod:`scratchnet.plots` draws (matplotlib's object-oriented API)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..plots import panel_figure, save_png

#: the most mistakes drawn, and how many to a row
MISTAKES, MISTAKES_PER_ROW = 16, 8


def _images(rows: np.ndarray, channels: int, shape: tuple[int, int]) -> np.ndarray:
    """Flat rows (n, channels*H*W) as images a picture shows: (n, H, W) for one channel,
    (n, H, W, 3) scaled into [0, 1] for colour."""
    images = np.asarray(rows, dtype=np.float64).reshape(len(rows), channels, *shape)
    if channels == 1:
        return images[:, 0]
    images = images[:, :3].transpose(0, 2, 3, 1)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(images.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    return (images - low) / span


def confident_mistakes(rows, channels: int, shape, y_true, predicted, confidence,
                       classes: list, output: str | Path, *, probabilities: bool) -> Path | None:
    """The :data:`MISTAKES` test images the network got wrong with the highest
    ``confidence`` (its probability, or score, for the class it chose), each titled with
    its true and its predicted class; None when it made no mistake."""
    wrong = np.flatnonzero(np.asarray(predicted) != np.asarray(y_true))
    if not len(wrong):
        return None
    wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:MISTAKES]
    columns = min(MISTAKES_PER_ROW, len(wrong))
    n_rows = math.ceil(len(wrong) / columns)
    fig, axes, _ = panel_figure(columns * n_rows, n_rows)
    fig.set_size_inches(1.45 * columns, 1.75 * n_rows + 0.4)
    images = _images(np.asarray(rows)[wrong], channels, tuple(shape))
    for ax, image, i in zip(axes[:len(wrong)], images, wrong, strict=True):
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, interpolation="nearest")
        share = f"{100 * confidence[i]:.0f}%" if probabilities else f"{confidence[i]:.2g}"
        ax.set_title(f"true {classes[y_true[i]]}\nsaid {classes[predicted[i]]} {share}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(wrong):]:
        ax.set_visible(False)
    fig.suptitle("the most confident mistakes on the test split", fontsize=10)
    return save_png(fig, output)


def predicted_against_true(y_true: np.ndarray, y_pred: np.ndarray, output: str | Path,
                           *, title: str) -> Path:
    """A regression run's test predictions against the true values, the line y = x where
    a perfect model's points would lie."""
    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    fig, [ax], _ = panel_figure(1)
    fig.set_size_inches(5.5, 5)
    ax.scatter(y_true, y_pred, s=10, alpha=0.6, color="C0", edgecolors="none")
    finite = np.concatenate([y_true, y_pred])
    finite = finite[np.isfinite(finite)]
    if len(finite):
        low, high = float(finite.min()), float(finite.max())
        ax.plot([low, high], [low, high], color="grey", ls="--", lw=1, label="predicted = true")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return save_png(fig, output)
