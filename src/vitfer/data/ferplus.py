"""FER+ (Barsoum et al., 2016): ten annotators' votes per FER2013 face, and the label protocols of its paper.

Votes come in FER+'s column order (``labels.FERPLUS_COLUMNS``: neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt, unknown, NF). Targets are returned over vitfer's canonical 8-class order.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vitfer.data.fer2013 import read_fer2013_csv
from vitfer.data.manifest import SPLITS, OnError, inside, new_manifest, record_problem
from vitfer.errors import DataError
from vitfer.labels import EMOTIONS_8, FERPLUS_COLUMNS, canonical_name

Protocol = Literal["majority", "probability", "crossentropy", "multi_target"]
PROTOCOLS: tuple[str, ...] = ("majority", "probability", "crossentropy", "multi_target")
FERPLUS_SPLITS = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}
#: column j of a vote row -> canonical 8-class index (the last two columns, unknown and NF, have none)
_TO_CANONICAL = np.array([EMOTIONS_8.index(canonical_name(c)) for c in FERPLUS_COLUMNS[:8]])
_EMOTION_COLUMNS = 8  # unknown and NF follow


def _unknown() -> np.ndarray:
    row = np.zeros(len(FERPLUS_COLUMNS))
    row[_EMOTION_COLUMNS] = 1.0
    return row


def _protocol_row(raw: np.ndarray, protocol: str) -> np.ndarray:
    """One vote row (10 counts) -> a distribution over the 10 FER+ columns, as FER+'s reference code does.

    A distribution that lands on 'unknown' means the face is dropped under this protocol.
    """
    votes = np.where(raw <= 1.0, 0.0, raw.astype(float))  # a class with a single vote is an outlier
    total = votes.sum()
    if total <= 0:
        return _unknown()
    target = np.zeros_like(votes)
    if protocol == "majority":
        best = int(np.argmax(votes))
        if votes[best] <= 0.5 * total:
            return _unknown()
        target[best] = votes[best]
    elif protocol in ("probability", "crossentropy"):
        # keep the top classes until they hold 75 % of the votes (at most three); stop at unknown / NF
        rest, kept, count = votes.copy(), 0.0, 0
        while kept < 0.75 * total and count < 3:
            top = rest.max()
            if top <= 0:
                break
            hit_invalid = False
            for i in np.flatnonzero(rest == top):
                target[i], rest[i] = top, 0.0
                kept += top
                count += 1
                if i >= _EMOTION_COLUMNS:
                    hit_invalid = True
                    if target.sum() > top:  # other emotions came first: drop the unknown / NF share
                        target[i] = 0.0
                        count -= 1
                    break
            if hit_invalid:
                break
        if target.sum() <= 0.5 * total or count > 3:
            return _unknown()
    elif protocol == "multi_target":
        target = np.where(votes >= 0.3 * total, votes, 0.0)
        if target.sum() <= 0.5 * total:
            return _unknown()
    else:
        raise DataError(f"unknown FER+ protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    return target / target.sum()


def ferplus_targets(votes: np.ndarray, protocol: str = "majority") -> tuple[np.ndarray, np.ndarray]:
    """Vote counts (N x 10) -> (targets N x 8 over the canonical order, keep mask N).

    A face is dropped (``keep`` False) when its top class is unknown / not-a-face, or when the protocol
    finds no clear label (no majority, too many classes, under half of the votes kept).
    """
    votes = np.asarray(votes, dtype=float)
    if votes.ndim != 2 or votes.shape[1] != len(FERPLUS_COLUMNS):
        raise DataError(f"FER+ votes must be N x {len(FERPLUS_COLUMNS)}, got shape {votes.shape}")
    rows = np.stack([_protocol_row(v, protocol) for v in votes]) if len(votes) else np.zeros((0, 10))
    keep = rows[:, :_EMOTION_COLUMNS].sum(axis=1) > 0
    keep &= rows.argmax(axis=1) < _EMOTION_COLUMNS
    targets = np.zeros((len(rows), len(EMOTIONS_8)), dtype=np.float32)
    emotion = rows[:, :_EMOTION_COLUMNS]
    sums = emotion.sum(axis=1, keepdims=True)
    np.divide(emotion, sums, out=emotion, where=sums > 0)
    targets[:, _TO_CANONICAL] = emotion
    targets[~keep] = 0.0
    return targets, keep


def read_ferplus_votes(root: str | Path, on_error: OnError = "raise") -> pd.DataFrame:
    """Read FER+'s folder layout: ``FER2013{Train,Valid,Test}/label.csv`` -> file, split, image path, votes."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"FER+ folder not found: {root}")
    present = [name for name in FERPLUS_SPLITS if (root / name / "label.csv").is_file()]
    if not present:
        raise DataError(f"{root} is not the FER+ layout: no FER2013Train|Valid|Test/label.csv")
    rows, skipped = [], []
    for folder in present:
        label_csv = root / folder / "label.csv"
        try:
            lines = list(csv.reader(label_csv.read_text(encoding="utf-8").splitlines()))
        except UnicodeDecodeError:
            raise DataError(f"{label_csv} is not UTF-8 text") from None
        for number, fields in enumerate(lines, start=1):
            problem = _vote_row_problem(fields)
            image = inside(root / folder, fields[0].strip()) if problem is None else None
            if problem is None and image is None:
                problem = f"image {fields[0].strip()!r} lies outside {root / folder}; refused"
            elif problem is None and not image.is_file():
                problem = f"image {fields[0].strip()!r} not found"
            if problem:
                record_problem(f"{label_csv} line {number}: {problem}", on_error, skipped)
                continue
            rows.append({"item": str(image), "ferplus_file": f"{folder}/{fields[0].strip()}",
                         "split": FERPLUS_SPLITS[folder], "votes": [float(v) for v in fields[-10:]]})
    return new_manifest(rows, skipped)


