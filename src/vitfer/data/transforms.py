"""Batched tensor preprocessing (resize, channels, normalisation) and augmentation (kornia)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import kornia
import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Preprocess:
    """uint8 faces (B x C x H x W) -> normalised float model input; travels inside every checkpoint."""

    img_size: int = 112
    in_channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    grayscale: bool = True  # faces are converted to grayscale before the model sees them
    crop_margin: float = 0.2  # margin around a detected face box, as a fraction of its side
    lowpass_sigma: float = 0.0  # Gaussian blur (in pixels of a 48-px face) for inputs outside training, so sharp
    # faces match a blurred training set; see vitfer.data.sharpness

    def lowpass(self, x: torch.Tensor) -> torch.Tensor:
        """Blur float faces by ``lowpass_sigma`` (scaled to their size); identity when it is 0."""
        if self.lowpass_sigma <= 0:
            return x
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
        mean = torch.tensor(self.mean[: self.in_channels], dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std[: self.in_channels], dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

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


@dataclass
class AugmentConfig:
    """Per-sample random augmentation applied to whole batches at cache resolution."""

    hflip: float = 0.5
    rotation: float = 10.0  # degrees, +/-
    translate: float = 0.1  # fraction of the side
    scale: tuple[float, float] = (0.9, 1.1)  # zoom
    resized_crop: float = 0.0  # probability of a random resized crop (scale 0.7-1)
    brightness: float = 0.2
    contrast: float = 0.2
    blur: float = 0.0  # probability of a Gaussian blur
    erasing: float = 0.0  # probability of random erasing
    mixup: float = 0.0  # mixup alpha (0 = off)
    cutmix: float = 0.0  # cutmix alpha (0 = off)

    def build(self, size: int) -> nn.Module:
        """A kornia pipeline for ``size`` x ``size`` float inputs in [0, 1]."""
        steps: list[nn.Module] = []
        if self.resized_crop > 0:
            steps.append(K.RandomResizedCrop((size, size), scale=(0.7, 1.0), p=self.resized_crop))
        if self.hflip > 0:
            steps.append(K.RandomHorizontalFlip(p=self.hflip))
        if self.rotation > 0 or self.translate > 0 or tuple(self.scale) != (1.0, 1.0):
            steps.append(K.RandomAffine(degrees=self.rotation, translate=(self.translate, self.translate),
                                        scale=tuple(self.scale), padding_mode="reflection", p=1.0))
        if self.brightness > 0 or self.contrast > 0:
            steps.append(K.ColorJiggle(brightness=self.brightness, contrast=self.contrast, p=1.0))
        if self.blur > 0:
            steps.append(K.RandomGaussianBlur((3, 3), sigma=(0.1, 1.5), p=self.blur))
        if self.erasing > 0:
            steps.append(K.RandomErasing(scale=(0.02, 0.2), p=self.erasing))
        return nn.Sequential(*steps)


class BatchAugment(nn.Module):
    """Augment a float batch in [0, 1] and clamp it back into range."""

    def __init__(self, config: AugmentConfig, size: int) -> None:
        super().__init__()
        self.pipeline = config.build(size)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.pipeline) == 0:
            return x
        return self.pipeline(x).clamp_(0.0, 1.0)
