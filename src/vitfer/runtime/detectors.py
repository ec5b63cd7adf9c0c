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


def create_search(name: str = DEFAULT_DETECTOR, model_path: str | Path | None = None, threshold: float = 0.5,
                  min_face: int = 24) -> FrameSearch:
    """The face search of ``predict``: a detector that keeps every size it finds, inside a ``FrameSearch`` that
    applies ``min_face`` in the frame's own pixels."""
    return FrameSearch(create_detector(name, model_path, threshold, min_size=4), min_size=min_face)


def non_maximum_suppression(boxes: list[FaceBox], threshold: float = 0.3) -> list[FaceBox]:
    """The best-scored box of every group that overlaps by more than ``threshold`` (intersection over union)."""
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: -b.score):
        if all(iou(box, other) <= threshold for other in kept):
            kept.append(box)
    return kept


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes."""
    width = max(0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


class FrameSearch:
    """Where in a frame, and at what scale, a detector looks.

    Detectors learn faces at the sizes of their training photos: YuNet's anchors span about 10-300 px on inputs
    near 640 px. A whole 3000-px portrait shown to it at 1600 px puts a 500-px face past its largest anchor, and
    the suit's folds become "faces"; a 30-px face of a 4000-px group photo shrunk to 640 px is 5 px and gone.
    So: the whole frame at ``whole_side`` px (its longest side), for every face it can see there; and, for frames
    more than 1.5 times larger, overlapping ``tile`` px tiles at a scale where the smallest face asked for
    (``min_size``) is still ``small_face`` px, kept only for faces the whole-frame pass is too coarse to see.
    """

    def __init__(self, detector: FaceDetector, min_size: int = 24, whole_side: int = 640, tile: int = 640,
                 small_face: int = 24) -> None:
        self.detector, self.min_size = detector, min_size
        self.whole_side, self.tile, self.small_face = whole_side, tile, small_face

    def detect(self, image: np.ndarray, small_faces: bool = True) -> list[FaceBox]:
        longest = max(image.shape[:2])
        scale = min(1.0, self.whole_side / longest)
        boxes = _scaled(self.detector.detect(_resized(image, scale)), scale, 0, 0)
        if small_faces and scale < 1 / 1.5:
            boxes += self._small_faces(image, scale)
        return non_maximum_suppression([b for b in boxes if min(b.width, b.height) >= self.min_size])

    def _small_faces(self, image: np.ndarray, whole_scale: float) -> list[FaceBox]:
        """Faces under ~24 px at the whole-frame scale, searched tile by tile at a finer scale."""
        scale = min(1.0, max(2 * whole_scale, self.small_face / max(self.min_size, 1)))
        small = _resized(image, scale)
        height, width = small.shape[:2]
        step = self.tile - self.tile // 8  # tiles overlap by an eighth: a face on a seam is whole in one of them
        largest = 16 / whole_scale  # original pixels: faces the whole-frame pass sees for itself
        found = []
        for top in range(0, max(height - self.tile // 8, 1), step):
            for left in range(0, max(width - self.tile // 8, 1), step):
                part = small[top:top + self.tile, left:left + self.tile]
                found += [b for b in _scaled(self.detector.detect(part), scale, left, top)
                          if max(b.width, b.height) < largest]
        return [b for b in non_maximum_suppression(found) if self._confirmed(image, b)]

    def _confirmed(self, image: np.ndarray, box: FaceBox, side: int = 48) -> bool:
        """Whether the detector finds the face again when its surroundings are shown with the face at ``side`` px:
        textures that look like a face at one scale (fabric, foliage) rarely do at another."""
        size = max(box.width, box.height)
        cx, cy = (box.x1 + box.x2) // 2, (box.y1 + box.y2) // 2
        x1, y1 = max(cx - 2 * size, 0), max(cy - 2 * size, 0)
        window = image[y1:cy + 2 * size, x1:cx + 2 * size]
        zoom = side / size
        again = _scaled(self.detector.detect(cv2.resize(window, None, fx=zoom, fy=zoom,
                                                       interpolation=cv2.INTER_LINEAR)), zoom, 0, 0)
        moved = FaceBox(box.x1 - x1, box.y1 - y1, box.x2 - x1, box.y2 - y1, box.score)
        return any(iou(moved, other) > 0.4 for other in again)


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _scaled(boxes: list[FaceBox], scale: float, left: int, top: int) -> list[FaceBox]:
    """Boxes found at ``scale`` in a part whose corner is (left, top) there, in the frame's own pixels."""
    return [FaceBox(int(round((b.x1 + left) / scale)), int(round((b.y1 + top) / scale)),
                    int(round((b.x2 + left) / scale)), int(round((b.y2 + top) / scale)), b.score) for b in boxes]
