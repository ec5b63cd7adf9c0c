"""``Predictor``: image -> faces -> emotions, for single images, folders, videos and webcams."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Union
from pathlib import Path

import cv2
import numpy as np

from vitfer.runtime.crop import crop_face
from vitfer.runtime.detectors import DEFAULT_DETECTOR, FaceBox, FrameSearch, create_search
from vitfer.runtime.backends import create_backend
from vitfer.runtime.results import Face, FrameResult, Prediction
from vitfer.runtime.sources import Frame, Source, read_image
from vitfer.errors import ArgumentError, SourceError
from vitfer.shipped import SHIPPED_NAMES
from vitfer.runtime.tracking import FaceTracker, appearance

log = logging.getLogger(__name__)

#: what ``Predictor.predict`` reads: a path, a BGR (or grey) uint8 array, or a PIL image
ImageInput = Union[str, Path, np.ndarray, "PIL.Image.Image"]  # noqa: F821 - PIL is imported only by its users


CHANNEL_ORDERS = ("bgr", "rgb")
UNCERTAIN = "uncertain"  # the label of a face whose top probability is under ``min_confidence``


def as_bgr(image: ImageInput, channels: str = "bgr") -> np.ndarray:
    """Any accepted image as a BGR uint8 array, or SourceError saying what was given. ``channels`` says the order
    of a colour array's channels: 'bgr' (OpenCV's) or 'rgb' (Pillow's, scikit-image's, matplotlib's)."""
    if channels not in CHANNEL_ORDERS:
        raise SourceError(f"channels must be 'bgr' or 'rgb', got {channels!r}")
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, np.ndarray) and channels == "rgb" and image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    if type(image).__module__.startswith("PIL."):
        return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    if not isinstance(image, np.ndarray):
        raise SourceError(f"cannot read an image from a {type(image).__name__}: give a path, a numpy array or a "
                          "PIL image")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise SourceError(f"an image array must be uint8 H x W (grey) or H x W x 3 (BGR), got {image.dtype} "
                          f"{tuple(image.shape)}")
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if image.shape[2] == 4 else image


