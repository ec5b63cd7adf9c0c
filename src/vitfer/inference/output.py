"""Annotated images/videos and rows (one per face) as CSV, JSON or JSON Lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from vitfer.inference.results import FrameResult
from vitfer.errors import VitferError

COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
           "sad": (200, 120, 40), "surprise": (0, 160, 255), "neutral": (200, 200, 200), "contempt": (120, 80, 40)}


def annotate(image: np.ndarray, result: FrameResult, bars: bool = False) -> np.ndarray:
    """A copy of the frame with a box, label and confidence per face (and probability bars if asked)."""
    out = image.copy()
    scale = max(out.shape[0], out.shape[1]) / 800
    thickness = max(1, int(round(2 * scale)))
    for face in result.faces:
        x1, y1, x2, y2 = face.box
        colour = COLOURS.get(face.label, (0, 255, 0))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        tag = f"{face.label} {face.confidence:.0%}" + (f" #{face.face_id}" if face.face_id is not None else "")
        font = 0.5 * max(scale, 0.6)
        (tw, th), _ = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        top = max(y1 - th - 6, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), colour, -1)
        cv2.putText(out, tag, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thickness,
                    cv2.LINE_AA)
        if bars:
            draw_bars(out, face, scale)
    return out


def draw_bars(out: np.ndarray, face, scale: float) -> None:
    """Probability bars on a dark panel beside the face: to its right where the frame has room, else to its
    left, else below; white text on the panel reads on any background."""
    x1, y1, x2, y2 = face.box
    row = max(12, int(round(14 * scale)))
    width = max(110, int(round(130 * scale)))
    height = row * len(face.probabilities) + 4
    frame_h, frame_w = out.shape[:2]
    if x2 + 4 + width <= frame_w:
        left, top = x2 + 4, y1
    elif x1 - 4 - width >= 0:
        left, top = x1 - 4 - width, y1
    else:
        left, top = x1, y2 + 4
    left, top = max(0, min(left, frame_w - width)), max(0, min(top, frame_h - height))
    panel = out[top:top + height, left:left + width]
    panel[:] = (panel * 0.25).astype(out.dtype)  # darken what lies under the panel
    font = 0.38 * max(scale, 0.8)
    for i, (name, p) in enumerate(face.probabilities.items()):
        y = top + 2 + i * row
        bar_left = left + int(width * 0.45)
        cv2.rectangle(out, (bar_left, y + 2), (bar_left + int(p * (width * 0.53)), y + row - 2),
                      COLOURS.get(name, (0, 255, 0)), -1)
        cv2.putText(out, name, (left + 3, y + row - 3), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1,
                    cv2.LINE_AA)


def face_rows(result: FrameResult) -> list[dict]:
    """Flat rows: source, frame, time, face_id, box, detection score, label, confidence, p_<label>..."""
    rows = []
    for face in result.faces:
        x1, y1, x2, y2 = face.box
        row = {"source": result.source, "frame": result.frame, "time": round(result.time, 4),
               "face_id": face.face_id, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
               "detection_score": face.detection_score, "label": face.label,
               "confidence": round(face.confidence, 6)}
        row.update({f"p_{name}": round(p, 6) for name, p in face.probabilities.items()})
        rows.append(row)
    return rows


class OutputError(VitferError, ValueError):
    """An output path that cannot be written as asked (exists, or lies under a file)."""


def check_output_path(path: Path, exist_ok: bool) -> Path:
    """Refuse a file that exists (unless ``exist_ok``) or a path under a file, naming it, before any work starts."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not exist_ok:
        raise OutputError(f"{path} exists; pass --exist-ok to replace it, or choose another --save")
    return path


class CsvRows:
    """Comma-separated values with a header line."""

    def __init__(self, handle: TextIO, fields: list[str]) -> None:
        self.writer = csv.DictWriter(handle, fieldnames=fields)
        self.writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        pass


class JsonRows:
    """One JSON array of row objects."""

    def __init__(self, handle: TextIO, fields: list[str]) -> None:
        self.handle, self.count = handle, 0
        handle.write("[")

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.handle.write(("," if self.count else "") + "\n " + json.dumps(row))
            self.count += 1

    def close(self) -> None:
        self.handle.write("\n]\n")


class JsonLinesRows:
    """One JSON object per line (JSON Lines): readable while it grows, and by pandas, Spark or jq."""

    def __init__(self, handle: TextIO, fields: list[str]) -> None:
        self.handle = handle

    def write(self, rows: list[dict]) -> None:
        self.handle.writelines(json.dumps(row) + "\n" for row in rows)

    def close(self) -> None:
        pass


#: the row formats of ``--save``, by file suffix: add a class with write(rows) and close() here
ROW_FORMATS: dict[str, type] = {".csv": CsvRows, ".json": JsonRows, ".jsonl": JsonLinesRows}


def check_rows_path(path: str | Path, exist_ok: bool) -> type:
    """A ``--save`` path that can be written (see ``check_output_path``) in a known row format, whose class is
    returned; an unknown suffix is an error naming the path."""
    path = check_output_path(Path(path), exist_ok)
    try:
        return ROW_FORMATS[path.suffix.lower()]
    except KeyError:
        raise OutputError(f"cannot write rows to {path}: use one of {', '.join(ROW_FORMATS)}") from None


class ResultWriter:
    """Streams rows to a file in the format its suffix names (``ROW_FORMATS``) through ``<file>.partial``.

    Rows are written as they come; ``close(complete=True)`` renames the partial file onto the target, so the
    target is replaced only by a finished result, and a crash leaves what was done in ``<file>.partial``.
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...], exist_ok: bool = False) -> None:
        rows = check_rows_path(path, exist_ok)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.fields = ["source", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "detection_score", "label",
                       "confidence"] + [f"p_{n}" for n in labels]
        self.handle = open(self.partial, "w", newline="")
        self.rows = rows(self.handle, self.fields)
        self.count = 0

    def write(self, result: FrameResult) -> None:
        rows = face_rows(result)
        self.rows.write(rows)
        self.count += len(rows)
        self.handle.flush()

    def close(self, complete: bool = True) -> None:
        self.rows.close()
        self.handle.close()
        if complete:
            self.partial.replace(self.path)
