"""One factory for every model family: ``build_model(name, num_classes, ...)``."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import timm
import torch
from torch import nn

from vitfer.errors import ModelError, WeightImportError
from vitfer.models.distilled import DistilledTokens, TwoTokenHead
from vitfer.models.weights import load_weights
from vitfer.models.zoo import own_models, timm_name

DEFAULT_IMG_SIZE = 112  # models without a fixed input size of their own (timm ViTs are resized to this)


def default_img_size(name: str) -> int:
    """A model's input side: its registered config's for vitfer's own models, else ``DEFAULT_IMG_SIZE``."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name(name)) if name in own_models() else None
    return cfg.input_size[-1] if cfg is not None else DEFAULT_IMG_SIZE


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
        return self.img_size or default_img_size(self.name)

    def to_dict(self) -> dict:
        return asdict(self)


#: architecture settings a model file may pass on to its family (timm's or vitfer's own); anything else (a
#: checkpoint_path that would make timm open another file, say) is refused
MODEL_KWARGS = {"depth", "embed_dim", "num_heads", "mlp_ratio", "patch_size", "stem_blocks", "tokenizer_layers",
                "qkv_bias", "drop_rate", "attn_drop_rate", "proj_drop_rate", "pos_drop_rate", "class_token",
                "global_pool", "reg_tokens", "no_embed_class", "init_values", "width", "widths", "channels"}
#: bounds of a model file's sizes: far beyond any real model, far below an allocation that fells the machine
SIZE_BOUNDS = {"img_size": (8, 1024), "decode_size": (8, 1024), "num_classes": (2, 1000), "aux_classes": (0, 1000)}


def _plain(value, depth: int = 0) -> bool:
    """Numbers, flags, strings, None, and lists or mappings of them (two levels at most)."""
    if value is None or isinstance(value, (int, float, bool, str)):
        return True
    if depth < 2 and isinstance(value, (list, tuple)):
        return all(_plain(item, depth + 1) for item in value)
    if depth < 2 and isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def checked_model_config(meta, path) -> ModelConfig:
    """A model file's architecture, checked against the allow-lists and bounds above before anything is built."""
    values = dict(meta.model_config)
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelError(f"{path}: unknown model setting(s) {', '.join(unknown)} in its description")
    extra = dict(values.get("kwargs") or {})
    hf_config = extra.pop("hf_config", {})  # a Hugging Face encoder's own config: plain values, read by HF alone
    if not isinstance(hf_config, dict) or not all(_plain(v) for v in hf_config.values()):
        raise ModelError(f"{path}: its Hugging Face config must hold plain values only")
    if set(extra) - MODEL_KWARGS:
        bad = sorted(set(extra) - MODEL_KWARGS)
        raise ModelError(f"{path}: model settings {', '.join(map(str, bad))} are not architecture settings vitfer "
                         "passes on; refused")
    if any(not isinstance(v, (int, float, bool, str)) or (isinstance(v, str) and len(v) > 32) for v in extra.values()):
        raise ModelError(f"{path}: model settings must be numbers, flags or short names")
    sizes = [(key, values.get(key)) for key in ("img_size", "num_classes", "aux_classes")]
    sizes += [("img_size", meta.preprocess.img_size), ("decode_size", meta.preprocess.decode_size)]
    for key, value in sizes:
        low, high = SIZE_BOUNDS[key]
        if value is not None and (not isinstance(value, int) or not low <= value <= high):
            raise ModelError(f"{path}: {key} {value!r} is outside {low}-{high}; refused")
    if meta.preprocess.in_channels not in (1, 3):
        raise ModelError(f"{path}: in_channels {meta.preprocess.in_channels!r} must be 1 or 3")
    return ModelConfig(**values)


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
    own = sorted(own_models())
    timm_names = timm.list_models(pattern or "vit_*") + ([] if pattern else timm.list_models("deit*"))
    if pattern:
        import fnmatch
        own = [n for n in own if fnmatch.fnmatch(n, pattern)]
    return own + timm_names


def _check_name(name: str) -> None:
    if name in own_models() or name.startswith(("hf:", "hf-mae:")):
        return
    if timm.is_model(name.split(".")[0]):
        return
    close = difflib.get_close_matches(name, list(own_models()) + timm.list_models(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `vitfer models`"
    raise ModelError(f"unknown model {name!r}{hint}")


def _backbone(config: ModelConfig, pretrained: bool) -> nn.Module:
    name, size = config.name, config.resolved_img_size()
    if name.startswith(("hf:", "hf-mae:")):
        from vitfer.models.huggingface import hf_backbone

        backbone = hf_backbone(name, size, pretrained, config.kwargs.get("hf_config"))
        # the encoder's own config goes into every checkpoint, so loading one needs no hub
        config.kwargs["hf_config"] = json.loads(backbone.encoder.config.to_json_string())
        return backbone
    from timm.models import get_pretrained_cfg

    registered = timm_name(name)
    cfg = get_pretrained_cfg(registered.split(".")[0])
    fixed = bool(cfg and cfg.fixed_input_size) or "vit" in name or "deit" in name  # a position embedding
    extra = {"img_size": size} if fixed else {}
    model = timm.create_model(registered, pretrained=pretrained, num_classes=0, in_chans=config.in_chans,
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


def load_pretrained(model: FERNet, path: str | Path) -> FERNet:
    """Load a weights file into the model's backbone (see ``vitfer.models.weights``): a .tflite MobileNetV2, a
    vitfer model file, a timm/torch state dict, or a name vitfer downloads (``mobilenet_v2_1.0_224_quant.tflite``)."""
    load_weights(model.backbone, path, prefix="backbone.")
    return model


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
    try:
        backbone = _backbone(config, pretrained=from_hub)
    except WeightImportError:
        raise
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
