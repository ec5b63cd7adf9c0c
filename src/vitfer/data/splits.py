"""Splits that respect subjects (no person in two splits), and k-fold cross-validation for small sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from vitfer.errors import DataError


def grouped_split(groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """train/val/test per item such that every group (subject) lies in exactly one split; seeded."""
    groups = np.asarray(groups)
    split = np.full(len(groups), "train", dtype=object)
    rest = np.arange(len(groups))
    for name, fraction in (("test", test_fraction), ("val", val_fraction / max(1 - test_fraction, 1e-9))):
        if fraction <= 0 or len(np.unique(groups[rest])) < 2:
            continue
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        keep, held = next(splitter.split(rest, groups=groups[rest]))
        split[rest[held]] = name
        rest = rest[keep]
    return split


def kfold(manifest: pd.DataFrame, folds: int, fold: int, seed: int = 0, group_by: str | None = None,
          val_fraction: float = 0.1) -> pd.DataFrame:
    """Fold ``fold`` of ``folds``-fold cross-validation: that fold is the test split, a seeded share of the rest
    the val split. Stratified by label; with ``group_by`` (e.g. 'subject') no group is in two splits."""
    if folds < 2 or not 0 <= fold < folds:
        raise DataError(f"fold {fold} of {folds}: use folds >= 2 and 0 <= fold < folds")
    if group_by and group_by not in manifest.columns:
        raise DataError(f"cannot group by {group_by!r}: this data set has no such column "
                        f"(it has {', '.join(manifest.columns)})")
    labels = manifest["label"].to_numpy()
    groups = manifest[group_by].to_numpy() if group_by else np.arange(len(manifest))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    held = list(splitter.split(np.zeros(len(labels)), labels, groups))[fold][1]
    out = manifest.copy()
    out["split"] = "train"
    out.iloc[held, out.columns.get_loc("split")] = "test"
    rest = np.flatnonzero(out["split"].to_numpy() == "train")
    if val_fraction > 0:
        inner = (grouped_split(groups[rest], val_fraction, 0.0, seed) if group_by
                 else stratified_split(labels[rest], val_fraction, 0.0, seed))
        out.iloc[rest, out.columns.get_loc("split")] = inner
    return out


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Seeded stratified train/val/test assignment for an array of labels."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"bad split fractions val={val_fraction} test={test_fraction}")
    index = np.arange(len(labels))
    split = np.full(len(labels), "train", dtype=object)
    counts = pd.Series(labels).value_counts()
    held = val_fraction + test_fraction
    # stratified where every class can have a face in each held-out part; else a plain seeded split
    stratify = labels if counts.min() >= 3 and len(labels) * min(
        f for f in (val_fraction, test_fraction, held) if f > 0) >= len(counts) else None
    if held == 0:
        return split
    if round(len(labels) * min(f for f in (val_fraction, test_fraction) if f > 0)) < 1:
        raise DataError(f"{len(labels)} images are too few for a {val_fraction:.0%}/{test_fraction:.0%} "
                        "validation/test split; add images, or give the set train/, val/ and test/ folders")
    _, rest = train_test_split(index, test_size=held, random_state=seed, stratify=stratify)
    if test_fraction == 0:
        split[rest] = "val"
        return split
    if val_fraction == 0:
        split[rest] = "test"
        return split
    rest_labels = labels[rest]
    rest_counts = pd.Series(rest_labels).value_counts()
    rest_strat = rest_labels if rest_counts.min() >= 2 and len(rest) * min(val_fraction, test_fraction) / held >= len(
        rest_counts) else None
    val, test = train_test_split(rest, test_size=test_fraction / held, random_state=seed, stratify=rest_strat)
    split[val], split[test] = "val", "test"
    return split
