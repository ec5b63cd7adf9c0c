"""The manifest: the table every reader makes of a data set (item, label, source, split, and optional columns),
the split names, and the helpers the readers share. Below every reader; imports none of them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from vitfer.errors import DataError, LabelError
from vitfer.labels import canonical_name
from vitfer.preprocess import IMAGE_SUFFIXES

OnError = Literal["raise", "skip"]
MANIFEST_COLUMNS = ["item", "label", "source", "split"]
#: the split names, defined once: every reader maps its own onto these ("unsplit" until a split is made)
SPLITS = ("train", "val", "test")
FER2013_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_DIR_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root`` (a symlinked root itself is fine), else None: a file list
    that names ``../../elsewhere`` or an absolute path must not make a reader open files outside its data set."""
    if Path(relative).is_absolute():
        return None
    path = root / relative
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return path


def record_problem(message: str, on_error: OnError, skipped: list[str]) -> None:
    """Bad input: raise DataError with ``message`` (``on_error='raise'``), or note it in ``skipped`` and go on."""
    if on_error == "raise":
        raise DataError(message)
    skipped.append(message)


def new_manifest(rows: list[dict] | pd.DataFrame, skipped: list[str] | None = None) -> pd.DataFrame:
    """A manifest table with the standard columns and a list of skipped inputs in ``attrs``."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=MANIFEST_COLUMNS)
    frame.attrs["skipped"] = list(skipped or [])
    return frame.reset_index(drop=True)


def check_dir(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"expected a folder of class sub-folders, got a file: {root}")
    return root


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_name(folder: Path, on_error: OnError, skipped: list[str],
                ids: Mapping[int, str] | None = None) -> str | None:
    if ids is not None and folder.name.isdigit() and int(folder.name) in ids:
        return ids[int(folder.name)]
    try:
        return canonical_name(folder.name)
    except LabelError as err:
        if on_error == "raise":
            raise LabelError(f"class folder {folder}: {err}") from None
        skipped.append(f"{folder}: unknown class folder")
        return None


#: columns some readers add (subjects, AffectNet's face box and valence/arousal); kept through a merge's CSV
EXTRA_COLUMNS = ("subject", "x1", "y1", "x2", "y2", "valence", "arousal")


NUMERIC_COLUMNS = ("x1", "y1", "x2", "y2", "valence", "arousal")


def write_manifest_csv(manifest: pd.DataFrame, out: str | Path) -> Path:
    """Write a manifest (e.g. a merge) as CSV that ``read_dataset`` reads back, pixels of CSV-born rows included."""
    columns = list(MANIFEST_COLUMNS) + (["pixels"] if "pixels" in manifest.columns else [])
    columns += [c for c in EXTRA_COLUMNS if c in manifest.columns]
    from vitfer.files import write_text

    return write_text(out, manifest[columns].to_csv(index=False))  # whole or not at all


def read_manifest_csv(path: str | Path, on_error: OnError = "raise") -> pd.DataFrame:
    """Read a manifest CSV (item, label, source, split[, pixels]) as ``vitfer data merge`` writes it."""
    path = Path(path).expanduser()
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows, skipped = [], []
    for number, row in enumerate(table.to_dict("records"), start=2):
        problem = None
        try:
            row["label"] = canonical_name(row["label"])
        except LabelError as err:
            problem = str(err)
        if problem is None and row["split"] not in SPLITS:
            problem = f"unknown split {row['split']!r} (train, val or test)"
        if problem is None and not row.get("pixels") and not Path(row["item"]).is_file():
            problem = f"image not found: {row['item']}"
        if problem:
            record_problem(f"{path} line {number}: {problem}", on_error, skipped)
            continue
        if "pixels" in row and not row["pixels"]:
            row["pixels"] = None
        for column in NUMERIC_COLUMNS:
            if column in row:
                row[column] = float(row[column]) if row[column] else None
        rows.append(row)
    return new_manifest(rows, skipped)


def is_manifest_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    return header[:4] == list(MANIFEST_COLUMNS)


def merge_manifests(manifests: list[pd.DataFrame], num_classes: int = 7) -> pd.DataFrame:
    """Merge manifests into one over the 7- or 8-class set, keeping each item's source.

    With 7 classes, contempt items are dropped and counted in ``attrs['skipped']``.
    """
    from vitfer.labels import label_set

    labels = label_set(num_classes)
    frames, skipped = [], []
    for manifest in manifests:
        skipped += manifest.attrs.get("skipped", [])
        keep = manifest["label"].isin(labels)
        skipped += [f"{item}: label {lab!r} not in the {num_classes}-class set"
                    for item, lab in zip(manifest.loc[~keep, "item"], manifest.loc[~keep, "label"])]
        frames.append(manifest[keep])
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MANIFEST_COLUMNS)
    return new_manifest(merged, skipped)
