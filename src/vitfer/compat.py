"""Drop-ins for code written for other packages: moving to vitfer is one import.

``fer`` (Justin Shenk's package)::

    from vitfer.compat import FER        # was: from fer import FER
    detector = FER()
    detector.detect_emotions(image)      # [{"box": [x, y, w, h], "emotions": {"angry": 0.01, ...}}, ...]
    detector.top_emotion(image)          # ("happy", 0.93), or (None, None) without a face

``deepface``::

    from vitfer.compat import analyze    # was: from deepface.DeepFace import analyze
    analyze(image)                       # [{"emotion": {...percent}, "dominant_emotion": "happy", "region": {...}}]

Images are BGR arrays (as OpenCV reads them, as both packages take them), paths, or PIL images. The answers are
vitfer's: its detector (YuNet) and its shipped model, calibrated probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitfer.runtime.predictor import ImageInput, Predictor
from vitfer.runtime.results import Face


def _box(face: Face) -> list[int]:
    x1, y1, x2, y2 = face.box
    return [int(x1), int(y1), int(x2 - x1), int(y2 - y1)]


class FER:
    """``fer.FER``'s interface over a vitfer ``Predictor``. ``model`` is a shipped name or a model file;
    ``mtcnn=True`` asks for fer's MTCNN detector (``vitfer[mtcnn]``), else vitfer's default (YuNet)."""

    def __init__(self, model: str | Path | None = None, mtcnn: bool = False, **predictor_options: Any) -> None:
        self.predictor = Predictor(model, detector="mtcnn" if mtcnn else predictor_options.pop("detector", "yunet"),
                                   **predictor_options)

    def detect_emotions(self, img: ImageInput) -> list[dict]:
        """One dict per face: ``box`` as [x, y, w, h] and ``emotions``, probability per emotion (fer's names)."""
        return [{"box": _box(face), "emotions": {name: round(p, 4) for name, p in face.probabilities.items()}}
                for face in self.predictor.predict(img)]

    def top_emotion(self, img: ImageInput) -> tuple[str | None, float | None]:
        """The first face's most probable emotion and its probability, or (None, None) with no face."""
        faces = self.detect_emotions(img)
        if not faces:
            return None, None
        emotions = faces[0]["emotions"]
        best = max(emotions, key=emotions.get)
        return best, emotions[best]


def analyze(img_path: ImageInput, actions: tuple[str, ...] | list[str] = ("emotion",), enforce_detection: bool = True,
            model: str | Path | None = None, **predictor_options: Any) -> list[dict]:
    """``deepface.DeepFace.analyze`` for emotions: one dict per face with ``emotion`` (percent per emotion),
    ``dominant_emotion``, ``region`` (x, y, w, h) and ``face_confidence``. As in deepface, no face is a
    ValueError unless ``enforce_detection=False`` (then the whole image is analysed as one face)."""
    unknown = set(actions) - {"emotion"}
    if unknown:
        raise ValueError(f"vitfer analyses emotions only; not {sorted(unknown)}")
    faces = list(Predictor(model, **predictor_options).predict(img_path))
    if not faces:
        if enforce_detection:
            raise ValueError("Face could not be detected; pass enforce_detection=False to analyse the whole image")
        faces = list(Predictor(model, detector="none", **predictor_options).predict(img_path))
    results = []
    for face in faces:
        x, y, w, h = _box(face)
        results.append({"emotion": {name: round(100 * p, 4) for name, p in face.probabilities.items()},
                        "dominant_emotion": max(face.probabilities, key=face.probabilities.get),
                        "region": {"x": x, "y": y, "w": w, "h": h}, "face_confidence": face.detection_score})
    return results
