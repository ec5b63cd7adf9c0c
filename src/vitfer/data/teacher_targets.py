"""Offline soft targets from trained teachers, joined to the faces of a training recipe (``data.teacher_targets``).

A teacher's probabilities for every training face are computed once (``vitfer.training.distill.
write_teacher_targets``) and saved beside the data, so a student trains at its own speed instead of running an
ensemble of teachers at every step. Each face's target becomes ``(1 - alpha)`` of its (smoothed) label plus
``alpha`` of the teachers' distribution: knowledge distillation at temperature 1, as cross-entropy against the mix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vitfer.data.cache import FaceCache
from vitfer.errors import DataError


def read_teacher_targets(path: str | Path) -> dict:
    """The saved targets: ``items``, ``probabilities`` (N x classes), ``classes``, ``teachers``."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            targets = {key: saved[key] for key in ("items", "probabilities", "classes", "teachers")}
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"data.teacher_targets {path}: not a teacher-targets file ({error})") from None
    return targets


def join_teacher_targets(cache: FaceCache, path: str | Path, alpha: float, label_smoothing: float = 0.0) -> FaceCache:
    """Set ``cache.soft``: on the train split, the label mixed with the teachers' probabilities; elsewhere the
    label alone (validation and test figures never see a teacher)."""
    targets = read_teacher_targets(path)
    if tuple(targets["classes"]) != tuple(cache.class_names):
        raise DataError(f"data.teacher_targets {path} has classes {list(targets['classes'])}, the recipe learns "
                        f"{list(cache.class_names)}")
    where = {str(item): row for row, item in enumerate(targets["items"])}
    k = len(cache.class_names)
    labels = torch.nn.functional.one_hot(cache.labels, k).float()
    soft = labels.clone()
    train = cache.indices("train")
    rows = [where.get(str(cache.items[i])) for i in train]
    missing = sum(row is None for row in rows)
    if missing:
        first = next(str(cache.items[i]) for i, row in zip(train, rows) if row is None)
        raise DataError(f"data.teacher_targets {path} has no target for {missing} of {len(train)} training faces "
                        f"(e.g. {first}); write it for this data set")
    teacher = torch.from_numpy(targets["probabilities"][np.array(rows, dtype=int)].astype(np.float32))
    smoothed = labels[train] * (1 - label_smoothing) + label_smoothing / k
    soft[train] = (1 - alpha) * smoothed + alpha * teacher
    cache.soft = soft
    return cache
