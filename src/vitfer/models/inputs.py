"""The PyTorch half of the input contract (``vitfer.preprocess``): uint8 faces -> the model's float input.

Training, evaluation and explanations call these functions; ``InputContract`` wraps them as a module so that
an ONNX export carries them inside its graph (the runtime then feeds uint8 faces and needs no torch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vitfer.preprocess import Preprocess


def to_float(preprocess: Preprocess, images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1], grey or colour as the model was trained."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    if preprocess.grayscale and x.shape[1] == 3:
        x = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return x


def lowpass(preprocess: Preprocess, x: torch.Tensor) -> torch.Tensor:
    """Blur float faces by ``lowpass_sigma`` (scaled to their size); identity when it is 0."""
    if preprocess.lowpass_sigma <= 0:
        return x
    import kornia

    sigma = preprocess.lowpass_sigma * x.shape[-1] / 48.0
    kernel = 2 * math.ceil(3 * sigma) + 1
    return kornia.filters.gaussian_blur2d(x, (kernel, kernel), (sigma, sigma), border_type="reflect")


def _stats(values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values[: x.shape[1]], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)


def finish(preprocess: Preprocess, x: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] faces -> resized, channel-matched, normalised model input."""
    size = preprocess.img_size
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    if x.shape[1] == 1 and preprocess.in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 3 and preprocess.in_channels == 1:
        x = x.mean(dim=1, keepdim=True)
    return (x - _stats(preprocess.mean, x)) / _stats(preprocess.std, x)


def unfinish(preprocess: Preprocess, x: torch.Tensor) -> torch.Tensor:
    """Model input -> float [0, 1] faces at the model's size (normalisation undone), e.g. for another model."""
    return x * _stats(preprocess.std, x) + _stats(preprocess.mean, x)


def model_input(preprocess: Preprocess, images: torch.Tensor) -> torch.Tensor:
    """uint8 (or float) faces -> model input, for evaluation and inference."""
    return finish(preprocess, lowpass(preprocess, to_float(preprocess, images)))


def faces_tensor(preprocess: Preprocess, crops: list) -> torch.Tensor:
    """Face crops (arrays of any size) -> uint8 N x C x d x d, decoded by the runtime's own function."""
    return torch.from_numpy(preprocess.decode(crops))


class InputContract(nn.Module):
    """uint8 faces at the decode size -> the model's input, as a module: what an exported graph starts with."""

    def __init__(self, preprocess: Preprocess) -> None:
        super().__init__()
        self.preprocess = preprocess

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return model_input(self.preprocess, faces)


def in_batches(fn, images: torch.Tensor, batch_size: int = 256, dim: int = 0, progress: str | None = None):
    """``fn`` over consecutive batches of ``images``, joined along ``dim``: the one loop that runs a model over a
    set of faces (evaluation, calibration, explanation maps). Tensors are joined with torch, arrays with NumPy;
    ``progress`` names a bar shown on terminals only."""
    import numpy as np
    from tqdm import tqdm

    starts = tqdm(range(0, len(images), batch_size), desc=progress, unit="batch", disable=None if progress else True,
                  leave=False)
    parts = [fn(images[start:start + batch_size]) for start in starts]
    if parts and isinstance(parts[0], torch.Tensor):
        return torch.cat(parts, dim=dim)
    return np.concatenate(parts, axis=dim)
