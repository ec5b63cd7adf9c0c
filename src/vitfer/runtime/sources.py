"""Frame sources: an image, a folder, a glob, a video file or a webcam index -> (name, frame no., time, BGR image)."""

from __future__ import annotations

import glob
import io
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from vitfer.preprocess import IMAGE_SUFFIXES
from vitfer.shipped import EXAMPLE_IMAGE
from vitfer.errors import ImageTooLarge, SourceError

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


@dataclass
class Frame:
    source: str
    index: int
    time: float  # seconds from the start of a video, 0 for still images
    image: np.ndarray | None  # BGR uint8; None when the file could not be read (then ``error`` says why)
    error: str | None = None


#: The largest image (width x height) read by default: a 108-megapixel phone photo passes, a decompression bomb
#: (a small PNG of 20000 x 20000 pixels) is refused from its header, before any pixel is decoded.
MAX_PIXELS = 120_000_000


def image_header(data: bytes, name: str, max_pixels: int) -> tuple[int, int, int]:
    """(width, height, frames) from an image's header alone (Pillow reads no pixels for this)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as header:
            return int(header.width), int(header.height), int(getattr(header, "n_frames", 1))
    except Image.DecompressionBombError:  # Pillow's own, higher limit: far over ours too
        if not data.startswith(b"\x89PNG"):
            raise ImageTooLarge(f"{name}: image is over the limit of {max_pixels:,} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass  # formats Pillow does not know are left to OpenCV, which refuses what it cannot read
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        # a PNG whose header Pillow could not follow (e.g. a bomb cut after IHDR): its size is in IHDR itself
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), 1
    return 0, 0, 1


def decode_image_bytes(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS,
                       flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode image bytes (BGR uint8 by default; OpenCV's ``flags`` otherwise), refusing over ``max_pixels`` before
    decoding; SourceError names ``name``. Every place that decodes an image file, a data set's too, comes here."""
    if not data:
        raise SourceError(f"{name}: empty file, not an image")
    width, height, frames = image_header(data, name, max_pixels)
    if width * height > max_pixels:
        raise ImageTooLarge(f"{name}: image of {width}x{height} pixels is over the limit of {max_pixels:,} pixels")
    if frames > 1:
        log.warning("%s: an animated image of %d frames; only its first frame is used", name, frames)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None:
        raise SourceError(f"{name}: cannot decode image (corrupt or not an image)")
    if image.shape[0] * image.shape[1] > max_pixels:  # a header Pillow could not read
        raise ImageTooLarge(f"{name}: image of {image.shape[1]}x{image.shape[0]} pixels is over the limit of "
                          f"{max_pixels:,} pixels")
    return image


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read one image file as BGR uint8, or raise SourceError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"image not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        data = path.read_bytes()
    except OSError as err:  # permissions, a file that vanished, a disk error: this input is skipped, named
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    return decode_image_bytes(data, str(path), max_pixels)


#: live network streams OpenCV's FFmpeg reads
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://")
#: the largest image fetched from a URL
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


def read_url(url: str, max_pixels: int = MAX_PIXELS, timeout: float = 30.0) -> np.ndarray:
    """Fetch one image over HTTP(S) and decode it as BGR uint8; SourceError names the URL."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "vitfer"}),
                                    timeout=timeout) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise SourceError(f"cannot fetch {url}: {getattr(err, 'reason', err)}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ImageTooLarge(f"{url}: over the {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB a downloaded image may have")
    return decode_image_bytes(data, url, max_pixels)


def source_kind(source: str | int) -> str:
    """webcam, video, image, folder, glob; url (an image over HTTP(S)), url-video, stream (RTSP and the like)."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return "webcam"
    text = str(source)
    if text.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if text.lower().startswith(("http://", "https://")):
        return "url-video" if Path(urlsplit(text).path).suffix.lower() in VIDEO_SUFFIXES else "url"
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