def _vote_row_problem(fields: list[str]) -> str | None:
    if len(fields) != 2 + len(FERPLUS_COLUMNS):
        return f"expected name, box and {len(FERPLUS_COLUMNS)} vote counts, got {len(fields)} fields"
    if not fields[0].strip():
        return "empty image name"
    try:
        votes = [float(v) for v in fields[-10:]]
    except ValueError:
        return "a vote count is not a number"
    if not all(math.isfinite(v) for v in votes):
        return "a vote count is not a finite number (nan or inf)"
    if any(v < 0 for v in votes) or sum(votes) <= 0:
        return "vote counts must be non-negative with a positive total"
    return None


def read_ferplus(root: str | Path, protocol: str = "majority", on_error: OnError = "raise") -> pd.DataFrame:
    """FER+ as a manifest: item, label, source, split, plus ``target`` (8 floats) and ``votes`` (10 counts).

    The training split follows ``protocol``; validation and test always use the majority protocol, as the
    FER+ paper reports them. Faces the protocol drops are counted per split in ``attrs['dropped']``.
    """
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown FER+ protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    votes = read_ferplus_votes(root, on_error)
    return _labelled(votes, protocol, source="ferplus")


def _labelled(votes: pd.DataFrame, protocol: str, source: str) -> pd.DataFrame:
    skipped = list(votes.attrs.get("skipped", []))
    if votes.empty:
        raise DataError("no FER+ faces to read")
    matrix = np.array(votes["votes"].tolist(), dtype=float)
    train = (votes["split"] == "train").to_numpy()
    targets = np.zeros((len(votes), len(EMOTIONS_8)), dtype=np.float32)
    keep = np.zeros(len(votes), dtype=bool)
    for mask, rule in ((train, protocol), (~train, "majority")):
        if mask.any():
            targets[mask], keep[mask] = ferplus_targets(matrix[mask], rule)
    frame = votes.copy()
    frame["label"] = [EMOTIONS_8[i] for i in targets.argmax(axis=1)]
    frame["source"] = source
    frame["target"] = list(targets)
    manifest = new_manifest(frame[keep], skipped)
    # faces without a label under the protocol are part of FER+, not bad input: counted apart from 'skipped'
    manifest.attrs["dropped"] = frame.loc[~keep, "split"].value_counts().to_dict()
    return manifest


