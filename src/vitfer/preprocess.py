"""The input contract: how a face image becomes a model's input tensor. It travels inside every checkpoint.

Every path to a model goes through these steps, in this order, so that training, evaluation, ``predict``,
``serve`` and the ONNX backend cannot disagree:

1. ``decode_face``: a face crop (any size, BGR colour or grey) -> grey (or RGB) -> ``decode_size`` pixels
   (OpenCV area interpolation when shrinking, bilinear when growing). The face cache decodes training faces
   with the same function, so a 400-px face from a photo reaches the model with no more detail than a
   48-px FER2013 face had.
2. ``Preprocess.__call__``: uint8 faces (N x C x d x d) -> float [0, 1] -> bilinear resize to ``img_size`` ->
   channels as the model wants -> ``(x - mean) / std``.

Only the data layer adds augmentation between those two steps, for the training split.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
import torch
import torch.nn.functional as F

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
    """uint8 faces (B x C x H x W) -> normalised float model input; travels inside every checkpoint."""

    img_size: int = 112
    in_channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    grayscale: bool = True  # faces are converted to grayscale before the model sees them
    crop_margin: float = 0.2  # margin around a detected face box, as a fraction of its side
    decode_size: int = 48  # every face is first brought to this size, as the training faces were
    lowpass_sigma: float = 0.0  # a Gaussian blur (pixels of a 48-px face) outside training; 0 in shipped models.
    # Only for models trained on faces blurrier than the ones they will see; see vitfer.data.sharpness

    def decode(self, crops: list[np.ndarray]) -> torch.Tensor:
        """Face crops of any size (BGR or grey arrays) -> uint8 N x C x decode_size x decode_size."""
        if not crops:
            channels = 1 if self.grayscale else 3
            return torch.zeros((0, channels, self.decode_size, self.decode_size), dtype=torch.uint8)
        faces = np.stack([decode_face(c, self.decode_size, self.grayscale) for c in crops])
        return torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()

    def lowpass(self, x: torch.Tensor) -> torch.Tensor:
        """Blur float faces by ``lowpass_sigma`` (scaled to their size); identity when it is 0."""
        if self.lowpass_sigma <= 0:
            return x
        import kornia

        sigma = self.lowpass_sigma * x.shape[-1] / 48.0
        kernel = 2 * math.ceil(3 * sigma) + 1
        return kornia.filters.gaussian_blur2d(x, (kernel, kernel), (sigma, sigma), border_type="reflect")

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float in [0, 1], gray or colour as the model was trained."""
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if self.grayscale and x.shape[1] == 3:
            x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        return x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """Float [0, 1] faces -> resized, channel-matched, normalised model input."""
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.img_size)
        if x.shape[1] == 1 and self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.in_channels == 1:
            x = x.mean(dim=1, keepdim=True)
        mean = torch.tensor(self.mean[: self.in_channels], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std[: self.in_channels], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def unfinish(self, x: torch.Tensor) -> torch.Tensor:
        """Model input -> float [0, 1] faces at the model's size (normalisation undone), e.g. for another model."""
        mean = torch.tensor(self.mean[: x.shape[1]], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std[: x.shape[1]], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return x * std + mean

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or float) faces -> model input, for evaluation and inference."""
        return self.finish(self.lowpass(self.to_float(images)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocess:
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)
