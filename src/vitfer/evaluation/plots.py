"""Figures of an evaluation: confusion matrices, reliability diagram, prediction grids, comparison bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from vitfer.files import save_figure  # noqa: E402


def _save(fig, out: str | Path) -> Path:
    return save_figure(fig, out)


def plot_confusion(matrix: list[list[int]], labels: list[str], out: str | Path, title: str = "") -> Path:
    """Counts (left) and row-normalised recall (right) side by side."""
    counts = np.asarray(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, values, fmt, name in ((axes[0], counts, "d", "counts"), (axes[1], normalised, ".2f", "row-normalised")):
        ConfusionMatrixDisplay(values, display_labels=labels).plot(ax=ax, values_format=fmt, colorbar=False,
                                                                   cmap="Blues", xticks_rotation=45)
        ax.set_title(f"{title} {name}".strip())
    return _save(fig, out)


def plot_reliability(calibration: dict, out: str | Path) -> Path:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    edges = np.asarray(calibration["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    accuracy = np.array([np.nan if a is None else a for a in calibration["accuracy"]])
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.bar(centres, np.nan_to_num(accuracy), width=edges[1] - edges[0], edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"reliability (ECE {calibration['ece']:.3f})")
    ax.legend(loc="upper left")
    return _save(fig, out)


def plot_prediction_grid(images: np.ndarray, true: list[str], predicted: list[str], confidence: list[float],
                         out: str | Path, title: str = "", columns: int = 8) -> Path | None:
    """Faces (N x C x H x W uint8) with true label, predicted label and confidence; wrong ones in red."""
    if len(images) == 0:
        return None
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p, c in zip(axes.flat, images, true, predicted, confidence):
        picture = image.transpose(1, 2, 0)
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"T {t}\nP {p} {c:.0%}", fontsize=7, color="black" if t == p else "red")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_comparison_bars(names: list[str], values: dict[str, list[float]], out: str | Path) -> Path:
    """Grouped bars, one group per model and one bar per metric."""
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names) * len(values) / 2), 4.5))
    width = 0.8 / max(1, len(values))
    x = np.arange(len(names))
    for i, (metric, series) in enumerate(values.items()):
        bars = ax.bar(x + i * width, series, width, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x + width * (len(values) - 1) / 2, names, rotation=20, ha="right")
    ax.set(ylim=(0, 1), ylabel="score")
    ax.legend()
    return _save(fig, out)


def plot_learning_curves(curves: dict[str, tuple[list[float], list[float]]], out: str | Path,
                         xlabel: str = "training minutes (this machine)", ylabel: str = "validation accuracy") -> Path:
    """One line per run: ``name -> (x, y)``, e.g. validation accuracy after each epoch against training minutes."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, marker="o", markersize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    # beside the axes: inside, the legend hides whichever curve ends in its corner
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, out)
