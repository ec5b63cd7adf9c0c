"""Batched tensor augmentation of training faces (kornia); the input contract itself is ``vitfer.preprocess``."""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn


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
