"""Sharpness per split: catches a training split that is blurrier than the faces a model will be tested on.

A model trained on blurred faces sees unfamiliar high frequencies in sharp ones and loses accuracy; the
remedy vitfer offers is to low-pass every input outside training by the blur that matches the splits.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vitfer.data.cache import FaceCache

MISMATCH_RATIO = 4.0  # median sharpness of validation over train above which the splits count as mismatched


def laplacian_variance(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Sharpness of each uint8 face (N x C x H x W): variance of its Laplacian on the first channel."""
    array = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return np.array([cv2.Laplacian(face[0], cv2.CV_64F).var() for face in array])


def split_sharpness(cache: FaceCache, per_split: int = 2000, seed: int = 0) -> dict[str, float]:
    """Median Laplacian variance of (a seeded sample of) each split."""
    rng = np.random.default_rng(seed)
    result = {}
    for split in sorted(set(cache.split)):
        rows = cache.indices(split)
        rows = rng.choice(rows, min(per_split, len(rows)), replace=False)
        result[split] = float(np.median(laplacian_variance(cache.images[np.sort(rows)])))
    return result


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of uint8 faces (N x C x H x W), sigma in pixels of the given size."""
    if sigma <= 0:
        return images
    out = np.empty_like(images)
    for i, face in enumerate(images):
        for c, plane in enumerate(face):
            out[i, c] = cv2.GaussianBlur(plane, (0, 0), sigma)
    return out


def matching_blur_sigma(blurred: torch.Tensor, sharp: torch.Tensor, max_sigma: float = 8.0) -> float:
    """The Gaussian sigma (pixels) that makes ``sharp`` faces as sharp as ``blurred`` ones (median Laplacian
    variance), found by bisection. Uses no labels."""
    target = float(np.median(laplacian_variance(blurred)))
    array = sharp.numpy()
    if float(np.median(laplacian_variance(array))) <= target:
        return 0.0
    low, high = 0.0, max_sigma
    for _ in range(20):
        mid = (low + high) / 2
        if float(np.median(laplacian_variance(blur(array, mid)))) > target:
            low = mid
        else:
            high = mid
    return round((low + high) / 2, 2)


def sharpness_mismatch(cache: FaceCache, sample: int = 2000, seed: int = 0) -> float:
    """The blur sigma (in cache pixels) that validation faces need to look like training faces, or 0.0 when the
    two splits are about equally sharp (ratio of medians below MISMATCH_RATIO)."""
    if len(cache.indices("val")) == 0 or len(cache.indices("train")) == 0:
        return 0.0
    medians = split_sharpness(cache, sample, seed)
    if medians["val"] < MISMATCH_RATIO * max(medians["train"], 1e-9):
        return 0.0
    rng = np.random.default_rng(seed)
    pick = {s: np.sort(rng.choice(cache.indices(s), min(sample, len(cache.indices(s))), replace=False))
            for s in ("train", "val")}
    return matching_blur_sigma(cache.images[pick["train"]], cache.images[pick["val"]])
