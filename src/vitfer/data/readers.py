"""Readers that turn a data set on disk into a manifest table (item, label, source, split)."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from vitfer.labels import FER2013_IDS, UnknownLabelError, canonical_name
from vitfer.preprocess import IMAGE_SUFFIXES  # noqa: F401 - read from here by older code
from vitfer.errors import VitferError

log = logging.getLogger(__name__)
OnError = Literal["raise", "skip"]
MANIFEST_COLUMNS = ["item", "label", "source", "split"]
FER2013_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_DIR_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


class DataError(VitferError, ValueError):
    """A data set on disk that cannot be read as asked; the message names the input."""


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


def _check_dir(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"expected a folder of class sub-folders, got a file: {root}")
    return root


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_name(folder: Path, on_error: OnError, skipped: list[str],
                ids: Mapping[int, str] | None = None) -> str | None:
    if ids is not None and folder.name.isdigit() and int(folder.name) in ids:
        return ids[int(folder.name)]
    try:
        return canonical_name(folder.name)
    except UnknownLabelError as err:
        if on_error == "raise":
            raise UnknownLabelError(f"class folder {folder}: {err}") from None
        skipped.append(f"{folder}: unknown class folder")
        return None


_PIXELS = re.compile(r"\d{1,3}(?: \d{1,3}){2303}")
_OVER_255 = re.compile(r"(?<!\d)(?:25[6-9]|2[6-9]\d|[3-9]\d\d)(?!\d)")


def _fer2013_row_problem(fields: list[str], columns: dict[str, int]) -> str | None:
    if len(fields) != len(columns):
        return f"expected {len(columns)} fields ({', '.join(columns)}), got {len(fields)}"
    emotion = fields[columns["emotion"]].strip()
    if not emotion.lstrip("-").isdigit():
        return f"emotion {emotion!r} is not a number"
    if int(emotion) not in FER2013_IDS:
        return f"unknown emotion id {emotion} (FER2013 has 0-6)"
    pixels = fields[columns["pixels"]].strip()
    if not _PIXELS.fullmatch(pixels):
        return "pixels is not 2304 space-separated whole numbers"
    if _OVER_255.search(pixels):
        return "a pixel value is over 255"
    if "Usage" in columns and fields[columns["Usage"]].strip() not in FER2013_USAGE:
        return f"unknown Usage {fields[columns['Usage']].strip()!r} (Training, PublicTest or PrivateTest)"
    return None


def read_fer2013_csv(path: str | Path, on_error: OnError = "raise", seed: int = 0) -> pd.DataFrame:
    """Read the Kaggle FER2013 CSV (``emotion,pixels,Usage``); pixels stay in a ``pixels`` column.

    Every row is checked (field count, emotion id, 2304 pixel values of 0-255, Usage) and a bad one raises or
    is skipped, named by its line. A file without ``Usage`` gets a seeded stratified 80/10/10 split, with a warning.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"FER2013 CSV not found: {path}")
    try:
        lines = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (bad byte at offset {err.start})") from None
    if not lines:
        raise DataError(f"{path} is empty; expected a header emotion,pixels,Usage and one row per face")
    columns = {name.strip(): i for i, name in enumerate(lines[0])}
    missing = {"emotion", "pixels"} - set(columns)
    if missing:
        raise DataError(f"{path} lacks column(s) {sorted(missing)}; expected emotion,pixels,Usage")
    rows, skipped = [], []
    for number, fields in enumerate(lines[1:], start=2):
        problem = _fer2013_row_problem(fields, columns)
        if problem:
            record_problem(f"{path} line {number}: {problem}", on_error, skipped)
            continue
        usage = fields[columns["Usage"]].strip() if "Usage" in columns else "Training"
        rows.append({"item": f"{path}#{number - 2}", "label": FER2013_IDS[int(fields[columns['emotion']])],
                     "source": "fer2013", "split": FER2013_USAGE[usage], "pixels": fields[columns["pixels"]].strip()})
    if not rows:
        raise DataError(f"{path} has no usable row" + (f" ({len(skipped)} skipped: {skipped[0]})" if skipped else ""))
    manifest = new_manifest(rows, skipped)
    if "Usage" not in columns:
        log.warning("%s has no Usage column: made a seeded stratified split (80 %% train, 10 %% val, 10 %% test)",
                    path)
        manifest["split"] = stratified_split(manifest["label"].to_numpy(), 0.1, 0.1, seed)
    return manifest


