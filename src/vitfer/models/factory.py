"""One factory for every model family: ``build_model(name, num_classes, ...)``."""

from __future__ import annotations

import difflib
import logging
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn

from vitfer.models.cct import CCT
from vitfer.hub import DownloadError, local_or_named
from vitfer.models.checkpoint import safe_load
from vitfer.models.cnn import SmallCNN, timm_cnn
from vitfer.models.distilled import DistilledTokens, TwoTokenHead
from vitfer.models.hybrid import ConvStemViT
from vitfer.models.tflite_import import WeightImportError, mobilenetv2_from_tflite
from vitfer.errors import VitferError

log = logging.getLogger(__name__)

#: vitfer's own model names -> short description (timm names are accepted as well).
VITFER_MODELS: dict[str, str] = {
    "hybrid_vit_tiny": "MobileNetV2 stem to stride 16 (ImageNet-pretrainable) + 4 ViT blocks, dim 192",
    "hybrid_vit_small": "MobileNetV2 stem + 8 ViT blocks, dim 256",
    "cct_tiny": "CCT-6/3x2: 2-layer convolutional tokenizer + 6 transformer blocks (dim 192) + sequence pooling",
    "cnn3": "3-block CNN (32/64/128 filters, BN, dropout, 512 dense)",
    "resnet18": "ResNet-18 (timm) with a 48-px stem",
    "vgg16": "VGG-16 with batch-norm (timm vgg16_bn) for small inputs",
    "mobilenetv2": "MobileNetV2 1.0 (timm mobilenetv2_100) with a 48-px stem",
}
CCT_SIZES = {"cct_tiny": dict(embed_dim=192, depth=6, num_heads=3, mlp_ratio=2.0, tokenizer_layers=2)}
HYBRID_SIZES = {"hybrid_vit_tiny": dict(embed_dim=192, depth=4, num_heads=3, stem_blocks=5),
                "hybrid_vit_small": dict(embed_dim=256, depth=8, num_heads=4)}
DEFAULT_IMG_SIZE = {"cct_tiny": 48, "cnn3": 48, "resnet18": 48, "vgg16": 48, "mobilenetv2": 48,
                    "hybrid_vit_tiny": 64, "hybrid_vit_small": 64}


class ModelError(VitferError, ValueError):
    """A model that cannot be built as asked."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model's architecture (stored in every checkpoint)."""

    name: str = "hybrid_vit_tiny"
    num_classes: int = 7
    img_size: int | None = None
    in_chans: int = 3
    head: str = "linear"  # linear | mlp
    head_dropout: float = 0.3
    drop_path_rate: float = 0.1
    kwargs: dict = field(default_factory=dict)
    aux_classes: int = 0  # > 0: a second head trained on another label set (e.g. FER+ votes) beside the first
    tta: str = "none"  # "flip": every input is classified with its mirror image too, inside the model (any backend)

    def resolved_img_size(self) -> int:
        return self.img_size or DEFAULT_IMG_SIZE.get(self.name, 112)

    def to_dict(self) -> dict:
        return asdict(self)


