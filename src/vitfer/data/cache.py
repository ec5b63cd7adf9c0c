"""Decode every face once into one uint8 tensor (N x C x H x W) and keep it in memory or on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from vitfer.data.manifest import OnError
from vitfer.errors import ConfigError, DataError, SourceError
from vitfer.labels import label_set
from vitfer.files import atomic_write, safe_load
from vitfer.preprocess import decode_face
from vitfer.runtime.sources import MAX_PIXELS, decode_image_bytes

log = logging.getLogger(__name__)


@dataclass
class FaceCache:
    """All faces of a manifest, decoded: ``images`` is uint8 N x C x H x W, ``labels`` int64 canonical ids."""

    images: torch.Tensor
    labels: torch.Tensor
    split: np.ndarray
    source: np.ndarray
    items: np.ndarray
    class_names: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)
    #: optional N x C target distributions over ``class_names`` (e.g. FER+ votes); trains instead of ``labels``
    soft: torch.Tensor | None = None
    #: optional N x K targets of an auxiliary head (a zero row: no target for that face); never saved to disk
    aux: torch.Tensor | None = None
    aux_names: tuple[str, ...] = ()
    #: how whole photos were cropped (``FaceCrops.key()``; empty: they were not) and the photos where the detector
    #: found no face (kept whole)
    cropping: str = ""
    no_face: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split."""
        return np.flatnonzero(self.split == split)

    def subset(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of one split."""
        rows = torch.from_numpy(self.indices(split))
        return self.images[rows], self.labels[rows]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_write(path) as partial:
            torch.save({"images": self.images, "labels": self.labels, "split": self.split.tolist(),
                        "source": self.source.tolist(), "items": self.items.tolist(),
                        "class_names": list(self.class_names), "skipped": self.skipped, "soft": self.soft,
                        "cropping": self.cropping, "no_face": self.no_face}, partial)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FaceCache:
        data = safe_load(Path(path), DataError)
        if not isinstance(data, dict) or not {"images", "labels", "split", "items", "class_names"} <= set(data):
            raise DataError(f"{path} is not a vitfer face cache")
        return cls(data["images"], data["labels"], np.array(data["split"], dtype=object),
                   np.array(data["source"], dtype=object), np.array(data["items"], dtype=object),
                   tuple(data["class_names"]), list(data["skipped"]), data.get("soft"),
                   cropping=data.get("cropping", ""), no_face=list(data.get("no_face", [])))


@dataclass(frozen=True)
class FaceCrops:
    """Crop each whole photo to its largest face as ``predict`` does (``runtime.crop.LargestFace``): the detector
    (yunet, ssd, haar, mtcnn) and the margin of the model's input contract. Photos with no face stay whole."""

    detector: str = "yunet"
    margin: float = 0.2
    detector_model: str | None = None

    def key(self) -> str:
        """What the cache fingerprint and the model file record."""
        return f"{self.detector}|{self.margin}|{self.detector_model or ''}"


def face_crops(detector: str | None, margin: float) -> FaceCrops | None:
    """The cropping of whole photos a data setting asks for (None for '' or 'none': faces are crops already)."""
    if not detector or detector == "none":
        return None
    from vitfer.runtime.detectors import DETECTORS

    if detector not in DETECTORS:
        raise ConfigError(f"unknown detector {detector!r}; use one of {', '.join(DETECTORS)}, or none")
    return FaceCrops(detector, margin)


class NoFace(Exception):
    """The detector found no face; carries the whole photo's decoded face."""

    def __init__(self, face: np.ndarray) -> None:
        super().__init__("no face found")
        self.face = face


def decode_image(path: str, size: int, channels: int, box: tuple[int, int, int, int] | None = None,
                 find_face: Callable[[np.ndarray], np.ndarray | None] | None = None) -> np.ndarray:
    """Read one image file as uint8 ``size`` x ``size`` x C (the input contract's ``decode_face``); raise DataError
    naming the file. ``box`` (x1, y1, x2, y2, e.g. AffectNet's face box) is cropped first, as a square; else
    ``find_face`` (BGR photo -> face crop or None) crops it, and raises ``NoFace`` where it finds none."""
    try:
        image = decode_image_bytes(Path(path).read_bytes(), path, MAX_PIXELS, cv2.IMREAD_UNCHANGED)
    except (SourceError, OSError) as err:  # a bomb refused from its header, a corrupt file, an unreadable one
        raise DataError(f"cannot decode image: {err}" if isinstance(err, OSError) else str(err)) from None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DataError(f"unsupported pixel type {image.dtype} (8- or 16-bit images only): {path}")
    if box is not None:
        from vitfer.runtime.crop import crop_face
        from vitfer.runtime.detectors import FaceBox

        image = crop_face(image, FaceBox(*box), margin=0.0)
        if image.size == 0:
            raise DataError(f"face box {box} lies outside the image: {path}")
    elif find_face is not None:
        face = find_face(as_bgr(image))
        if face is None:
            raise NoFace(decode_face(image, size, grayscale=channels == 1))
        image = face
    return decode_face(image, size, grayscale=channels == 1)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey, grey+alpha or BGRA pixels as the BGR detectors take."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _decode_pixels(pixels: str, size: int, channels: int) -> np.ndarray:
    image = np.array(pixels.split(), dtype=np.uint8).reshape(48, 48)
    return decode_face(image, size, grayscale=channels == 1)


def face_boxes(manifest: pd.DataFrame) -> list[tuple[int, int, int, int] | None]:
    """Each item's face box (columns x1, y1, x2, y2, e.g. AffectNet's), or None where it has none."""
    if "x1" not in manifest.columns:
        return [None] * len(manifest)
    coords = manifest[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)
    return [None if np.isnan(row).any() else tuple(int(v) for v in row) for row in coords]


def manifest_fingerprint(manifest: pd.DataFrame, size: int, channels: int, crops: FaceCrops | None = None) -> str:
    """A short hash of the manifest and decode settings (the face cropping too), used to name cache files."""
    digest = hashlib.sha1(f"{size}|{channels}".encode() + (f"|{crops.key()}".encode() if crops else b""))
    for column in ("item", "label", "split", *(["x1", "y1", "x2", "y2"] if "x1" in manifest.columns else [])):
        digest.update("\n".join(map(str, manifest[column])).encode())
    if "target" in manifest.columns:
        digest.update(np.ascontiguousarray(np.stack(manifest["target"].to_numpy()), dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def build_cache(
    manifest: pd.DataFrame,
    size: int = 48,
    channels: int = 1,
    num_classes: int = 7,
    on_error: OnError = "raise",
    threads: int | None = None,
    crops: FaceCrops | None = None,
) -> FaceCache:
    """Decode all faces of a manifest with a thread pool (OpenCV releases the GIL); with ``crops``, image files
    without a face box are cropped to their largest face first (pixel rows are crops already)."""
    if manifest.empty:
        raise DataError("the manifest is empty: no faces to decode")
    names = label_set(num_classes)
    unknown = sorted(set(manifest["label"]) - set(names))
    if unknown:
        raise DataError(f"labels {unknown} are not in the {num_classes}-class set; merge with num_classes=8 or drop them")
    has_pixels = "pixels" in manifest.columns
    boxes = face_boxes(manifest)
    local = threading.local()  # one detector per decoding thread
    no_face: list[str] = []

    def find_face(image: np.ndarray) -> np.ndarray | None:
        if not hasattr(local, "finder"):
            from vitfer.runtime.crop import LargestFace

            local.finder = LargestFace(crops.detector, crops.margin, crops.detector_model)
        return local.finder(image)

    def decode(row: int) -> np.ndarray | str:
        try:
            if has_pixels and isinstance(manifest["pixels"].iat[row], str):
                return _decode_pixels(manifest["pixels"].iat[row], size, channels)
            return decode_image(manifest["item"].iat[row], size, channels, boxes[row],
                                find_face if crops is not None else None)
        except NoFace as whole:
            no_face.append(str(manifest["item"].iat[row]))
            return whole.face
        except DataError as err:
            return str(err)

    with ThreadPoolExecutor(threads or os.cpu_count() or 2) as pool:
        decoded = list(tqdm(pool.map(decode, range(len(manifest)), chunksize=256), total=len(manifest),
                            desc="decoding faces", unit="face", disable=None, leave=False))  # a bar on terminals
    errors = [d for d in decoded if isinstance(d, str)]
    if errors and on_error == "raise":
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DataError(errors[0] + more)
    keep = np.array([not isinstance(d, str) for d in decoded])
    images = np.stack([d for d in decoded if not isinstance(d, str)]) if keep.any() else None
    if images is None:
        raise DataError("no image in the manifest could be decoded")
    kept = manifest[keep]
    labels = torch.tensor([names.index(lab) for lab in kept["label"]], dtype=torch.int64)
    soft = None
    if "target" in kept.columns:
        soft = torch.from_numpy(np.stack(kept["target"].to_numpy()).astype(np.float32))
        if soft.shape[1] == len(names) + 1:  # an 8-class distribution for a 7-class model: fold contempt away
            soft = soft[:, : len(names)]
            soft = soft / soft.sum(dim=1, keepdim=True).clamp(min=1e-12)
        if soft.shape[1] != len(names):
            raise DataError(f"soft targets have {soft.shape[1]} classes; the {num_classes}-class set needs "
                            f"{len(names)}")
    return FaceCache(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=labels,
        split=kept["split"].to_numpy(dtype=object),
        source=kept["source"].to_numpy(dtype=object),
        items=kept["item"].to_numpy(dtype=object),
        class_names=names,
        skipped=list(manifest.attrs.get("skipped", [])) + errors,
        soft=soft,
        cropping=crops.key() if crops is not None else "",
        no_face=sorted(no_face),
    )


def cached(manifest: pd.DataFrame, cache_dir: str | Path | None, size: int = 48, channels: int = 1,
           num_classes: int = 7, on_error: OnError = "raise", crops: FaceCrops | None = None) -> FaceCache:
    """Load the cache for this manifest from ``cache_dir`` if present, else build and save it."""
    if cache_dir is None:
        return build_cache(manifest, size, channels, num_classes, on_error, crops=crops)
    path = Path(cache_dir) / f"faces-{manifest_fingerprint(manifest, size, channels, crops)}-{num_classes}.pt"
    with node_lock(path.with_name(path.name + ".lock")):  # the processes of one machine decode once, not each
        if path.exists():
            try:
                return FaceCache.load(path)
            except DataError as err:
                log.warning("%s; decoding the faces again", err)
        cache = build_cache(manifest, size, channels, num_classes, on_error, crops=crops)
        cache.save(path)
        return cache


@contextmanager
def node_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` among this machine's processes (where the OS offers ``fcntl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; each process may decode for itself
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pixel_hashes(images: torch.Tensor) -> list[str]:
    """A hash per image of its pixels, to find exact duplicates across splits."""
    array = images.numpy()
    return [hashlib.blake2b(array[i].tobytes(), digest_size=12).hexdigest() for i in range(len(array))]
