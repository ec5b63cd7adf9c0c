"""Batched tensor augmentation of training faces (kornia); the input contract itself is ``vitfer.preprocess``."""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

from vitfer.config import AugmentConfig


def build_pipeline(config: AugmentConfig, size: int) -> nn.Module:
    """A kornia pipeline for ``size`` x ``size`` float inputs in [0, 1]."""
    steps: list[nn.Module] = []
    if config.resized_crop > 0:
        steps.append(K.RandomResizedCrop((size, size), scale=(0.7, 1.0), p=config.resized_crop))
    if config.hflip > 0:
        steps.append(K.RandomHorizontalFlip(p=config.hflip))
    if config.rotation > 0 or config.translate > 0 or tuple(config.scale) != (1.0, 1.0):
        steps.append(K.RandomAffine(degrees=config.rotation, translate=(config.translate, config.translate),
                                    scale=tuple(config.scale), padding_mode="reflection", p=1.0))
    if config.brightness > 0 or config.contrast > 0:
        steps.append(K.ColorJiggle(brightness=config.brightness, contrast=config.contrast, p=1.0))
    if config.blur > 0:
        steps.append(K.RandomGaussianBlur((3, 3), sigma=tuple(config.blur_sigma), p=config.blur))
    if config.erasing > 0:
        steps.append(K.RandomErasing(scale=(0.02, 0.2), p=config.erasing))
    return nn.Sequential(*steps)


class BatchAugment(nn.Module):
    """Augment a float batch in [0, 1] and clamp it back into range."""

    def __init__(self, config: AugmentConfig, size: int) -> None:
        super().__init__()
        self.pipeline = build_pipeline(config, size)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.pipeline) == 0:
            return x
        return self.pipeline(x).clamp_(0.0, 1.0)
