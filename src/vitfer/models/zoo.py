"""vitfer's own architectures in timm's registry, each with a default pretrained config.

So ``timm.create_model("vitfer_hybrid_vit_tiny", num_classes=7)``, ``timm.data.resolve_data_config`` and
``pretrained_cfg_overlay=dict(file=PATH)`` work for them as for any timm model, and vitfer's factory asks the
registry (input size, normalisation, description, weights) instead of keeping tables of its own. Registered
names carry a ``vitfer_`` prefix: timm already has a ``resnet18`` and a ``vgg16``, vitfer's have 48-px stems.

Weights: ``pretrained=True`` loads the config's ``file`` (a local path, or a name ``vitfer.hub`` downloads once,
SHA-256 checked); ``pretrained_cfg_overlay=dict(file=PATH)`` any file ``vitfer.models.weights`` reads (.tflite
MobileNetV2, a vitfer model file, a state dict). CNN baselines with ``pretrained=True`` and no file take timm's
ImageNet body.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model, resolve_pretrained_cfg
from torch import nn

from vitfer.models.cct import CCT
from vitfer.models.cnn import SmallCNN, small_input_stem
from vitfer.models.hybrid import ConvStemViT
from vitfer.errors import WeightImportError
from vitfer.models.weights import load_weights

PREFIX = "vitfer_"
TFLITE_MOBILENET = "mobilenet_v2_1.0_224_quant.tflite"  # a name vitfer.hub knows how to download
HALF = (0.5, 0.5, 0.5)  # [-1, 1] inputs, as the TFLite MobileNetV2 was trained on


def _cfg(description: str, size: int, **kwargs: Any) -> dict[str, Any]:
    return {"description": description, "input_size": (3, size, size), "num_classes": 7, "mean": HALF,
            "std": HALF, "interpolation": "bilinear", "crop_pct": 1.0, "classifier": "head",
            "license": "apache-2.0", **kwargs}


default_cfgs = generate_default_cfgs({
    "vitfer_hybrid_vit_tiny.tflite_in1k": _cfg(
        "MobileNetV2 stem to stride 16 (ImageNet-pretrainable) + 4 ViT blocks, dim 192", 64,
        fixed_input_size=True, file=TFLITE_MOBILENET, first_conv="stem.0"),
    "vitfer_hybrid_vit_small.tflite_in1k": _cfg(
        "MobileNetV2 stem + 8 ViT blocks, dim 256", 64, fixed_input_size=True, file=TFLITE_MOBILENET,
        first_conv="stem.0"),
    "vitfer_cct_tiny": _cfg(
        "CCT-6/3x2: 2-layer convolutional tokenizer + 6 transformer blocks (dim 192) + sequence pooling", 48,
        fixed_input_size=True, first_conv="tokenizer.0"),
    "vitfer_cnn3": _cfg("3-block CNN (32/64/128 filters, BN, dropout, 512 dense)", 48, first_conv="features.0"),
    "vitfer_resnet18": _cfg("ResNet-18 (timm) with a 48-px stem", 48, mean=IMAGENET_DEFAULT_MEAN,
                            std=IMAGENET_DEFAULT_STD, first_conv="conv1", classifier="fc"),
    "vitfer_vgg16": _cfg("VGG-16 with batch-norm (timm vgg16_bn) for small inputs", 48, mean=IMAGENET_DEFAULT_MEAN,
                         std=IMAGENET_DEFAULT_STD, first_conv="features.0", classifier="head.fc"),
    "vitfer_mobilenetv2.tflite_in1k": _cfg(
        "MobileNetV2 1.0 (timm mobilenetv2_100) with a 48-px stem", 48, file=TFLITE_MOBILENET,
        first_conv="conv_stem", classifier="classifier"),
})


def _weights(model: nn.Module, variant: str, cfg: dict, pretrained: bool, inner_pretrained: bool = False) -> nn.Module:
    """Attach the resolved pretrained config and, when asked, load its ``file`` with vitfer's loader."""
    model.pretrained_cfg = model.default_cfg = cfg
    if pretrained and cfg.get("file"):
        load_weights(model, cfg["file"])
    elif pretrained and not inner_pretrained:
        raise WeightImportError(f"{variant.removeprefix(PREFIX)} has no weights to download; pass a local file "
                                f"(--pretrained PATH, or pretrained_cfg_overlay=dict(file=PATH) in timm)")
    return model


