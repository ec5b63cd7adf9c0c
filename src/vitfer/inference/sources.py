"""Frame sources: an image, a folder, a glob, a video file or a webcam index -> (name, frame no., time, BGR image)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vitfer.data.readers import IMAGE_SUFFIXES

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


class SourceError(ValueError):
    """An input that cannot be read: a missing file, a corrupt image, an unreadable video, no webcam."""


@dataclass
class Frame:
    source: str
    index: int
    time: float  # seconds from the start of a video, 0 for still images
    image: np.ndarray  # BGR uint8


def read_image(path: str | Path) -> np.ndarray:
    """Read one image as BGR uint8, or raise SourceError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot decode image (corrupt or not an image): {path}")
    return image


def decode_image_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode image bytes (e.g. an HTTP upload) as BGR uint8, or raise SourceError."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise SourceError(f"{name}: not a decodable image")
    return image


def source_kind(source: str | int) -> str:
    """webcam, video, image, folder or glob."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return "webcam"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if any(ch in str(source) for ch in "*?["):
        return "glob"
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if path.suffix.lower() in IMAGE_SUFFIXES or path.is_file():
        return "image"
    raise SourceError(f"source not found: {source}")


def image_paths(source: str) -> list[Path]:
    kind = source_kind(source)
    if kind == "folder":
        paths = sorted(p for p in Path(source).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    elif kind == "glob":
        paths = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    else:
        paths = [Path(source)]
    if not paths:
        raise SourceError(f"no images in {source}")
    return paths


def iter_video(source: str | int, max_frames: int | None = None) -> Iterator[Frame]:
    """Frames of a video file or webcam until it ends; SourceError if it cannot be opened or yields nothing."""
    webcam = source_kind(source) == "webcam"
    if not webcam and not Path(str(source)).is_file():
        raise SourceError(f"video not found: {source}")
    capture = cv2.VideoCapture(int(source) if webcam else str(source))
    if not capture.isOpened():
        what = f"webcam {source} (no camera at that index?)" if webcam else f"video {source}"
        raise SourceError(f"cannot open {what}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, image = capture.read()
            if not ok:
                break
            time = (index / fps) if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            yield Frame(str(source), index, float(time), image)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise SourceError(f"no frame could be decoded from {'webcam ' if webcam else ''}{source}")
    if not webcam and max_frames is None and expected > 0 and index < expected - 1:
        raise SourceError(f"video {source} ended early: read {index} of {expected} frames")


def iter_frames(source: str | int, max_frames: int | None = None) -> Iterator[Frame]:
    """Every frame of any source kind."""
    kind = source_kind(source)
    if kind in ("webcam", "video"):
        yield from iter_video(source, max_frames)
        return
    for index, path in enumerate(image_paths(str(source))):
        if max_frames is not None and index >= max_frames:
            return
        yield Frame(str(path), 0, 0.0, read_image(path))