@dataclass
class Source:
    """A prediction source classified once (``Source.of``): its kind and what each kind needs, passed along the
    whole call instead of the string being classified again at every step."""

    value: str | int | tuple[str, ...]
    kind: str  # webcam | video | image | folder | glob | files (several image files)

    @classmethod
    def of(cls, source: str | int | Path | Source | list | tuple) -> Source:
        """Classify a source once: 'example' (the bundled photo), a webcam index, an existing image, video or
        folder, a glob that matches something, or a list of image files (as a shell expands ``dir/*.png``);
        anything else is a SourceError naming it."""
        if isinstance(source, Source):
            return source
        if isinstance(source, (list, tuple)):
            if len(source) == 1:
                return cls.of(source[0])
            if not source:
                raise SourceError("no source given")
            for item in source:
                if cls.of(item).kind != "image":
                    raise SourceError(f"{item}: several sources must all be image files; give a folder, a video or "
                                      "a webcam alone")
            return cls(tuple(str(item) for item in source), "files")
        if str(source) == "example":
            source = EXAMPLE_IMAGE
        kind = source_kind(source if isinstance(source, int) else str(source))
        missing = (kind in ("image", "video") and not Path(str(source)).exists()) or (
            kind == "glob" and not glob.glob(str(source), recursive=True))
        if missing:
            raise SourceError(f"source not found: {source}")
        return cls(int(source) if kind == "webcam" else str(source), kind)

    @property
    def is_stream(self) -> bool:
        """A video, webcam or network stream: frames in time, with tracked face ids."""
        return self.kind in ("video", "webcam", "url-video", "stream")

    @property
    def name(self) -> str:
        """A file-name stem for its outputs: the file's, the URL's last part, or ``webcam0``."""
        if self.kind == "webcam":
            return f"webcam{self.value}"
        if self.kind in ("url", "url-video", "stream"):
            return Path(urlsplit(str(self.value)).path).stem or urlsplit(str(self.value)).hostname or "stream"
        return Path(str(self.value)).stem

    @property
    def root(self) -> Path | None:
        """The folder that output paths of a folder or glob source are made relative to (None for other kinds)."""
        if self.kind == "folder":
            return Path(self.value)
        if self.kind == "glob":  # the path up to the first part with a wildcard
            fixed = list(itertools.takewhile(lambda part: not any(ch in part for ch in "*?["),
                                             Path(str(self.value)).parts))
            return Path(*fixed) if fixed else Path(".")
        if self.kind == "files":  # the folder they share: same-named files of two folders stay apart
            return Path(os.path.commonpath([str(Path(p).resolve().parent) for p in self.value]))
        return None

    def image_paths(self) -> list[Path]:
        """The image files of an image, folder or glob source, sorted; SourceError when there are none."""
        if self.kind == "folder":  # files only: a folder called "album.jpg" is walked, not read as an image
            paths = sorted(p for p in Path(self.value).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                           and p.is_file())
        elif self.kind == "glob":
            paths = sorted(Path(p) for p in glob.glob(str(self.value), recursive=True)
                           if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file())
        elif self.kind == "files":
            paths = [Path(p).resolve() for p in self.value]
        elif self.kind == "url":
            return [Path(urlsplit(str(self.value)).path).name or "image"]
        else:
            paths = [Path(str(self.value))]
        if not paths:
            raise SourceError(f"no images in {self.value}")
        return paths

    def video_properties(self) -> tuple[float, int]:
        """(frames per second, frame count) as the file or camera reports them; 0 where it reports nothing."""
        capture = cv2.VideoCapture(self.value)
        try:
            return float(capture.get(cv2.CAP_PROP_FPS) or 0.0), int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            capture.release()

    def frames(self, max_frames: int | None = None, on_error: str = "raise") -> Iterator[Frame]:
        """Every frame. ``on_error='skip'``: an unreadable image of a folder or glob comes as a Frame with no image
        and its ``error``, and the images after it are still read."""
        if on_error not in ("raise", "skip"):
            raise SourceError(f"on_error must be raise or skip, got {on_error!r}")
        if self.is_stream:
            yield from self._video_frames(max_frames)
            return
        if self.kind == "url":
            yield Frame(str(self.value), 0, 0.0, read_url(str(self.value)))
            return
        for index, path in enumerate(self.image_paths()):
            if max_frames is not None and index >= max_frames:
                return
            try:
                image = read_image(path)
            except SourceError as err:
                if on_error == "raise" or self.kind == "image":
                    raise
                yield Frame(str(path), 0, 0.0, None, str(err))
                continue
            yield Frame(str(path), 0, 0.0, image)

    def _video_frames(self, max_frames: int | None) -> Iterator[Frame]:
        """Frames of a video file or webcam until it ends; SourceError if it cannot be opened or yields nothing."""
        webcam, live = self.kind == "webcam", self.kind in ("webcam", "stream")
        if self.kind == "video" and not Path(str(self.value)).is_file():
            raise SourceError(f"video not found: {self.value}")
        capture = cv2.VideoCapture(self.value)
        if not capture.isOpened():
            what = (f"webcam {self.value} (no camera at that index?)" if webcam
                    else f"stream {self.value}" if live else f"video {self.value}")
            raise SourceError(f"cannot open {what}")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > MAX_PIXELS:  # from the stream's header, before a frame is decoded
            capture.release()
            raise ImageTooLarge(f"{self.value}: frames of {width}x{height} pixels are over the limit of "
                                f"{MAX_PIXELS:,} pixels")
        index = 0
        try:
            while max_frames is None or index < max_frames:
                ok, image = capture.read()
                if not ok:
                    break
                time = (index / fps) if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                yield Frame(str(self.value), index, float(time), image)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise SourceError(f"no frame could be decoded from {'webcam ' if webcam else ''}{self.value}")
        if not live and max_frames is None and expected > 0 and index < expected - 1:
            raise SourceError(f"video {self.value} ended early: read {index} of {expected} frames")


def iter_frames(source: str | int | Source, max_frames: int | None = None, on_error: str = "raise") -> Iterator[Frame]:
    """Every frame of any source (see ``Source.frames``)."""
    return Source.of(source).frames(max_frames, on_error)


def image_paths(source: str | Path | Source) -> list[Path]:
    """The image files of an image, folder or glob source (see ``Source.image_paths``)."""
    return Source.of(source).image_paths()
