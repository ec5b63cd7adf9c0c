"""Where a model looks: attention rollout for ViTs, Grad-CAM (pytorch-grad-cam) for CNNs and ViTs."""

from __future__ import annotations

import math
from contextlib import contextmanager

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention
from torch import nn

from vitfer.models.checkpoint import LoadedModel
from vitfer.errors import ExplainError
from vitfer.models.inputs import model_input

#: class-activation methods of pytorch-grad-cam, by the name ``--method`` takes (one call signature for all)
CAM_METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
               "eigencam": "EigenCAM", "scorecam": "ScoreCAM"}
METHODS = ("rollout", *CAM_METHODS)


def attention_modules(model: nn.Module) -> list[Attention]:
    return [m for m in model.modules() if isinstance(m, Attention)]


def prefix_tokens(backbone: nn.Module) -> int:
    """Tokens before the patch grid ([CLS], registers, distillation) of a timm ViT or vitfer's hybrid."""
    return int(getattr(backbone, "num_prefix_tokens", 1))


@contextmanager
def recorded_attention(model: nn.Module):
    """Collect every block's attention matrix (B x heads x N x N) during a forward pass."""
    modules = attention_modules(model)
    if not modules:
        raise ExplainError(f"{type(model).__name__} has no timm attention blocks; attention rollout needs a ViT "
                           "(timm ViT/DeiT or hybrid_vit_*); use --method gradcam")
    seen: list[torch.Tensor] = []
    fused = [m.fused_attn for m in modules]
    hooks = [m.attn_drop.register_forward_hook(lambda _m, _i, out: seen.append(out.detach())) for m in modules]
    for m in modules:
        m.fused_attn = False  # the explicit softmax path, so attn_drop sees the attention weights
    try:
        yield seen
    finally:
        for m, was in zip(modules, fused):
            m.fused_attn = was
        for hook in hooks:
            hook.remove()


def rollout(attentions: list[torch.Tensor], prefix: int, head_fusion: str = "mean") -> torch.Tensor:
    """Abnar & Zuidema's rollout: fuse heads, add the residual, renormalise, multiply through the layers.

    Returns the [CLS] token's relevance over the patch grid, B x g x g, scaled to [0, 1] per image.
    """
    result = None
    for attn in attentions:
        fused = attn.mean(1) if head_fusion == "mean" else attn.amax(1)
        fused = fused + torch.eye(fused.shape[-1])
        fused = fused / fused.sum(-1, keepdim=True)
        result = fused if result is None else fused @ result
    relevance = result[:, 0, prefix:]
    grid = int(math.isqrt(relevance.shape[-1]))
    if grid * grid != relevance.shape[-1]:
        raise ExplainError(f"{relevance.shape[-1]} patch tokens do not form a square grid")
    relevance = relevance.reshape(-1, grid, grid)
    low = relevance.flatten(1).min(1).values.view(-1, 1, 1)
    high = relevance.flatten(1).max(1).values.view(-1, 1, 1)
    return (relevance - low) / (high - low).clamp_min(1e-12)


def gradcam_target(model: nn.Module) -> tuple[nn.Module, object | None]:
    """The layer Grad-CAM reads, and the reshape that turns ViT tokens into a grid (None for CNNs)."""
    backbone = model.backbone if hasattr(model, "backbone") else model
    blocks = getattr(backbone, "blocks", None)
    if blocks is not None and (attention_modules(backbone) or hasattr(backbone, "attention_maps")):
        prefix = prefix_tokens(backbone)
        last = blocks[-1]
        layer = last.norm1 if hasattr(last, "norm1") else last.layernorm_before  # timm | Hugging Face

        def tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
            patches = tokens[:, prefix:, :]
            grid = int(math.isqrt(patches.shape[1]))
            return patches.reshape(len(tokens), grid, grid, -1).permute(0, 3, 1, 2)

        return layer, tokens_to_grid
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ExplainError(f"found neither ViT blocks nor convolutions in {type(backbone).__name__}")
    return convs[-1], None


class Explanation:
    """One explanation method, as pytorch-grad-cam's methods are: built by name, called the same way.

    ``__call__(model, x, classes)`` takes a one-view model, its input batch and the class each map explains, and
    returns relevance maps (N x h x w, any grid) in [0, 1].
    """

    name: str = ""

    def __call__(self, model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        raise NotImplementedError


class AttentionRollout(Explanation):
    """Abnar & Zuidema's attention rollout over every transformer block (timm ViTs, the hybrid, Hugging Face)."""

    name = "rollout"

    @torch.no_grad()
    def __call__(self, model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        if hasattr(model.backbone, "attention_maps"):  # Hugging Face ViT / ViT-MAE
            return rollout(model.backbone.attention_maps(x), prefix=1)
        with recorded_attention(model) as attentions:
            model(x)
        return rollout(attentions, prefix_tokens(model.backbone))


class ClassActivationMap(Explanation):
    """A class-activation method of pytorch-grad-cam (Grad-CAM, Grad-CAM++, ...) on the layer ``gradcam_target``
    picks, with ViT tokens reshaped to their grid."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, model: nn.Module, x: torch.Tensor, classes: list[int]) -> torch.Tensor:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        layer, reshape = gradcam_target(model)
        with getattr(pytorch_grad_cam, CAM_METHODS[self.name])(model=model, target_layers=[layer],
                                                               reshape_transform=reshape) as cam:
            return torch.from_numpy(cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes]))


def explanation(method: str) -> Explanation:
    """The explanation method of this name (``METHODS``)."""
    if method == "rollout":
        return AttentionRollout()
    if method in CAM_METHODS:
        return ClassActivationMap(method)
    raise ExplainError(f"unknown method {method!r}; use {', '.join(METHODS)}")


def explain_batch(loaded: LoadedModel, faces: torch.Tensor, method: str = "rollout",
                  target: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (N x C x H x W) -> (maps N x H x W in [0, 1], probabilities N x classes).

    The maps explain ``target`` (a class index) or, when None, each face's predicted class.
    """
    explain = explanation(method)
    model = loaded.model.plain().eval()  # one view: maps and activations line up with the input
    x = model_input(loaded.preprocess, faces)
    with torch.no_grad():
        probs = model(x).softmax(-1)
    classes = probs.argmax(-1).tolist() if target is None else [target] * len(x)
    maps = explain(model, x, classes)
    maps = F.interpolate(maps[:, None].float(), size=tuple(faces.shape[-2:]), mode="bilinear", align_corners=False)
    return maps[:, 0].clamp(0, 1).numpy(), probs.numpy()


def overlay(face: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A face (H x W or H x W x 3, uint8) with a JET heat map blended over it, as BGR uint8."""
    base = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 or face.shape[-1] == 1 else face
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    if colour.shape[:2] != base.shape[:2]:
        colour = cv2.resize(colour, (base.shape[1], base.shape[0]))
    return cv2.addWeighted(base, 1 - alpha, colour, alpha, 0)
