"""What prediction returns: ``Face`` (one classified face), ``Prediction`` (the faces of one image, with
``plot()`` and ``save()``), and ``FrameResult`` (one frame of a stream)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vitfer.errors import SourceError
from vitfer.files import write_text
from vitfer.runtime.draw import annotate


@dataclass
class Face:
    """One classified face."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels
    detection_score: float
    label: str
    confidence: float
    probabilities: dict[str, float]
    face_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FrameResult:
    source: str
    frame: int
    time: float
    faces: list[Face]
    image: np.ndarray | None = None  # the frame (BGR), for annotation
    error: str | None = None  # why the source could not be read (no faces, no image)
    warning: str | None = None  # what went wrong after the faces were found (an output that could not be written)


class Prediction(list):
    """The faces of one image: a list of ``Face`` that also keeps the image, to draw or save.

    >>> result = Predictor().predict("photo.jpg")  # doctest: +SKIP
    >>> [face.label for face in result]            # doctest: +SKIP
    ['happy']
    >>> result.save("photo_annotated.jpg")         # doctest: +SKIP
    """

    def __init__(self, faces: list[Face], image: np.ndarray, source: str = "") -> None:
        super().__init__(faces)
        self.image = image
        self.source = source

    def plot(self, bars: bool = False) -> np.ndarray:
        """A BGR copy of the image with a box, label and confidence per face (and probability bars if asked)."""
        return annotate(self.image, list(self), bars)

    def save(self, path: str | Path, bars: bool = False) -> Path:
        """The annotated image (.jpg, .png, ...) or the faces as JSON (.json) at ``path``; returns ``path``."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            return write_text(path, json.dumps([face.to_dict() for face in self], indent=2))
        if not cv2.haveImageWriter(str(path)):
            raise SourceError(f"cannot write an image to {path}: use .jpg, .png, .bmp or .webp (or .json)")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), self.plot(bars)):
            raise SourceError(f"could not write {path}")
        return path

    def to_dicts(self) -> list[dict]:
        return [face.to_dict() for face in self]
