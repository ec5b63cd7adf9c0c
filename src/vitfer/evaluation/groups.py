"""The per-group audit of ``vitfer evaluate --groups FILE.csv``: accuracy and macro-F1 of each group of faces
(one CSV column per attribute, joined to the faces by file name), with intervals, and the largest gap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vitfer.errors import DataError
from vitfer.evaluation.significance import bootstrap_intervals, macro_f1, unpaired_difference

KEY_COLUMN = "file"


def read_groups(path: str | Path, items: np.ndarray) -> pd.DataFrame:
    """The attributes of each evaluated face (one row per face, in ``items`` order; NaN where the file has no row).

    The CSV's ``file`` column (else its first) names each face by file name; a name may carry folders, only its
    last part is matched, since data sets are read from wherever they were unpacked.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"--groups {path}: cannot read it as CSV ({error})") from None
    key = KEY_COLUMN if KEY_COLUMN in table.columns else table.columns[0]
    attributes = [column for column in table.columns if column != key]
    if not attributes:
        raise DataError(f"--groups {path}: needs a column per attribute beside {key!r} (e.g. file,age,gender)")
    names = table[key].map(lambda value: Path(str(value)).name)
    repeated = sorted(set(names[names.duplicated()]))
    if repeated:
        raise DataError(f"--groups {path}: {len(repeated)} file names appear twice (first: {repeated[0]})")
    joined = pd.DataFrame({"name": [Path(str(item)).name for item in items]}).merge(
        table.assign(name=names)[["name", *attributes]], on="name", how="left")
    if joined[attributes].isna().all(axis=None):
        raise DataError(f"--groups {path}: names none of the {len(items)} evaluated faces (joined on the file "
                        f"name in column {key!r}; a face here is e.g. {Path(str(items[0])).name})")
    return joined[attributes]


def group_audit(targets: np.ndarray, predicted: np.ndarray, classes: int, attributes: pd.DataFrame,
                resamples: int = 1000, seed: int = 0) -> dict:
    """For each attribute: each group's faces, accuracy, macro-F1 and their 95 % bootstrap intervals, the faces
    with no value, and the largest accuracy gap between two groups with its interval (each group resampled)."""
    targets, predicted = np.asarray(targets), np.asarray(predicted)
    audit = {}
    for column in attributes.columns:
        values = attributes[column].to_numpy()
        groups, masks = [], {}
        for value in sorted(set(attributes[column].dropna())):
            mask = values == value
            masks[value] = mask
            truth, guess = targets[mask], predicted[mask]
            groups.append({"group": value, "faces": int(mask.sum()), "accuracy": float((truth == guess).mean()),
                           "macro_f1": float(macro_f1(truth, guess, classes)[0]),
                           "intervals": bootstrap_intervals(truth, guess, classes, resamples, seed)})
        entry = {"groups": groups, "faces_without_a_group": int(attributes[column].isna().sum())}
        if len(groups) >= 2:
            best = max(groups, key=lambda g: g["accuracy"])
            worst = min(groups, key=lambda g: g["accuracy"])
            a, b = masks[best["group"]], masks[worst["group"]]
            gap = unpaired_difference(targets[a], predicted[a], targets[b], predicted[b], classes, resamples, seed)
            entry["largest_gap"] = {"between": [best["group"], worst["group"]], **gap}
        audit[column] = entry
    return audit


def audit_markdown(audit: dict) -> list[str]:
    """The audit as report lines: one table per attribute and its largest gap."""
    lines = ["", "## Per-group audit", ""]
    for column, entry in audit.items():
        lines += [f"### {column}", "", "| group | faces | accuracy (95 % CI) | macro-F1 (95 % CI) |", "|---|---|---|---|"]
        for g in entry["groups"]:
            ci = g["intervals"]
            lines.append(f"| {g['group']} | {g['faces']} | {g['accuracy']:.4f} ({ci['accuracy'][0]:.4f}-"
                         f"{ci['accuracy'][1]:.4f}) | {g['macro_f1']:.4f} ({ci['macro_f1'][0]:.4f}-"
                         f"{ci['macro_f1'][1]:.4f}) |")
        lines.append("")
        if entry["faces_without_a_group"]:
            lines.append(f"- faces with no {column} in the groups file: {entry['faces_without_a_group']}")
        gap = entry.get("largest_gap")
        if gap:
            low, high = gap["accuracy_interval"]
            verdict = "significant" if gap["significant"] else "not significant (the interval includes 0)"
            lines.append(f"- largest accuracy gap: {gap['between'][0]} - {gap['between'][1]} = "
                         f"{gap['accuracy']:+.4f} (95 % CI {low:+.4f} to {high:+.4f}), {verdict}; macro-F1 "
                         f"{gap['macro_f1']:+.4f}")
        lines.append("")
    return lines
