"""Weight files into a backbone: a .tflite MobileNetV2, a vitfer model file, or a timm/torch state dict.

One loader for ``build_model(..., pretrained=PATH)`` and for ``timm.create_model("vitfer_*", pretrained=True,
pretrained_cfg_overlay=dict(file=PATH))`` alike. A position embedding learnt at another input size is resampled
(timm's bicubic resampling), never dropped in silence; tensors that fit nowhere are named in a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn

from vitfer.hub import local_or_named
from vitfer.errors import DownloadError, WeightImportError
from vitfer.files import safe_load
from vitfer.models.hybrid import ConvStemViT
from vitfer.models.tflite_import import mobilenetv2_from_tflite

log = logging.getLogger(__name__)


def pretrained_file(value: str | Path) -> Path:
    """A weights reference as a local file: the file given, or one fetched by name (see ``vitfer.hub``)."""
    try:
        return local_or_named(value, "model.pretrained (--pretrained)")
    except DownloadError as err:
        raise WeightImportError(str(err)) from None


def _load_tflite(backbone: nn.Module, path: Path) -> None:
    mobilenet = mobilenetv2_from_tflite(path)
    if isinstance(backbone, ConvStemViT):
        backbone.load_stem_from(mobilenet)
        return
    if getattr(backbone, "pretrained_cfg", {}).get("architecture") == "vitfer_mobilenetv2":
        own = backbone.state_dict()
        # every layer but the classifier (and a stem conv of another channel count: grey input)
        state = {k: v for k, v in mobilenet.state_dict().items()
                 if not k.startswith("classifier") and k in own and own[k].shape == v.shape}
        backbone.load_state_dict(state, strict=False)
        # the TFLite weights carry batch-norm folded in: freeze those layers, so that batch statistics of faces do
        # not replace them. Left learning, they renormalise the pretrained features at the first step and the
        # ReLU6s saturate: the network predicted one class for every face.
        backbone.blocks = freeze_batch_norm_2d(backbone.blocks)
        backbone.bn2 = freeze_batch_norm_2d(backbone.bn2)
        if "conv_stem.weight" in state:
            backbone.bn1 = freeze_batch_norm_2d(backbone.bn1)
        return
    raise WeightImportError(f"{path} holds MobileNetV2 weights; they fit hybrid_vit_* and mobilenetv2 only")


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a vitfer model file, Lightning checkpoint, .safetensors or torch state dict, with the
    backbone's own names (``backbone.`` and ``model.`` prefixes removed; a vitfer head kept as ``head.``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # noqa: BLE001 - a broken header raises the library's own types
            raise WeightImportError(f"cannot read {path}: {str(err).splitlines()[0] or type(err).__name__}") from None
    else:
        state = safe_load(path, WeightImportError)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightImportError(f"{path} holds no state dict")
    state = {k.removeprefix("model."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):  # a vitfer model: its backbone, and its main head
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith(("backbone.", "head."))}
    return state


def resample_position_embedding(weights: torch.Tensor, target: torch.Tensor, backbone: nn.Module) -> torch.Tensor:
    """A position embedding learnt on another input size, resampled to this model's token grid (timm's bicubic
    resampling; the class and distillation tokens' own entries are kept)."""
    from timm.layers import resample_abs_pos_embed

    vit = getattr(backbone, "vit", backbone)  # DeiT-distilled wraps its ViT
    prefix = int(getattr(vit, "num_prefix_tokens", 1 if hasattr(vit, "cls_token") else 0))
    side = int(round((target.shape[1] - prefix) ** 0.5))
    old_side = int(round((weights.shape[1] - prefix) ** 0.5))
    if side * side + prefix != target.shape[1] or old_side * old_side + prefix != weights.shape[1]:
        return weights  # not a square grid: left out, and said so
    return resample_abs_pos_embed(weights, new_size=[side, side], old_size=[old_side, old_side],
                                  num_prefix_tokens=prefix)


def load_weights(backbone: nn.Module, path: str | Path, prefix: str = "") -> nn.Module:
    """Load a weights file (or a name vitfer downloads, e.g. ``mobilenet_v2_1.0_224_quant.tflite``) into
    ``backbone``; ``prefix`` is where the backbone sits in the module whose names a warning should use."""
    path = pretrained_file(path)
    if path.suffix == ".tflite":
        _load_tflite(backbone, path)
        return backbone
    state = _state_dict(path)
    own = backbone.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    for key, value in state.items():
        if key.endswith("pos_embed") and value.ndim == 3 and value.shape != own[key].shape:
            state[key] = resample_position_embedding(value, own[key], backbone)
    usable = {k: v for k, v in state.items() if v.shape == own[k].shape}
    if not usable:
        raise WeightImportError(f"no tensor in {path} fits this model")
    left_out = sorted(prefix + k for k in set(state) - set(usable))
    if left_out:
        log.warning("%d tensor(s) of %s do not fit and were left out: %s", len(left_out), path,
                    ", ".join(left_out[:5]) + (" ..." if len(left_out) > 5 else ""))
    backbone.load_state_dict(usable, strict=False)
    return backbone
