"""Rows, one per face, as CSV, JSON or JSON Lines; the checks of an output path before any work."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TextIO

from vitfer.runtime.results import FrameResult
from vitfer.errors import OutputError

def face_rows(result: FrameResult, every_input: bool = False) -> list[dict]:
    """Flat rows: source, frame, time, face_id, box, detection score, label, confidence, p_<label>..., error.

    ``every_input``: an input with no face, or that could not be read, still gets one row (no label, and its
    ``error``), so rows join back to the list of inputs."""
    if every_input and (result.error is not None or not result.faces):
        return [{"source": result.source, "frame": result.frame, "time": round(result.time, 4),
                 "error": result.error or "no face found"}]
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


def check_output_path(path: Path, exist_ok: bool, option: str = "--save") -> Path:
    """Refuse a file that exists (unless ``exist_ok``) or a path under a file, naming it, before any work starts;
    ``option`` names the setting in the message."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not exist_ok:
        raise OutputError(f"{path} exists; pass --exist-ok to replace it, or choose another {option}")
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

    def __init__(self, path: str | Path, labels: tuple[str, ...], exist_ok: bool = False,
                 every_input: bool = False) -> None:
        rows = check_rows_path(path, exist_ok)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.fields = ["source", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "detection_score", "label",
                       "confidence"] + [f"p_{n}" for n in labels] + ["error"]
        try:
            self.handle = open(self.partial, "w", newline="")
        except OSError as err:
            raise OutputError(f"cannot write {self.path}: {err.strerror or err}") from None
        self.rows = rows(self.handle, self.fields)
        self.count = 0
        self.every_input = every_input  # photos: a row for each input, faces or not (see face_rows)

    def write(self, result: FrameResult) -> None:
        rows = face_rows(result, self.every_input)
        try:
            self.rows.write(rows)
            self.handle.flush()
        except OSError as err:  # a full disk: the target file, if any, stays as it was
            raise OutputError(f"cannot write {self.path}: {err.strerror or err}; the rows so far are in "
                              f"{self.partial}, {self.path} is unchanged") from None
        self.count += len(rows)

    def close(self, complete: bool = True) -> None:
        self.rows.close()
        self.handle.close()
        if complete:
            self.partial.replace(self.path)
