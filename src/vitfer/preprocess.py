"""The input contract: how a face image becomes a model's input tensor. It travels inside every checkpoint.

Every path to a model goes through these steps, in this order, so that training, evaluation, ``predict``,
``serve`` and the ONNX backend cannot disagree:

1. ``decode_face``: a face crop (any size, BGR colour or grey) -> grey (or RGB) -> ``decode_size`` pixels
   (OpenCV area interpolation when shrinking, bilinear when growing). The face cache decodes training faces
   with the same function, so a 400-px face from a photo reaches the model with no more detail than a
   48-px FER2013 face had.
2. ``vitfer.models.inputs.model_input`` (PyTorch): uint8 faces (N x C x d x d) -> float [0, 1] -> bilinear
   resize to ``img_size`` -> channels as the model wants -> ``(x - mean) / std``. Exported ONNX files carry
   this step inside their graph, so the runtime (no torch) feeds them the uint8 faces of step 1.

Only the data layer adds augmentation between those two steps, for the training split. This module imports
no torch: the runtime floor uses it as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

#: the image files vitfer reads (folders, globs, data sets)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm"})


def resize_face(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a face to ``size`` x ``size``: area interpolation when shrinking, bilinear when growing."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = max(image.shape[0], image.shape[1]) > size
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return resized if resized.ndim == image.ndim else resized[:, :, None]


def decode_face(image: np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """A face crop as OpenCV gives it (H x W grey, or H x W x 3 BGR) -> uint8 ``size`` x ``size`` x C."""
    if image.dtype != np.uint8:
        raise ValueError(f"face images must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:  # BGRA (a PNG with transparency)
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 2 and not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"a face image must be H x W grey or H x W x 3 BGR, got shape {image.shape}")
    if image.ndim == 2:
        face = image if grayscale else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif grayscale:
        face = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    else:
        face = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    face = resize_face(face, size)
    return face[:, :, None] if face.ndim == 2 else face


@dataclass
class Preprocess:
    """The input contract of one model (sizes, channels, normalisation, crop margin); travels inside every model
    file, checkpoint and ONNX file."""

    img_size: int = 112
    in_channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    grayscale: bool = True  # faces are converted to grayscale before the model sees them
    crop_margin: float = 0.2  # margin around a detected face box, as a fraction of its side
    decode_size: int = 48  # every face is first brought to this size, as the training faces were
    lowpass_sigma: float = 0.0  # a Gaussian blur (pixels of a 48-px face) outside training; 0 in shipped models.
    # Only for models trained on faces blurrier than the ones they will see; see vitfer.data.sharpness

    def decode(self, crops: list[np.ndarray]) -> np.ndarray:
        """Face crops of any size (BGR or grey arrays) -> uint8 N x C x decode_size x decode_size: what every
        vitfer ONNX file takes as its input (the rest of the contract runs inside the graph)."""
        if not crops:
            channels = 1 if self.grayscale else 3
            return np.zeros((0, channels, self.decode_size, self.decode_size), dtype=np.uint8)
        faces = np.stack([decode_face(c, self.decode_size, self.grayscale) for c in crops])
        return np.ascontiguousarray(faces.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocess:
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)
