"""Hugging Face ViT and ViT-MAE encoders as vitfer backbones (optional extra: ``pip install 'vitfer[hf]'``).

Names: ``hf:<hub id or local folder>`` (ViTModel) and ``hf-mae:<hub id or local folder>`` (ViTMAEModel encoder,
no masking). ``hf:tiny`` / ``hf-mae:tiny`` build a small random model, for tests and from-scratch runs.
"""

from __future__ import annotations

import torch
from torch import nn

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, patch_size=8)


class HFEncoder(nn.Module):
    """Wraps a transformers ViT/ViT-MAE encoder: pixels -> [CLS] feature (B x hidden)."""

    def __init__(self, encoder: nn.Module, mae: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.mae = mae
        self.blocks = encoder.encoder.layer  # for freezing and explanations
        self.num_features = encoder.config.hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mae:
            noise = torch.arange(self.encoder.embeddings.num_patches, device=x.device, dtype=x.dtype)
            out = self.encoder(pixel_values=x, noise=noise.expand(len(x), -1), interpolate_pos_encoding=True)
        else:
            out = self.encoder(pixel_values=x, interpolate_pos_encoding=True)
        return out.last_hidden_state[:, 0]


def hf_backbone(name: str, img_size: int, pretrained: bool) -> nn.Module:
    try:
        from transformers import ViTConfig, ViTMAEConfig, ViTMAEModel, ViTModel
    except ImportError as err:
        raise ImportError("Hugging Face models need transformers: pip install 'vitfer[hf]'") from err
    mae = name.startswith("hf-mae:")
    ident = name.split(":", 1)[1]
    model_cls, config_cls = (ViTMAEModel, ViTMAEConfig) if mae else (ViTModel, ViTConfig)
    extra = {"mask_ratio": 0.0} if mae else {}
    if ident == "tiny" or not pretrained:
        if ident == "tiny":
            config = config_cls(image_size=img_size, **TINY, **extra)
        else:
            config = config_cls.from_pretrained(ident, image_size=img_size, **extra)
        encoder = model_cls(config, **({} if mae else {"add_pooling_layer": False}))
    else:
        encoder = model_cls.from_pretrained(ident, **extra, **({} if mae else {"add_pooling_layer": False}))
    return HFEncoder(encoder, mae)
