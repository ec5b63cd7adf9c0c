"""Face detectors behind one interface: YuNet (ONNX, shipped: the default), OpenCV Haar and the res10 SSD.

Every detector returns boxes with a score in [0, 1] and drops boxes scored below its ``threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from vitfer.hub import fetch
from vitfer.errors import DetectorError, DownloadError
from vitfer.shipped import BUNDLED_YUNET, DEFAULT_DETECTOR


@dataclass(frozen=True)
class FaceBox:
    """A detected face in pixel coordinates of the frame (x2/y2 exclusive)."""

    x1: int
    y1: int
    x2: int
    y2: int
    score: float = 1.0

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


class FaceDetector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]: ...


def _local_or_fetch(path: str | Path | None, name: str) -> Path:
    """A given model file, else the file of that name from the download cache (fetched when missing)."""
    if path is None:
        try:
            return fetch(name)
        except DownloadError as err:
            raise DetectorError(f"{err}; pass a local file with --detector-model PATH") from None
    path = Path(path).expanduser()
    if not path.is_file():
        raise DetectorError(f"detector model file not found: {path}")
    return path


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (ships with opencv-python-headless < 5).

    Its score is the logistic of the cascade's final-stage confidence (OpenCV's level weight) less 2.5, so the
    default threshold 0.5 keeps boxes the cascade is clearly sure of (the astronaut's face: 7.4 -> 0.99).
    """

    name = "haar"

    def __init__(self, min_size: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5,
                 threshold: float = 0.5) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorError(f"cannot load the Haar cascade at {path} (opencv-python-headless<5 bundles it)")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors
        self.threshold = threshold

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        gray = cv2.equalizeHist(gray)
        found, _, weights = self.cascade.detectMultiScale3(gray, self.scale_factor, self.min_neighbors,
                                                           minSize=(self.min_size, self.min_size),
                                                           outputRejectLevels=True)
        boxes = [FaceBox(int(x), int(y), int(x + w), int(y + h), 1.0 / (1.0 + math.exp(2.5 - float(weight))))
                 for (x, y, w, h), weight in zip(found, np.ravel(weights))]
        return [box for box in boxes if box.score >= self.threshold]


class YuNetDetector:
    """OpenCV's YuNet (cv2.FaceDetectorYN): the file shipped with vitfer, or another local ONNX file."""

    name = "yunet"

    def __init__(self, model_path: str | Path | None = None, threshold: float = 0.5, min_size: int = 24) -> None:
        path = BUNDLED_YUNET if model_path is None and BUNDLED_YUNET.is_file() else _local_or_fetch(
            model_path, "face_detection_yunet.onnx")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), threshold)
        except cv2.error as err:
            raise DetectorError(f"cannot load YuNet model {path}: {err}") from None
        self.min_size = min_size

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR) if image_bgr.ndim == 2 else image_bgr
        height, width = image.shape[:2]
        self.net.setInputSize((width, height))
        _, found = self.net.detect(image)
        boxes = []
        for row in found if found is not None else []:
            x, y, w, h = row[:4]
            if min(w, h) >= self.min_size:
                boxes.append(FaceBox(int(max(x, 0)), int(max(y, 0)), int(min(x + w, width)), int(min(y + h, height)),
                                     float(row[-1])))
        return boxes


class SSDDetector:
    """OpenCV's res10 300x300 SSD face detector (TensorFlow uint8), local files or downloaded by name."""

    name = "ssd"

    def __init__(self, model_path: str | Path | None = None, config_path: str | Path | None = None,
                 threshold: float = 0.5, min_size: int = 24) -> None:
        weights = _local_or_fetch(model_path, "opencv_face_detector_uint8.pb")
        if config_path is None and model_path is not None:
            sibling = Path(model_path).with_name("opencv_face_detector.pbtxt")
            config_path = sibling if sibling.is_file() else None
        config = _local_or_fetch(config_path, "opencv_face_detector.pbtxt")
        try:
            self.net = cv2.dnn.readNetFromTensorflow(str(weights), str(config))
        except cv2.error as err:
            raise DetectorError(f"cannot load SSD model {weights}: {err}") from None
        self.threshold, self.min_size = threshold, min_size

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR) if image_bgr.ndim == 2 else image_bgr
        height, width = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1.0, (300, 300), (104, 117, 123))
        self.net.setInput(blob)
        rows = self.net.forward()[0, 0]
        boxes = []
        for _, _, confidence, x1, y1, x2, y2 in rows:
            if confidence < self.threshold:
                continue
            box = FaceBox(int(max(x1, 0) * width), int(max(y1, 0) * height),
                          int(min(x2, 1) * width), int(min(y2, 1) * height), float(confidence))
            if min(box.width, box.height) >= self.min_size:
                boxes.append(box)
        return boxes


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) from the ``mtcnn`` package on PyPI, which runs on TensorFlow:
    ``pip install 'vitfer[mtcnn]'`` (about 600 MB with TensorFlow). Its confidence is the score."""

    name = "mtcnn"

    def __init__(self, threshold: float = 0.5, min_size: int = 24) -> None:
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise DetectorError("--detector mtcnn needs the mtcnn package and TensorFlow: "
                                "pip install 'vitfer[mtcnn]' (about 600 MB)") from None
        self.net = MTCNN()
        self.threshold, self.min_size = threshold, min_size

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB if image_bgr.ndim == 2 else cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        boxes = []
        for face in self.net.detect_faces(image):
            x, y, w, h = (int(v) for v in face["box"])
            box = FaceBox(max(x, 0), max(y, 0), min(x + w, width), min(y + h, height), float(face["confidence"]))
            if box.score >= self.threshold and min(box.width, box.height) >= self.min_size:
                boxes.append(box)
        return boxes


#: detector name -> factory(model_path, threshold, min_size); a new detector is one class and one entry here
DETECTOR_FACTORIES: dict[str, Callable[[str | Path | None, float, int], FaceDetector]] = {
    "yunet": lambda path, threshold, min_size: YuNetDetector(path, threshold, min_size),
    "haar": lambda path, threshold, min_size: HaarDetector(min_size=min_size, threshold=threshold),
    "ssd": lambda path, threshold, min_size: SSDDetector(path, threshold=threshold, min_size=min_size),
    "mtcnn": lambda path, threshold, min_size: MTCNNDetector(threshold=threshold, min_size=min_size),
}
DETECTORS = tuple(DETECTOR_FACTORIES)
def create_detector(name: str = DEFAULT_DETECTOR, model_path: str | Path | None = None, threshold: float = 0.5,
                    min_size: int = 24) -> FaceDetector:
    """Create a detector by name: yunet (shipped), haar (OpenCV's), ssd (a local file or downloaded by name), or
    mtcnn (the optional ``mtcnn`` package).

    >>> detector = create_detector("yunet", threshold=0.6)
    >>> boxes = detector.detect(cv2.imread("photo.jpg"))  # doctest: +SKIP
    """
    if name not in DETECTOR_FACTORIES:
        raise DetectorError(f"unknown detector {name!r}; use one of {', '.join(DETECTORS)}")
    return DETECTOR_FACTORIES[name](model_path, threshold, min_size)
