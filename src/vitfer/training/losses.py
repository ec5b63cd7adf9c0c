"""Losses that take hard labels or soft (mixup / smoothed) targets: cross-entropy, class-weighted, focal."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from vitfer.errors import ConfigError


class FERLoss(nn.Module):
    """Cross-entropy or focal loss with optional class weights and label smoothing.

    ``weight`` scales each class (like ``F.cross_entropy(weight=...)``, normalised by the targets'
    total weight); ``gamma`` > 0 turns it into focal loss, ``-alpha (1-p)^gamma * log p``. ``multi_target``: soft
    targets name the accepted classes, and the loss is ``-log max p`` over them (FER+'s multi-target protocol).
    A zero target row (no label for that face) adds nothing.
    """

    def __init__(self, num_classes: int, kind: str = "ce", gamma: float = 2.0, weight: torch.Tensor | None = None,
                 label_smoothing: float = 0.0, multi_target: bool = False, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha if kind == "focal" else 1.0  # focal loss's constant factor (RetinaNet's 0.25)
        if kind not in ("ce", "focal"):
            raise ConfigError(f"unknown loss {kind!r}; use ce or focal")
        self.multi_target = multi_target
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.gamma = gamma if kind == "focal" else 0.0
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight.float() if weight is not None else torch.ones(num_classes))

    def soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            target = F.one_hot(target, self.num_classes).float()
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return target

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = self.soft_targets(target)
        log_p = F.log_softmax(logits.float(), dim=-1)
        if self.multi_target:  # FER+ multi-target: right when the most likely of the accepted classes is likely
            accepted = torch.where(target > 0, log_p, torch.full_like(log_p, -torch.inf)).max(dim=-1).values
            weight = (target * self.weight).sum(dim=-1)
            labelled = weight > 0
            return -(accepted[labelled] * weight[labelled]).sum() / weight.sum().clamp(min=1e-12)
        per_class = -target * log_p
        if self.gamma:
            per_class = per_class * (1 - log_p.exp()).pow(self.gamma)
        weighted = (per_class * self.weight).sum(dim=-1)
        return self.alpha * weighted.sum() / (target * self.weight).sum().clamp(min=1e-12)
