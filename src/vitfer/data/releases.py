"""Readers for the official layouts of AffectNet, RAF-DB, CK+ and JAFFE (each into a manifest).

Extra manifest columns where the release has them: ``subject`` (CK+, JAFFE: splits never share a subject),
``x1, y1, x2, y2`` (AffectNet's face box: the cache crops it), ``valence`` and ``arousal`` (AffectNet).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from vitfer.data.manifest import OnError, check_dir, inside, new_manifest, record_problem
from vitfer.errors import DataError
from vitfer.data.splits import grouped_split, stratified_split
from vitfer.labels import AFFECTNET_IDS, CKPLUS_IDS, RAFDB_IDS

#: AffectNet ids beyond the eight emotions, dropped with a count.
AFFECTNET_DROPPED = {8: "none", 9: "uncertain", 10: "non-face"}
AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression")
JAFFE_CODES = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "SA": "sad", "SU": "surprise",
               "NE": "neutral"}
_JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.tiff?$", re.IGNORECASE)


def with_val_from_train(manifest: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """A release without a validation split: a seeded stratified ``val_fraction`` of its train split becomes one."""
    train = (manifest["split"] == "train").to_numpy()
    if train.any() and val_fraction > 0:
        manifest.loc[train, "split"] = stratified_split(manifest.loc[train, "label"].to_numpy(), val_fraction, 0.0,
                                                        seed)
    return manifest


def find_affectnet_lists(root: Path) -> dict[str, Path]:
    """training.csv / validation.csv of an AffectNet release (in ``root`` or one folder below it)."""
    found = {}
    for name in ("training.csv", "validation.csv"):
        hits = [root / name] if (root / name).is_file() else sorted(root.glob(f"*/{name}"))
        if hits:
            found[name] = hits[0]
    return found


def is_affectnet(root: Path) -> bool:
    lists = find_affectnet_lists(root) if root.is_dir() else {}
    if not lists:
        return False
    with next(iter(lists.values())).open(encoding="utf-8", errors="replace") as handle:
        return "subDirectory_filePath" in handle.readline()


def read_affectnet(root: str | Path, on_error: OnError = "raise", seed: int = 0,
                   val_fraction: float = 0.1) -> pd.DataFrame:
    """AffectNet's official release: ``training.csv`` is split into train and a seeded stratified val
    (``val_fraction``); ``validation.csv``, which papers report on, is the test split. Ids 8-10 (none,
    uncertain, non-face) are dropped and counted in ``attrs['dropped']``."""
    root = check_dir(root)
    lists = find_affectnet_lists(root)
    if "training.csv" not in lists and "validation.csv" not in lists:
        raise DataError(f"{root} holds no AffectNet training.csv or validation.csv")
    # the images beside the lists' folder (root given as the release or as its file-lists folder), else root
    images = next((folder for folder in (root / "Manually_Annotated_Images",
                                         next(iter(lists.values())).parent.parent / "Manually_Annotated_Images")
                   if folder.is_dir()), root)
    rows, skipped, dropped = [], [], Counter()
    for name, split in (("training.csv", "train"), ("validation.csv", "test")):
        if name not in lists:
            continue
        table = pd.read_csv(lists[name], dtype=str, keep_default_na=False)
        missing = [c for c in AFFECTNET_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(f"{lists[name]} lacks the AffectNet columns {missing}")
        for number, row in enumerate(table.to_dict("records"), start=2):
            where = f"{lists[name]} line {number}"
            try:
                expression = int(float(row["expression"]))
                x, y, w, h = (int(float(row[k])) for k in ("face_x", "face_y", "face_width", "face_height"))
            except ValueError:
                record_problem(f"{where}: expression and face box must be numbers", on_error, skipped)
                continue
            if expression in AFFECTNET_DROPPED:
                dropped[AFFECTNET_DROPPED[expression]] += 1
                continue
            if expression not in AFFECTNET_IDS or w <= 0 or h <= 0:
                record_problem(f"{where}: unknown expression id {expression} or empty face box", on_error, skipped)
                continue
            item = inside(images, row["subDirectory_filePath"])
            if item is None:
                record_problem(f"{where}: image {row['subDirectory_filePath']!r} lies outside {images}; refused",
                               on_error, skipped)
                continue
            if not item.is_file():
                record_problem(f"{where}: image not found: {item}", on_error, skipped)
                continue
            rows.append({"item": str(item), "label": AFFECTNET_IDS[expression], "source": "affectnet",
                         "split": split, "x1": x, "y1": y, "x2": x + w, "y2": y + h,
                         "valence": float(row["valence"]) if row.get("valence") else None,
                         "arousal": float(row["arousal"]) if row.get("arousal") else None})
    if not rows:
        raise DataError(f"no usable AffectNet rows under {root}")
    manifest = with_val_from_train(new_manifest(rows, skipped), val_fraction, seed)
    manifest.attrs["dropped"] = dict(dropped)
    return manifest


def find_rafdb_list(root: Path) -> Path | None:
    hits = sorted(root.rglob("list_patition_label.txt")) if root.is_dir() else []
    return hits[0] if hits else None


def read_rafdb(root: str | Path, on_error: OnError = "raise", seed: int = 0, images: str = "aligned",
               val_fraction: float = 0.1) -> pd.DataFrame:
    """RAF-DB basic: ``list_patition_label.txt`` (``train_00001.jpg 5``, RAF's ids 1-7) with ``Image/aligned``
    (``train_00001_aligned.jpg``) or ``Image/original``; the split from the name, a seeded val from train."""
    root = check_dir(root)
    labels = find_rafdb_list(root)
    if labels is None:
        raise DataError(f"{root} holds no RAF-DB list_patition_label.txt")
    folder = next((p for p in (labels.parent.parent / "Image" / images, root / "Image" / images, root / images)
                   if p.is_dir()), None)
    if folder is None:
        raise DataError(f"no RAF-DB Image/{images}/ folder beside {labels}")
    rows, skipped = [], []
    for number, line in enumerate(labels.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in RAFDB_IDS:
            record_problem(f"{labels} line {number}: expected 'NAME.jpg ID' with an id 1-7", on_error, skipped)
            continue
        name = Path(parts[0])
        file = folder / (f"{name.stem}_aligned{name.suffix}" if images == "aligned" else name.name)
        if not file.is_file():
            record_problem(f"{labels} line {number}: image not found: {file}", on_error, skipped)
            continue
        split = "train" if name.name.startswith("train") else "test"
        rows.append({"item": str(file), "label": RAFDB_IDS[int(parts[1])], "source": "rafdb", "split": split})
    if not rows:
        raise DataError(f"no usable RAF-DB rows in {labels}")
    manifest = with_val_from_train(new_manifest(rows, skipped), val_fraction, seed)
    return manifest


def is_ckplus(root: Path) -> bool:
    return root.is_dir() and (root / "Emotion").is_dir() and (root / "cohn-kanade-images").is_dir()


def read_ckplus(root: str | Path, on_error: OnError = "raise", seed: int = 0, peak_frames: int = 3,
                first_as_neutral: bool = True, val_fraction: float = 0.1, test_fraction: float = 0.1) -> pd.DataFrame:
    """CK+ as released: ``Emotion/S###/###/*_emotion.txt`` labels a sequence of ``cohn-kanade-images``; its last
    ``peak_frames`` frames take the emotion and (``first_as_neutral``) its first frame is neutral. Subjects
    are kept, and the train/val/test split is by subject: no subject is in two splits."""
    root = check_dir(root)
    if not is_ckplus(root):
        raise DataError(f"{root} is not the CK+ layout (Emotion/ and cohn-kanade-images/)")
    rows, skipped = [], []
    for label_file in sorted((root / "Emotion").glob("*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        try:
            code = int(float(label_file.read_text().split()[0]))
        except (ValueError, IndexError):
            record_problem(f"{label_file}: no emotion code", on_error, skipped)
            continue
        if code not in CKPLUS_IDS or code == 0:
            record_problem(f"{label_file}: unknown emotion code {code}", on_error, skipped)
            continue
        frames = sorted((root / "cohn-kanade-images" / subject / sequence).glob("*.png"))
        if not frames:
            record_problem(f"{label_file}: no frames in cohn-kanade-images/{subject}/{sequence}", on_error, skipped)
            continue
        picked = [(frame, CKPLUS_IDS[code]) for frame in frames[-peak_frames:]]
        if first_as_neutral and len(frames) > peak_frames:
            picked.append((frames[0], "neutral"))
        rows += [{"item": str(f), "label": label, "source": "ckplus", "split": "train", "subject": subject}
                 for f, label in picked]
    if not rows:
        raise DataError(f"no labelled CK+ sequence under {root}")
    manifest = new_manifest(rows, skipped)
    manifest["split"] = grouped_split(manifest["subject"].to_numpy(), val_fraction, test_fraction, seed)
    return manifest


def is_jaffe(root: Path) -> bool:
    return root.is_dir() and any(_JAFFE_NAME.match(p.name) for p in root.iterdir())


def read_jaffe(root: str | Path, on_error: OnError = "raise", seed: int = 0, val_fraction: float = 0.1,
               test_fraction: float = 0.2) -> pd.DataFrame:
    """JAFFE: labels and subjects from file names (``KA.HA1.29.tiff``: subject KA, happy); split by subject."""
    root = check_dir(root)
    rows, skipped = [], []
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        match = _JAFFE_NAME.match(path.name)
        if match is None or match.group(2).upper() not in JAFFE_CODES:
            if path.suffix.lower() in (".tiff", ".tif"):
                record_problem(f"{path}: not a JAFFE file name (SUBJECT.CODE#.N.tiff)", on_error, skipped)
            continue
        rows.append({"item": str(path), "label": JAFFE_CODES[match.group(2).upper()], "source": "jaffe",
                     "split": "train", "subject": match.group(1).upper()})
    if not rows:
        raise DataError(f"no JAFFE images under {root}")
    manifest = new_manifest(rows, skipped)
    manifest["split"] = grouped_split(manifest["subject"].to_numpy(), val_fraction, test_fraction, seed)
    return manifest
