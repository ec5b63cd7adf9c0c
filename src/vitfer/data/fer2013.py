"""FER2013 as Kaggle ships it: the CSV (``emotion,pixels,Usage``) and the image-folder layout."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import pandas as pd

from vitfer.data.manifest import (FER2013_USAGE, OnError, check_dir, class_name, images_in, new_manifest,
                                  record_problem)
from vitfer.data.splits import stratified_split
from vitfer.errors import DataError
from vitfer.labels import FER2013_IDS
from vitfer.preprocess import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


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
    root = check_dir(root)
    rows, skipped = [], []
    for top in ("train", "test"):
        if not (root / top).is_dir():
            raise DataError(f"{root} is not the FER2013 folder layout: no {top}/ sub-folder")
        for class_dir in sorted(p for p in (root / top).iterdir() if p.is_dir()):
            label = class_name(class_dir, on_error, skipped)
            if label is None:
                continue
            for image in images_in(class_dir):
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