def _own(cls: type[nn.Module], variant: str, pretrained: bool, pretrained_cfg: Any = None,
         pretrained_cfg_overlay: dict | None = None, **kwargs: Any) -> nn.Module:
    """A vitfer architecture built the timm way (defaults such as img_size from the pretrained config, which
    ``build_model_with_cfg`` resolves and attaches)."""
    model = build_model_with_cfg(cls, variant, pretrained=False, pretrained_cfg=pretrained_cfg,
                                 pretrained_cfg_overlay=pretrained_cfg_overlay, **kwargs)
    return _weights(model, variant, model.pretrained_cfg, pretrained)


def _small_stem(timm_name: str, variant: str, pretrained: bool, pretrained_cfg: Any = None,
                pretrained_cfg_overlay: dict | None = None, **kwargs: Any) -> nn.Module:
    """A timm ImageNet CNN with a stem for 48-px faces; ``pretrained`` without a file takes timm's weights."""
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg=pretrained_cfg,
                                 pretrained_cfg_overlay=pretrained_cfg_overlay).to_dict()
    from_timm = pretrained and not cfg.get("file")
    kwargs.pop("drop_path_rate", None)  # not every one takes it; none of vitfer's recipes sets it
    kwargs.setdefault("num_classes", 7)
    model = small_input_stem(timm.create_model(timm_name, pretrained=from_timm, **kwargs), timm_name)
    return _weights(model, variant, cfg, pretrained, inner_pretrained=from_timm)


@register_model
def vitfer_hybrid_vit_tiny(pretrained: bool = False, **kwargs: Any) -> ConvStemViT:
    """MobileNetV2 stem to stride 16 + 4 ViT blocks (dim 192, 3 heads): the shipped default's architecture."""
    return _own(ConvStemViT, "vitfer_hybrid_vit_tiny", pretrained,
                **{"embed_dim": 192, "depth": 4, "num_heads": 3, "stem_blocks": 5, **kwargs})


@register_model
def vitfer_hybrid_vit_small(pretrained: bool = False, **kwargs: Any) -> ConvStemViT:
    """MobileNetV2 stem to stride 16 + 8 ViT blocks (dim 256, 4 heads)."""
    return _own(ConvStemViT, "vitfer_hybrid_vit_small", pretrained,
                **{"embed_dim": 256, "depth": 8, "num_heads": 4, **kwargs})


@register_model
def vitfer_cct_tiny(pretrained: bool = False, **kwargs: Any) -> CCT:
    """CCT-6/3x2 (Hassani et al. 2021)."""
    return _own(CCT, "vitfer_cct_tiny", pretrained,
                **{"embed_dim": 192, "depth": 6, "num_heads": 3, "mlp_ratio": 2.0, "tokenizer_layers": 2, **kwargs})


@register_model
def vitfer_cnn3(pretrained: bool = False, **kwargs: Any) -> SmallCNN:
    """The classic 3-block FER CNN."""
    return _own(SmallCNN, "vitfer_cnn3", pretrained, kwargs_filter=("drop_path_rate",), **kwargs)


@register_model
def vitfer_resnet18(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet-18 with a stride-1 3x3 stem and no max-pool."""
    return _small_stem("resnet18", "vitfer_resnet18", pretrained, **kwargs)


@register_model
def vitfer_vgg16(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-16 with batch-norm."""
    return _small_stem("vgg16_bn", "vitfer_vgg16", pretrained, **kwargs)


@register_model
def vitfer_mobilenetv2(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """MobileNetV2 1.0 with a stride-1 stem."""
    return _small_stem("mobilenetv2_100", "vitfer_mobilenetv2", pretrained, **kwargs)


@lru_cache(maxsize=1)
def own_models() -> dict[str, str]:
    """vitfer's own model names (without the prefix) -> their description."""
    from timm.models import get_pretrained_cfg

    names = sorted({n.split(".")[0] for n in timm.list_models(PREFIX + "*")})
    return {n.removeprefix(PREFIX): get_pretrained_cfg(n).description for n in names}


def timm_name(name: str) -> str:
    """The name timm knows a vitfer model by (``cnn3`` -> ``vitfer_cnn3``); other names as they are."""
    return PREFIX + name if timm.is_model(PREFIX + name) else name
