"""Data-set statistics: class counts per split, image sizes, duplicates across splits, a distribution plot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from vitfer.data.cache import FaceCache, pixel_hashes  # noqa: E402
from vitfer.data.manifest import SPLITS  # noqa: E402
from vitfer.errors import SourceError  # noqa: E402
from vitfer.files import save_figure  # noqa: E402


def class_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """A table of label x split counts, with totals; classes in the canonical order, splits train/val/test."""
    from vitfer.labels import EMOTIONS_8

    table = pd.crosstab(manifest["label"], manifest["split"], margins=True, margins_name="total")
    rows = [n for n in EMOTIONS_8 if n in table.index] + sorted(set(table.index) - set(EMOTIONS_8) - {"total"})
    columns = [c for c in (*SPLITS, "unsplit") if c in table.columns]
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
    """Counts of (width, height) over up to ``limit`` image files of a manifest, read from their headers (no pixel
    is decoded: a decompression bomb costs nothing here)."""
    from vitfer.runtime.sources import MAX_PIXELS, image_header

    sizes: Counter = Counter()
    if "pixels" in manifest.columns:
        sizes[(48, 48)] = len(manifest)
        return sizes
    for item in manifest["item"].head(limit):
        try:
            width, height, _ = image_header(Path(item).read_bytes(), str(item), MAX_PIXELS)
        except (OSError, SourceError):
            width = height = 0
        sizes[(width, height) if width else ("unreadable", "")] += 1
    return sizes


def plot_class_distribution(manifest: pd.DataFrame, out: str | Path) -> Path:
    """Bar chart of class counts per split."""
    table = pd.crosstab(manifest["label"], manifest["split"])
    ax = table.plot.bar(figsize=(9, 4), rot=0)
    ax.set(ylabel="images", title="class distribution")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(ax.get_figure(), out, dpi=100)


@dataclass
class DataStats:
    """What ``vitfer data stats`` reports about a data set; ``str()`` gives the report."""

    counts: pd.DataFrame
    sizes: Counter
    votes: str = ""  # FER+ vote statistics, for FER+ data
    duplicates: dict[str, int] | None = None
    sharpness: dict[str, float] | None = None  # median Laplacian variance per split
    blur_sigma: float = 0.0  # > 0: the train split is blurrier than val by about this Gaussian
    skipped: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # labels a release has beyond emotions (AffectNet's 8-10)
    plot: Path | None = None

    def __str__(self) -> str:
        lines = [self.counts.to_string()]
        if self.votes:
            lines.append(self.votes)
        lines.append("image sizes (first 2000): " + ", ".join(f"{w}x{h}: {n}" for (w, h), n in
                                                               self.sizes.most_common(5)))
        if self.duplicates is not None:
            lines.append("pixel-identical duplicates: " + ", ".join(f"{k} {v}" for k, v in self.duplicates.items()))
        if self.sharpness is not None:
            lines.append("sharpness (median Laplacian variance, 2000 per split): "
                         + ", ".join(f"{split} {value:.1f}" for split, value in self.sharpness.items()))
        if self.blur_sigma > 0:
            lines.append(f"WARNING: the train split is much blurrier than val; a Gaussian blur of sigma "
                         f"{self.blur_sigma:.2f} px makes val faces look like train faces. A model trained on it "
                         "loses accuracy on sharp faces. Fix the data if you can; data.match_sharpness=auto "
                         "low-passes a model's inputs to match.")
        if self.dropped and not self.votes:
            lines.append("dropped (not an emotion): " + ", ".join(f"{k} {v}" for k, v in self.dropped.items()))
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} input(s):")
            lines += [f"  {line}" for line in self.skipped[:20]]
        if self.plot is not None:
            lines.append(f"wrote {self.plot}")
        return "\n".join(lines)


def data_stats(path: str | Path, kind: str = "auto", duplicates: bool = True, on_error: str = "raise",
               plot: str | Path | None = None) -> DataStats:
    """Class counts per split, image sizes, and (``duplicates``, which decodes every image) pixel-identical
    twins across splits and sharpness per split.

    >>> stats = data_stats("fer2013")        # doctest: +SKIP
    >>> print(stats)                         # doctest: +SKIP
    >>> stats.counts.loc["disgust", "train"] # doctest: +SKIP
    436
    """
    from vitfer.data.readers import read_dataset

    manifest = read_dataset(path, kind=kind, on_error=on_error)
    stats = DataStats(class_counts(manifest), image_sizes(manifest), skipped=list(manifest.attrs.get("skipped", [])),
                      dropped=dict(manifest.attrs.get("dropped") or {}))
    if "votes" in manifest.columns:
        from vitfer.data.ferplus import read_ferplus_votes, vote_statistics

        stats.votes = (f"{vote_statistics(read_ferplus_votes(path, on_error=on_error))}\n"
                       f"counted above: the majority protocol's labels; it drops {manifest.attrs['dropped']}")
    if duplicates:
        from vitfer.data.cache import build_cache
        from vitfer.data.sharpness import sharpness_mismatch, split_sharpness

        num_classes = 8 if "contempt" in set(manifest["label"]) else 7
        cache = build_cache(manifest, num_classes=num_classes, on_error=on_error)
        stats.duplicates = cross_split_duplicates(cache)
        stats.sharpness = split_sharpness(cache)
        stats.blur_sigma = sharpness_mismatch(cache)
        stats.skipped = list(cache.skipped)
    if plot:
        stats.plot = plot_class_distribution(manifest, plot)
    return stats
