"""Training curves from a run's metrics.csv."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vitfer.files import save_figure  # noqa: E402


def plot_curves(metrics_csv: str | Path, out: str | Path) -> Path | None:
    """Loss and accuracy per epoch (train and validation) as one PNG; None if there is nothing to plot."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        return None
    table = pd.read_csv(metrics_csv)
    if "epoch" not in table:
        return None
    per_epoch = table.groupby("epoch").mean(numeric_only=True)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for column in ("train_loss", "val_loss"):
        if column in per_epoch:
            ax_loss.plot(per_epoch.index, per_epoch[column], marker="o", label=column)
    for column in ("val_acc", "val_f1"):
        if column in per_epoch:
            ax_acc.plot(per_epoch.index, per_epoch[column], marker="o", label=column)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="score", title="validation")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    return save_figure(fig, out, dpi=100)