_FER_PREFIX = re.compile(r"^(Training|PublicTest|PrivateTest)_")


def read_fer2013_folder(root: str | Path, on_error: OnError = "raise") -> pd.DataFrame:
    """Read FER2013's image-folder layout; the file-name prefix (Training/PublicTest/PrivateTest) sets the split."""
    root = _check_dir(root)
    rows, skipped = [], []
    for top in ("train", "test"):
        if not (root / top).is_dir():
            raise DataError(f"{root} is not the FER2013 folder layout: no {top}/ sub-folder")
        for class_dir in sorted(p for p in (root / top).iterdir() if p.is_dir()):
            label = _class_name(class_dir, on_error, skipped)
            if label is None:
                continue
            for image in _images_in(class_dir):
                match = _FER_PREFIX.match(image.name)
                if match is None:
                    record_problem(f"{image}: file name lacks a Training_/PublicTest_/PrivateTest_ prefix",
                                   on_error, skipped)
                    continue
                rows.append({"item": str(image), "label": label, "source": "fer2013",
                             "split": FER2013_USAGE[match.group(1)]})
    if not rows:
        raise DataError(f"no images found under {root}")
    return new_manifest(rows, skipped)


def read_class_folders(
    root: str | Path,
    source: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    on_error: OnError = "raise",
    ids: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Read any ``root/<class>/*`` set (CK+48, AffectNet folders, ...): class folders named by emotion, or by
    number with ``ids`` (e.g. ``AFFECTNET_IDS`` for AffectNet's 0-7 folders).

    Split sub-folders (``train/``, ``val/``, ``test/``) are used where present; otherwise a
    seeded stratified split is made, so the same seed always gives the same split.
    """
    root = _check_dir(root)
    source = source or root.name.lower()
    children = [p for p in sorted(root.iterdir()) if p.is_dir()]
    if not children:
        raise DataError(f"no class sub-folders in {root}")
    split_dirs = {SPLIT_DIR_NAMES[p.name.lower()]: p for p in children if p.name.lower() in SPLIT_DIR_NAMES}
    rows, skipped = [], []
    groups = split_dirs.items() if split_dirs else [("unsplit", root)]
    for split, folder in groups:
        class_dirs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
        for class_dir in class_dirs:
            label = _class_name(class_dir, on_error, skipped, ids)
            if label is None:
                continue
            images = _images_in(class_dir)
            if not images:
                record_problem(f"empty class folder: {class_dir}", on_error, skipped)
            rows += [{"item": str(p), "label": label, "source": source, "split": split} for p in images]
    if not rows:
        raise DataError(f"no images found under {root}")
    manifest = new_manifest(rows, skipped)
    if not split_dirs:
        manifest["split"] = stratified_split(manifest["label"].to_numpy(), val_fraction, test_fraction, seed)
    return manifest


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
    from sklearn.model_selection import train_test_split  # only when a split is made: startup stays quick

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


def is_fer2013_folder(root: Path) -> bool:
    train = root / "train"
    if not train.is_dir() or not (root / "test").is_dir():
        return False
    for class_dir in train.iterdir():
        if class_dir.is_dir():
            first = next((p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), None)
            if first is not None:
                return bool(_FER_PREFIX.match(first.name))
    return False


MANIFEST_CSV_COLUMNS = ("item", "label", "source", "split")
#: columns some readers add (subjects, AffectNet's face box and valence/arousal); kept through a merge's CSV
EXTRA_COLUMNS = ("subject", "x1", "y1", "x2", "y2", "valence", "arousal")
NUMERIC_COLUMNS = ("x1", "y1", "x2", "y2", "valence", "arousal")


def write_manifest_csv(manifest: pd.DataFrame, out: str | Path) -> Path:
    """Write a manifest (e.g. a merge) as CSV that ``read_dataset`` reads back, pixels of CSV-born rows included."""
    columns = list(MANIFEST_CSV_COLUMNS) + (["pixels"] if "pixels" in manifest.columns else [])
    columns += [c for c in EXTRA_COLUMNS if c in manifest.columns]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest[columns].to_csv(out, index=False)
    return out


def read_manifest_csv(path: str | Path, on_error: OnError = "raise") -> pd.DataFrame:
    """Read a manifest CSV (item, label, source, split[, pixels]) as ``vitfer data merge`` writes it."""
    path = Path(path).expanduser()
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows, skipped = [], []
    for number, row in enumerate(table.to_dict("records"), start=2):
        problem = None
        try:
            row["label"] = canonical_name(row["label"])
        except UnknownLabelError as err:
            problem = str(err)
        if problem is None and row["split"] not in ("train", "val", "test"):
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
    return header[:4] == list(MANIFEST_CSV_COLUMNS)


def is_ferplus_folder(root: Path) -> bool:
    return any((root / name / "label.csv").is_file() for name in ("FER2013Train", "FER2013Valid", "FER2013Test"))


#: data set kinds ``read_dataset`` knows, each with its reader (taking path, on_error, seed)
def _readers() -> dict:
    from vitfer.data import releases
    from vitfer.data.ferplus import read_ferplus
    from vitfer.labels import AFFECTNET_IDS

    return {
        "fer2013-csv": lambda p, on_error, seed, **kw: read_fer2013_csv(p, on_error, seed),
        "fer2013-folder": lambda p, on_error, seed, **kw: read_fer2013_folder(p, on_error),
        "manifest": lambda p, on_error, seed, **kw: read_manifest_csv(p, on_error),
        "ferplus": lambda p, on_error, seed, ferplus_protocol="majority", **kw: read_ferplus(p, ferplus_protocol,
                                                                                             on_error),
        "affectnet": lambda p, on_error, seed, **kw: releases.read_affectnet(p, on_error, seed),
        "affectnet-folders": lambda p, on_error, seed, source=None, **kw: read_class_folders(
            p, source=source or "affectnet", seed=seed, on_error=on_error, ids=AFFECTNET_IDS),
        "rafdb": lambda p, on_error, seed, **kw: releases.read_rafdb(p, on_error, seed),
        "ckplus": lambda p, on_error, seed, **kw: releases.read_ckplus(p, on_error, seed),
        "jaffe": lambda p, on_error, seed, **kw: releases.read_jaffe(p, on_error, seed),
        "folders": lambda p, on_error, seed, source=None, **kw: read_class_folders(p, source=source, seed=seed,
                                                                                   on_error=on_error),
    }


def dataset_kinds() -> tuple[str, ...]:
    """Every ``kind`` ``read_dataset`` takes: auto, and the reader registry's keys."""
    return ("auto", *_readers())


def detect_kind(path: Path) -> str:
    """Which release a path is, from its files."""
    from vitfer.data import releases

    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path} is a file but not a CSV; give a data set folder or a FER2013/manifest CSV")
        return "manifest" if is_manifest_csv(path) else "fer2013-csv"
    for kind, test in (("fer2013-folder", is_fer2013_folder), ("ferplus", is_ferplus_folder),
                       ("affectnet", releases.is_affectnet), ("ckplus", releases.is_ckplus),
                       ("rafdb", lambda p: releases.find_rafdb_list(p) is not None), ("jaffe", releases.is_jaffe)):
        if test(path):
            return kind
    return "folders"


def read_dataset(path: str | Path, kind: str = "auto", on_error: OnError = "raise", seed: int = 0,
                 source: str | None = None, ferplus_protocol: str = "majority", folds: int = 0, fold: int = 0,
                 group_by: str | None = None) -> pd.DataFrame:
    """Read any supported data set (``dataset_kinds()``; ``auto`` tells them apart by their files).

    ``folds`` > 1: the split of fold ``fold`` of a seeded k-fold cross-validation replaces the data set's own;
    ``group_by`` (e.g. 'subject', which CK+ and JAFFE carry) keeps each group inside one split.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path does not exist: {path}")
    readers = _readers()
    if kind != "auto" and kind not in readers:
        raise DataError(f"unknown data set kind {kind!r}; use {', '.join(dataset_kinds())}")
    if kind == "auto":
        kind = detect_kind(path)
    manifest = readers[kind](path, on_error, seed, source=source, ferplus_protocol=ferplus_protocol)
    if folds:
        from vitfer.data.splits import kfold

        attrs = dict(manifest.attrs)
        manifest = kfold(manifest, folds, fold, seed, group_by)
        manifest.attrs.update(attrs)
    elif group_by:
        from vitfer.data.splits import grouped_split

        if group_by not in manifest.columns:
            raise DataError(f"cannot group {path} by {group_by!r}: its reader gives no such column")
        manifest["split"] = grouped_split(manifest[group_by].to_numpy(), 0.1, 0.1, seed)
    return manifest


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
