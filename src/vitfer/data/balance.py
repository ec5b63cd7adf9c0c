"""Class balancing on the training split only: class weights, over-/under-sampling, a weighted sampler."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import WeightedRandomSampler
from vitfer.errors import ConfigError


def class_weights(labels: np.ndarray | torch.Tensor, num_classes: int, power: float = 1.0) -> torch.Tensor:
    """'balanced' weights as scikit-learn computes them, n / (k * count), raised to ``power``; 0 for absent classes.

    ``power`` 0.5 (square-root balancing) lifts rare classes with less cost to overall accuracy than 1.
    """
    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels) ** power
    return torch.tensor(weights, dtype=torch.float32)


def oversample_minority(indices: np.ndarray, labels: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """Repeat the items of every class smaller than the largest by ``factor`` (capped at the largest count)."""
    if factor < 1:
        raise ConfigError(f"oversampling factor must be >= 1, got {factor}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels[indices], return_counts=True)
    largest = counts.max()
    out = [indices]
    for cls, count in zip(classes, counts):
        if count == largest:
            continue
        target = min(int(round(count * factor)), largest)
        members = indices[labels[indices] == cls]
        extra = target - count
        if extra > 0:
            out.append(rng.choice(members, size=extra, replace=extra > len(members)))
    return np.sort(np.concatenate(out))


def undersample_majority(indices: np.ndarray, labels: np.ndarray, limit: int, seed: int = 0,
                         fraction: float = 0.0) -> np.ndarray:
    """Keep at most ``limit`` randomly chosen items of every class; with ``fraction`` > 0 instead, keep that
    fraction of every majority class (one with more items than the mean per class) and all of the others."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels[indices], return_counts=True)
    kept = []
    for cls, count in zip(classes, counts):
        members = indices[labels[indices] == cls]
        keep = (int(round(count * fraction)) if count > counts.mean() else count) if fraction > 0 else min(count, limit)
        kept.append(rng.choice(members, size=keep, replace=False) if keep < count else members)
    return np.sort(np.concatenate(kept))


def weighted_sampler(labels: np.ndarray | torch.Tensor, num_samples: int | None = None,
                     seed: int = 0) -> WeightedRandomSampler:
    """A sampler that draws every class equally often in expectation."""
    labels = torch.as_tensor(np.asarray(labels))
    counts = torch.bincount(labels).float()
    weights = (1.0 / counts.clamp(min=1))[labels]
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights.double(), num_samples or len(labels), replacement=True, generator=generator)