def read_ferplus_csv(fer2013new_csv: str | Path, fer2013_csv: str | Path, protocol: str = "majority",
                     on_error: OnError = "raise") -> pd.DataFrame:
    """FER+ from ``fer2013new.csv`` joined row by row with the Kaggle ``fer2013.csv`` (its pixels)."""

    new_path = Path(fer2013new_csv).expanduser()
    if not new_path.is_file():
        raise DataError(f"fer2013new.csv not found: {new_path}")
    table = pd.read_csv(new_path)
    expected = ["Usage", "Image name", *FERPLUS_COLUMNS]
    if list(table.columns) != expected:
        raise DataError(f"{new_path} has columns {list(table.columns)}; expected {expected}")
    pixels = read_fer2013_csv(fer2013_csv, on_error="raise")
    if len(pixels) != len(table):
        raise DataError(f"{new_path} has {len(table)} rows but {fer2013_csv} has {len(pixels)}; they must align")
    rows, skipped = [], []
    for i, row in enumerate(table.itertuples(index=False)):
        name = row[1]
        if not isinstance(name, str) or not name.strip():
            skipped.append(f"{new_path} row {i + 2}: dropped by FER+ (no image name)")
            continue
        problem = _vote_row_problem([name, "", *[str(v) for v in row[2:]]])
        if problem:
            record_problem(f"{new_path} row {i + 2}: {problem}", on_error, skipped)
            continue
        rows.append({"item": pixels["item"].iat[i], "ferplus_file": name.strip(), "split": pixels["split"].iat[i],
                     "pixels": pixels["pixels"].iat[i], "votes": [float(v) for v in row[2:]]})
    return _labelled(new_manifest(rows, skipped), protocol, source="ferplus")


def join_ferplus_votes(manifest: pd.DataFrame, ferplus_root: str | Path, names_csv: str | Path,
                       protocol: str = "crossentropy", on_error: OnError = "raise") -> np.ndarray:
    """FER+ targets (N x 8; a zero row where FER+ has no label) for the faces of a FER2013 folder manifest.

    ``names_csv`` maps ``ferplus_file`` (e.g. ``FER2013Train/fer0000000.png``) to ``fer2013_file`` (e.g.
    ``train/angry/Training_1426440.jpg``), the same face in the two releases. Training faces get the
    ``protocol`` targets, the others the majority ones (used only to measure, never to train).
    """
    names_path = Path(names_csv).expanduser()
    if not names_path.is_file():
        raise DataError(f"FER+ name mapping not found: {names_path}")
    names = pd.read_csv(names_path)
    if not {"ferplus_file", "fer2013_file"} <= set(names.columns):
        raise DataError(f"{names_path} needs columns ferplus_file,fer2013_file")
    votes = read_ferplus_votes(ferplus_root, on_error)
    labelled = _labelled(votes, protocol, source="ferplus")
    by_ferplus = dict(zip(labelled["ferplus_file"], labelled["target"]))
    by_fer2013 = {f: by_ferplus[p] for p, f in zip(names["ferplus_file"], names["fer2013_file"]) if p in by_ferplus}
    targets = np.zeros((len(manifest), len(EMOTIONS_8)), dtype=np.float32)
    for i, item in enumerate(manifest["item"]):
        key = "/".join(Path(item).parts[-3:])  # <split dir>/<class>/<file>, as in the mapping
        if key in by_fer2013:
            targets[i] = by_fer2013[key]
    if not targets.any():
        raise DataError(f"no face of the data set matched {names_path}; is it the FER2013 folder layout?")
    return targets


def vote_statistics(votes: pd.DataFrame) -> str:
    """FER+ votes as a person reads them: votes per class and split, annotator agreement, faces kept per protocol."""
    matrix = np.array(votes["votes"].tolist(), dtype=float)
    splits = [s for s in SPLITS if (votes["split"] == s).any()]
    per_split = {s: (votes["split"] == s).to_numpy() for s in splits}
    lines = ["votes per class (all annotators):"]
    table = pd.DataFrame({s: matrix[m].sum(axis=0).astype(int) for s, m in per_split.items()}, index=FERPLUS_COLUMNS)
    lines.append(table.to_string())
    agree = {s: float((matrix[m].max(axis=1) >= 5).mean()) for s, m in per_split.items()}
    lines.append("agreement (top class has >= 5 of 10 votes): "
                 + ", ".join(f"{s} {share:.1%}" for s, share in agree.items()))
    kept = {p: {s: int(ferplus_targets(matrix[m], p)[1].sum()) for s, m in per_split.items()} for p in PROTOCOLS}
    lines.append("faces kept per protocol (of " + ", ".join(f"{s} {int(m.sum())}" for s, m in per_split.items())
                 + "):")
    lines += [f"  {p:>13}: " + ", ".join(f"{s} {n}" for s, n in row.items()) for p, row in kept.items()]
    return "\n".join(lines)


def is_ferplus_folder(root: Path) -> bool:
    return any((root / name / "label.csv").is_file() for name in ("FER2013Train", "FER2013Valid", "FER2013Test"))