class Predictor:
    """Detect every face, crop it as training saw faces, classify all faces of a frame in one batch.

    >>> predictor = Predictor("ferplus", detector="yunet", threshold=0.6)   # doctest: +SKIP
    >>> for result in predictor.stream("clip.mp4"):                        # doctest: +SKIP
    ...     print(result.time, [(f.face_id, f.label) for f in result.faces])

    ``model``: None/'default' (bundled), a .pt/.ckpt checkpoint or an exported .onnx file.
    ``detector``: yunet (shipped, the default) | haar | ssd | none (the whole image is one face, e.g. FER2013 crops).
    ``backend``: auto | onnx | onnx-int8 | torch (see ``create_backend``); ``device``: cpu | cuda | cuda:N.
    ``min_confidence``: a face whose calibrated top probability is below it is labelled 'uncertain' (its
    probabilities are kept). ``small_faces``: also search large frames tile by tile for faces too small to see on
    the whole frame (see ``FrameSearch``); None (the default) does so for photos and not for video frames, where it
    would cost FPS.
    """

    def __init__(self, model: str | Path | None = None, detector: str = DEFAULT_DETECTOR, backend: str = "auto",
                 detector_model: str | Path | None = None, threshold: float = 0.5, min_face: int = 24,
                 threads: int | None = None, device: str | None = None, small_faces: bool | None = None,
                 min_confidence: float = 0.0) -> None:
        self.backend = create_backend(model, backend, threads, device)
        #: what the model is called where it came from: a shipped name ('default', 'fast'), else its file's stem
        self.model_name = "default" if model is None else (str(model) if str(model) in SHIPPED_NAMES
                                                             else Path(str(model)).stem)
        self.labels = self.backend.labels
        self.preprocess = self.backend.preprocess
        # the detector keeps every size it finds; FrameSearch applies min_face in the frame's own pixels
        self.search: FrameSearch | None = (None if detector == "none" else
                                           create_search(detector, detector_model, threshold, min_face))
        self.small_faces = small_faces
        if not 0.0 <= min_confidence <= 1.0:
            raise ArgumentError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.min_confidence = min_confidence
        # OpenCV's detectors keep per-call state (input size, network buffers): one call at a time,
        # so that threads (the HTTP server's inference slots) can share one Predictor.
        self._detector_lock = threading.Lock()

    def searches_small_faces(self, video: bool) -> bool:
        """Photos are searched for small faces unless ``small_faces`` says otherwise; video frames only if it
        says so."""
        return (not video) if self.small_faces is None else self.small_faces

    def detect(self, image: np.ndarray, small_faces: bool | None = None, threshold: float | None = None,
               min_face: int | None = None) -> list[FaceBox]:
        """The faces of a frame (the whole frame as one face with ``detector='none'``); ``small_faces`` None: as
        for a photo (see ``searches_small_faces``). ``threshold`` and ``min_face`` tighten this Predictor's own for
        one call (a server's per-request options); its own threshold stays the floor."""
        if self.search is None:
            return [FaceBox(0, 0, image.shape[1], image.shape[0], 1.0)]
        small = self.searches_small_faces(video=False) if small_faces is None else small_faces
        with self._detector_lock:
            boxes = self.search.detect(image, small)
        return [box for box in boxes if (threshold is None or box.score >= threshold)
                and (min_face is None or min(box.width, box.height) >= min_face)]

    def faces_array(self, image: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """Square crops of the faces, decoded as the training faces were (``Preprocess.decode``): uint8 N x C x d x d."""
        margin = self.preprocess.crop_margin if self.search is not None else 0.0
        crops = [crop_face(image, box, margin) for box in boxes]
        smallest = min((min(c.shape[:2]) for c in crops), default=self.preprocess.decode_size)
        if smallest < self.preprocess.decode_size // 2:
            log.warning("a face of %d px is far below the %d px faces this model learnt from; its label is unreliable",
                        smallest, self.preprocess.decode_size)
        return self.preprocess.decode(crops)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities for a uint8 batch of face crops."""
        return self.backend.probabilities(faces)

    def _faces(self, boxes: list[FaceBox], probabilities: np.ndarray, ids: list[int | None]) -> list[Face]:
        faces = []
        for box, probs, face_id in zip(boxes, probabilities, ids):
            best = int(np.argmax(probs))
            label = self.labels[best] if probs[best] >= self.min_confidence else UNCERTAIN
            faces.append(Face((box.x1, box.y1, box.x2, box.y2), round(box.score, 4), label,
                              float(probs[best]), {n: float(p) for n, p in zip(self.labels, probs)}, face_id))
        return faces

    def predict(self, image: ImageInput | list[ImageInput], channels: str = "bgr", threshold: float | None = None,
                min_face: int | None = None) -> Prediction | list[Prediction]:
        """All faces of an image: a path, a uint8 array, or a PIL image; a list of them gives one result per image,
        every face of every image classified in one batch. A colour array is taken as BGR (OpenCV's order) unless
        ``channels='rgb'`` (Pillow's, scikit-image's and matplotlib's order).

        A folder or a video is a stream of frames: give it to ``stream``. ``threshold`` and ``min_face`` tighten
        the detector's own for this call.

        >>> predictor = Predictor()
        >>> faces = predictor.predict("group.jpg")                  # doctest: +SKIP
        >>> faces[0].label, faces[0].confidence                     # doctest: +SKIP
        ('happy', 0.93)
        >>> faces.save("group_annotated.jpg")                       # doctest: +SKIP
        """
        many = isinstance(image, (list, tuple))
        items = list(image) if many else [image]
        for item in items:
            if isinstance(item, (str, Path)) and (Path(item).is_dir() or Source.of(item).is_stream):
                raise SourceError(f"{item} is a {'folder' if Path(item).is_dir() else 'video'}: predict() takes "
                                  "images; use stream() for folders, videos and webcams (a result per frame)")
        images = [as_bgr(item, channels) for item in items]
        sources = [str(item) if isinstance(item, (str, Path)) else "" for item in (image if many else [image])]
        boxes = [self.detect(item, threshold=threshold, min_face=min_face) for item in images]
        crops = [self.faces_array(item, found) for item, found in zip(images, boxes) if found]
        probabilities = self.classify(np.concatenate(crops)) if crops else np.zeros((0, len(self.labels)))
        results, start = [], 0
        for item, found, source in zip(images, boxes, sources):
            faces = self._faces(found, probabilities[start:start + len(found)], [None] * len(found))
            results.append(Prediction(faces, item, source))
            start += len(found)
        return results if many else results[0]

    def stream(self, source: str | int | Source, smoothing: str = "ema", alpha: float = 0.5, window: int = 5,
               max_frames: int | None = None, on_error: str = "raise") -> Iterator[FrameResult]:
        """Results frame by frame for any source; videos and webcams get face ids and smoothed probabilities."""
        source = Source.of(source)
        tracker: FaceTracker | None = None
        current_source = None
        for frame in source.frames(max_frames, on_error):
            if frame.error is not None:
                yield FrameResult(frame.source, frame.index, frame.time, [], None, frame.error)
                continue
            if frame.source != current_source or frame.index == 0:
                tracker = FaceTracker(smoothing, alpha, window)
                current_source = frame.source
            yield self._frame_result(frame, tracker, video=source.is_stream)

    def track(self, image: np.ndarray, tracker: FaceTracker, time: float) -> list[Face]:
        """The faces of one live frame (a web page's camera, say), with ids and smoothing kept by ``tracker``
        across calls; ``time`` in seconds since the stream began."""
        return self._frame_result(Frame("live", 1, time, as_bgr(image)), tracker, video=True).faces

    def _frame_result(self, frame: Frame, tracker: FaceTracker | None, video: bool) -> FrameResult:
        boxes = self.detect(frame.image, self.searches_small_faces(video))
        if not boxes:
            if video and tracker is not None:  # time passes for the faces that are gone
                tracker.update([], np.zeros((0, len(self.labels))), [], frame.time)
            return FrameResult(frame.source, frame.index, frame.time, [], frame.image)
        probabilities = self.classify(self.faces_array(frame.image, boxes))
        ids: list[int | None] = [None] * len(boxes)
        if video and tracker is not None:
            looks = [appearance(frame.image, box) for box in boxes]
            tracked = tracker.update(boxes, probabilities, looks, frame.time)
            ids = [t for t, _ in tracked]
            probabilities = np.stack([p for _, p in tracked])
        return FrameResult(frame.source, frame.index, frame.time, self._faces(boxes, probabilities, ids), frame.image)


class FPSMeter:
    """Frames per second over a sliding window."""

    def __init__(self, window: int = 30) -> None:
        self.times: list[float] = []
        self.window = window

    def tick(self) -> float:
        self.times = (self.times + [time.perf_counter()])[-self.window:]
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])
