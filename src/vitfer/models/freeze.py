"""Freezing modes: none/full (train all), head, blocks:N (embeddings + first N blocks), and gradual unfreezing."""

from __future__ import annotations

from torch import nn
from vitfer.errors import ConfigError


def backbone_stages(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    """(embedding modules, ordered list of blocks) of a FERNet backbone, whatever its family."""
    backbone = model.backbone
    if hasattr(backbone, "embedding_modules"):  # Hugging Face encoders: blocks live inside the wrapped model
        return backbone.embedding_modules(), list(backbone.blocks)
    for attr in ("blocks", "layers", "stages"):
        blocks = getattr(backbone, attr, None)
        if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) > 0:
            embed = [m for n, m in backbone.named_children() if n not in (attr, "norm", "head", "fc_norm", "head_drop")]
            return embed, list(blocks)
    for attr in ("layer1", "layer2", "layer3", "layer4"):
        if hasattr(backbone, attr):
            blocks = [getattr(backbone, a) for a in ("layer1", "layer2", "layer3", "layer4")]
            embed = [getattr(backbone, a) for a in ("conv1", "bn1") if hasattr(backbone, a)]
            return embed, blocks
    children = list(backbone.children())
    return [], children


def set_trainable(modules: list[nn.Module], trainable: bool) -> None:
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad = trainable


def apply_freeze(model: nn.Module, mode: str) -> None:
    """Apply a freeze mode to a FERNet in place."""
    mode = (mode or "none").strip().lower()
    set_trainable([model], True)
    if mode in ("none", "full"):
        return
    if mode == "head":
        set_trainable([model.backbone], False)
        return
    if mode.startswith("blocks:"):
        try:
            count = int(mode.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"freeze mode {mode!r}: use blocks:N with a whole number N") from None
        embed, blocks = backbone_stages(model)
        if count > len(blocks):
            raise ConfigError(f"freeze mode {mode!r}: the model has only {len(blocks)} blocks")
        set_trainable(embed + blocks[:count], False)
        for parameter in model.backbone.parameters(recurse=False):  # position embedding, [CLS] token
            parameter.requires_grad = False
        return
    raise ConfigError(f"unknown freeze mode {mode!r}; use none, full, head or blocks:N")


def gradual_unfreeze_mode(epoch: int, total_blocks: int, every: int) -> str:
    """Freeze mode at ``epoch`` for gradual unfreezing: head only, then one more top block every ``every`` epochs."""
    unfrozen = epoch // max(every, 1)
    if unfrozen == 0:
        return "head"
    frozen = max(total_blocks - unfrozen, 0)
    return "none" if frozen == 0 else f"blocks:{frozen}"
