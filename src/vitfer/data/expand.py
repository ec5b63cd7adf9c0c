"""Offline expansion of the training split to N images per class (never touches val/test)."""

from __future__ import annotations

import numpy as np
import torch

from vitfer.data.cache import FaceCache
from vitfer.config import AugmentConfig
from vitfer.data.transforms import BatchAugment


def expand_training_split(cache: FaceCache, per_class: int, augment: AugmentConfig | None = None,
                          seed: int = 0, batch_size: int = 512, copies: int = 0) -> FaceCache:
    """Return a cache whose train split holds ``per_class`` faces of each class (originals + augmented copies),
    or with ``copies`` > 0 each training face and that many augmented copies of it.

    Only rows already in the train split are ever copied; each new row's ``items`` entry names its parent.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    augmenter = BatchAugment(augment or AugmentConfig(), cache.images.shape[-1])
    train = cache.indices("train")
    new_images, new_labels, parents = [], [], []
    for cls in range(len(cache.class_names)):
        members = train[cache.labels.numpy()[train] == cls]
        missing = len(members) * copies if copies > 0 else per_class - len(members)
        if len(members) == 0 or missing <= 0:
            continue
        chosen = np.repeat(members, copies) if copies > 0 else rng.choice(members, size=missing, replace=True)
        for start in range(0, missing, batch_size):
            rows = torch.from_numpy(chosen[start:start + batch_size])
            batch = cache.images[rows].float().div(255)
            augmented = augmenter(batch)
            new_images.append(augmented.mul(255).round().to(torch.uint8))
            new_labels.append(cache.labels[rows])
            parents += [f"augmented:{cache.items[i]}" for i in rows.tolist()]
    if not new_images:
        return cache
    count = len(parents)
    return FaceCache(
        images=torch.cat([cache.images, *new_images]),
        labels=torch.cat([cache.labels, *new_labels]),
        split=np.concatenate([cache.split, np.full(count, "train", dtype=object)]),
        source=np.concatenate([cache.source, np.full(count, "augmented", dtype=object)]),
        items=np.concatenate([cache.items, np.array(parents, dtype=object)]),
        class_names=cache.class_names,
        skipped=cache.skipped,
    )
