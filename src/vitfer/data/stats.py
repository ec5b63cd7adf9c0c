"""Data-set statistics: class counts per split, image sizes, duplicates across splits, a distribution plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vitfer.data.cache import FaceCache, pixel_hashes  # noqa: E402


def class_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """A table of label x split counts, with totals; classes in the canonical order, splits train/val/test."""
    from vitfer.labels import EMOTIONS_8

    table = pd.crosstab(manifest["label"], manifest["split"], margins=True, margins_name="total")
    rows = [n for n in EMOTIONS_8 if n in table.index] + sorted(set(table.index) - set(EMOTIONS_8) - {"total"})
    columns = [c for c in ("train", "val", "test", "unsplit") if c in table.columns]
    columns += sorted(set(table.columns) - set(columns) - {"total"})
    return table.loc[rows + ["total"], columns + ["total"]]


def cross_split_duplicates(cache: FaceCache) -> dict[str, int]:
    """How many images of each split pair have pixel-identical twins in the other split."""
    hashes = pixel_hashes(cache.images)
    by_split: dict[str, set[str]] = {}
    for h, split in zip(hashes, cache.split):
        by_split.setdefault(split, set()).add(h)
    result = {}
    splits = sorted(by_split)
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            result[f"{a}~{b}"] = len(by_split[a] & by_split[b])
    counts = Counter(hashes)
    result["within_any_split"] = sum(c - 1 for c in counts.values() if c > 1)
    return result


def image_sizes(manifest: pd.DataFrame, limit: int = 2000) -> Counter:
    """Counts of (width, height) over up to ``limit`` image files of a manifest."""
    import cv2

    sizes: Counter = Counter()
    if "pixels" in manifest.columns:
        sizes[(48, 48)] = len(manifest)
        return sizes
    for item in manifest["item"].head(limit):
        image = cv2.imread(str(item), cv2.IMREAD_UNCHANGED)
        sizes[(image.shape[1], image.shape[0]) if image is not None else ("unreadable", "")] += 1
    return sizes


def plot_class_distribution(manifest: pd.DataFrame, out: str | Path) -> Path:
    """Bar chart of class counts per split."""
    table = pd.crosstab(manifest["label"], manifest["split"])
    ax = table.plot.bar(figsize=(9, 4), rot=0)
    ax.set(ylabel="images", title="class distribution")
    ax.grid(axis="y", alpha=0.3)
    fig = ax.get_figure()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