class FERNet(nn.Module):
    """A feature extractor (``backbone``, pooled features) followed by a classification ``head``.

    An optional ``aux_head`` reads the same features for a second label set while training; ``forward``
    returns the main head only, so inference and export never see it.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, config: ModelConfig,
                 aux_head: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aux_head = aux_head
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; with ``config.tta == 'flip'``, the log of the probabilities averaged over the two views."""
        if self.config.tta == "none":
            return self.head(self.backbone(x))
        return self.view_logits(x).softmax(dim=-1).mean(dim=0).log()

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The head's logits per test-time view, V x B x classes (V = 1 without TTA), in one batch."""
        views = [x] if self.config.tta == "none" else [x, x.flip(-1)]
        logits = self.head(self.backbone(torch.cat(views) if len(views) > 1 else x))
        return logits.reshape(len(views), -1, logits.shape[-1])

    def _variant(self, head: nn.Module, aux_head: nn.Module | None, **config: object) -> FERNet:
        """A FERNet sharing this one's backbone (and weights), with other heads and config fields."""
        return FERNet(self.backbone, head, ModelConfig(**{**self.config.to_dict(), **config}), aux_head)

    def plain(self) -> FERNet:
        """The same weights without built-in test-time augmentation (for methods that need one view)."""
        return self if self.config.tta == "none" else self._variant(self.head, self.aux_head, tta="none")

    def forward_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of the main head and of the auxiliary head (None without one)."""
        features = self.backbone(x)
        return self.head(features), (self.aux_head(features) if self.aux_head is not None else None)

    def split_aux(self) -> FERNet:
        """A plain model for the auxiliary label set: the same backbone with the auxiliary head as its head."""
        if self.aux_head is None:
            raise ModelError("this model has no auxiliary head")
        return self._variant(self.aux_head, None, num_classes=self.config.aux_classes, aux_classes=0)

    def drop_aux(self) -> FERNet:
        """A plain model of the main head alone."""
        return self._variant(self.head, None, aux_classes=0)


def make_head(kind: str, in_features: int, num_classes: int, dropout: float) -> nn.Module:
    """``linear``, or ``mlp``: dropout -> Linear(d, 256) -> ReLU -> dropout -> Linear(256, classes)."""
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, 256), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(256, num_classes))
    raise ModelError(f"unknown head {kind!r}; use linear or mlp")


def available_models(pattern: str | None = None) -> list[str]:
    """vitfer's own names first, then timm's ViT/DeiT names (filtered by a wildcard pattern)."""
    own = sorted(VITFER_MODELS)
    timm_names = timm.list_models(pattern or "vit_*") + ([] if pattern else timm.list_models("deit*"))
    if pattern:
        import fnmatch
        own = [n for n in own if fnmatch.fnmatch(n, pattern)]
    return own + timm_names


def _check_name(name: str) -> None:
    if name in VITFER_MODELS or name.startswith(("hf:", "hf-mae:")):
        return
    if timm.is_model(name.split(".")[0]):
        return
    close = difflib.get_close_matches(name, list(VITFER_MODELS) + timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `vitfer models`"
    raise ModelError(f"unknown model {name!r}{hint}")


def _backbone(config: ModelConfig, pretrained: bool) -> nn.Module:
    name, size = config.name, config.resolved_img_size()
    if name in HYBRID_SIZES:
        params = {**HYBRID_SIZES[name], **config.kwargs}
        return ConvStemViT(0, img_size=size, drop_path_rate=config.drop_path_rate, in_chans=config.in_chans, **params)
    if name in CCT_SIZES:
        params = {**CCT_SIZES[name], **config.kwargs}
        return CCT(0, img_size=size, in_chans=config.in_chans, drop_path_rate=config.drop_path_rate, **params)
    if name == "cnn3":
        return SmallCNN(0, in_chans=config.in_chans, **config.kwargs)
    if name in ("resnet18", "mobilenetv2", "vgg16"):
        timm_name = {"resnet18": "resnet18", "mobilenetv2": "mobilenetv2_100", "vgg16": "vgg16_bn"}[name]
        return timm_cnn(timm_name, in_chans=config.in_chans, pretrained=pretrained, **config.kwargs)
    if name.startswith(("hf:", "hf-mae:")):
        from vitfer.models.huggingface import hf_backbone

        backbone = hf_backbone(name, size, pretrained, config.kwargs.get("hf_config"))
        # the encoder's own config goes into every checkpoint, so loading one needs no hub
        config.kwargs["hf_config"] = json.loads(backbone.encoder.config.to_json_string())
        return backbone
    extra = {"img_size": size} if "vit" in name or "deit" in name else {}
    model = timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=config.in_chans,
                              drop_path_rate=config.drop_path_rate, **extra, **config.kwargs)
    return DistilledTokens(model) if "distilled" in name else model


def _feature_dim(backbone: nn.Module, config: ModelConfig) -> int:
    with torch.no_grad():
        was_training = backbone.training
        backbone.eval()
        size = config.resolved_img_size()
        features = backbone(torch.zeros(1, config.in_chans, size, size))
        backbone.train(was_training)
    return features.shape[-1]


def pretrained_file(value: str | Path) -> Path:
    """``model.pretrained`` as a local file: the file given, or one fetched by name (see ``vitfer.hub``)."""
    try:
        return local_or_named(value, "model.pretrained (--pretrained)")
    except DownloadError as err:
        raise WeightImportError(str(err)) from None


def load_pretrained(model: FERNet, path: str | Path) -> FERNet:
    """Load weights from a file: a .tflite MobileNetV2, a vitfer checkpoint, or a timm/torch state dict file.

    A path that does not exist may name a file vitfer downloads (``vitfer.hub``), e.g.
    ``mobilenet_v2_1.0_224_quant.tflite``: it is fetched once (SHA-256 checked) and cached.
    """
    path = pretrained_file(path)
    if path.suffix == ".tflite":
        mobilenet = mobilenetv2_from_tflite(path)
        if isinstance(model.backbone, ConvStemViT):
            model.backbone.load_stem_from(mobilenet)
            return model
        if model.config.name == "mobilenetv2":
            state = {k: v for k, v in mobilenet.state_dict().items()
                     if not k.startswith(("classifier", "conv_stem"))}
            model.backbone.load_state_dict(state, strict=False)
            # the TFLite weights carry batch-norm folded in: freeze those layers so batch statistics of faces
            # do not replace them (the new 48-px conv_stem keeps an ordinary, learning batch-norm)
            model.backbone.blocks = freeze_batch_norm_2d(model.backbone.blocks)
            model.backbone.bn2 = freeze_batch_norm_2d(model.backbone.bn2)
            return model
        raise WeightImportError(f"{path} holds MobileNetV2 weights; they fit hybrid_vit_* and mobilenetv2 only")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = safe_load(path, WeightImportError)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("model."): v for k, v in state.items()}
    own = model.state_dict()
    if not any(k.startswith("backbone.") for k in state):  # a bare backbone state dict, e.g. timm weights
        state = {f"backbone.{k}": v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k.startswith("backbone.") and k in own}
    for key, value in state.items():
        if key.endswith("pos_embed") and value.ndim == 3 and value.shape != own[key].shape:
            state[key] = resample_position_embedding(value, own[key], model.backbone)
    usable = {k: v for k, v in state.items() if v.shape == own[k].shape}
    if not usable:
        raise WeightImportError(f"no tensor in {path} fits model {model.config.name!r}")
    left_out = sorted(set(state) - set(usable))
    if left_out:
        log.warning("%d tensor(s) of %s do not fit %s and were left out: %s", len(left_out), path,
                    model.config.name, ", ".join(left_out[:5]) + (" ..." if len(left_out) > 5 else ""))
    model.load_state_dict(usable, strict=False)
    return model


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


def build_model(name: str = "hybrid_vit_tiny", num_classes: int = 7, pretrained: bool | str | None = None,
                img_size: int | None = None, head: str = "linear", freeze: str = "none",
                **options) -> FERNet:
    """Build any model vitfer knows.

    >>> model = build_model("cct_tiny", num_classes=7, img_size=48)              # doctest: +SKIP
    >>> model = build_model("hybrid_vit_tiny", pretrained="mobilenet_v2_1.0_224_quant.tflite")  # doctest: +SKIP

    ``pretrained``: None/False = random init; True = download by name (needs internet);
    a path = local weights (.tflite MobileNetV2, vitfer checkpoint, .safetensors/.pth state dict).
    ``freeze``: none | head | blocks:N | full (see ``vitfer.models.freeze``).
    """
    config = ModelConfig(name=name, num_classes=num_classes, img_size=img_size, head=head, **options)
    return build_from_config(config, pretrained=pretrained, freeze=freeze)


def build_from_config(config: ModelConfig, pretrained: bool | str | None = None, freeze: str = "none") -> FERNet:
    """Build a model from a ModelConfig (as stored inside checkpoints)."""
    _check_name(config.name)
    if config.tta not in ("none", "flip"):
        raise ModelError(f"unknown built-in test-time augmentation {config.tta!r}; use none or flip")
    from_hub = pretrained is True
    if from_hub and config.name in ("cnn3", *HYBRID_SIZES, *CCT_SIZES):
        raise WeightImportError(f"{config.name} has no weights to download; pass a local file "
                                f"(e.g. the MobileNetV2 .tflite for hybrid models)")
    try:
        backbone = _backbone(config, pretrained=from_hub)
    except (RuntimeError, OSError) as err:
        if from_hub:
            raise WeightImportError(f"could not fetch pretrained weights for {config.name!r}: {err}; "
                                    f"pass a local file with --pretrained PATH") from err
        raise
    features = _feature_dim(backbone, config)
    if isinstance(backbone, DistilledTokens):
        if config.head != "linear" or config.aux_classes:
            raise ModelError(f"{config.name} has a linear head per token; it takes neither head={config.head!r} "
                             "nor an auxiliary head")
        head = TwoTokenHead(features, config.num_classes)
    else:
        head = make_head(config.head, features, config.num_classes, config.head_dropout)
    aux = make_head(config.head, features, config.aux_classes, config.head_dropout) if config.aux_classes else None
    model = FERNet(backbone, head, config, aux)
    if isinstance(pretrained, (str, Path)) and str(pretrained):
        load_pretrained(model, pretrained)
    from vitfer.models.freeze import apply_freeze

    apply_freeze(model, freeze)
    return model
