"""DeiT's distillation token (Touvron et al. 2021) inside vitfer's FERNet: the backbone hands both tokens to a
two-token head; at inference the two heads' logits are averaged, as DeiT does. Training with a teacher
(``train.teacher``) fits the distillation head to the teacher's predicted labels (hard distillation)."""

from __future__ import annotations

import torch
from torch import nn


class DistilledTokens(nn.Module):
    """A timm distilled ViT (``deit_*_distilled_*``) returning [class token, distillation token] features."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit
        self.num_features = 2 * vit.num_features

    @property
    def blocks(self) -> nn.Sequential:
        return self.vit.blocks

    def embedding_modules(self) -> list[nn.Module]:
        return [self.vit.patch_embed]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(x)
        return torch.cat([tokens[:, 0], tokens[:, 1]], dim=-1)


class TwoTokenHead(nn.Module):
    """One linear head per token; ``forward`` averages their logits, ``both`` returns each."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.dim = features // 2
        self.head = nn.Linear(self.dim, num_classes)
        self.head_dist = nn.Linear(self.dim, num_classes)

    def both(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(features[:, :self.dim]), self.head_dist(features[:, self.dim:])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        cls, dist = self.both(features)
        return (cls + dist) / 2
