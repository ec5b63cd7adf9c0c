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
        # transformers 5 keeps the blocks in ``layers``, 4.x in ``encoder.layer``; for freezing and explanations
        self.blocks = encoder.layers if hasattr(encoder, "layers") else encoder.encoder.layer
        self.num_features = encoder.config.hidden_size

    def embedding_modules(self) -> list[nn.Module]:
        """What ``blocks:N`` freezes besides the first N blocks: patch and position embeddings, [CLS]."""
        return [self.encoder.embeddings]

    def encode(self, x: torch.Tensor, output_attentions: bool = False):
        if not self.mae:
            return self.encoder(pixel_values=x, interpolate_pos_encoding=True, output_attentions=output_attentions)
        patch = self.encoder.config.patch_size
        # An ordered "noise" keeps every patch in place (mask_ratio is 0): the MAE encoder as a plain ViT.
        noise = torch.arange((x.shape[-2] // patch) * (x.shape[-1] // patch), device=x.device, dtype=x.dtype)
        return self.encoder(pixel_values=x, noise=noise.expand(len(x), -1), interpolate_pos_encoding=True,
                            output_attentions=output_attentions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).last_hidden_state[:, 0]

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's attention (B x heads x N x N), [CLS] first; computed with the eager attention path."""
        previous = self.encoder.config._attn_implementation
        self._use_attention("eager")
        try:
            return list(self.encode(x, output_attentions=True).attentions)
        finally:
            self._use_attention(previous)

    def _use_attention(self, kind: str) -> None:
        if hasattr(self.encoder, "set_attn_implementation"):
            self.encoder.set_attn_implementation(kind)
        else:  # older transformers read the config at every forward
            self.encoder.config._attn_implementation = kind


def hf_backbone(name: str, img_size: int, pretrained: bool, stored_config: dict | None = None) -> HFEncoder:
    """The encoder by hub id or local folder; ``stored_config`` (kept in vitfer checkpoints) rebuilds it offline."""
    try:
        from transformers import ViTConfig, ViTMAEConfig, ViTMAEModel, ViTModel
    except ImportError as err:
        raise ImportError("Hugging Face models need transformers: pip install 'vitfer[hf]'") from err
    mae = name.startswith("hf-mae:")
    ident = name.split(":", 1)[1]
    model_cls, config_cls = (ViTMAEModel, ViTMAEConfig) if mae else (ViTModel, ViTConfig)
    extra = {"mask_ratio": 0.0} if mae else {}
    if stored_config is not None and not pretrained:
        encoder = model_cls(config_cls.from_dict(stored_config), **({} if mae else {"add_pooling_layer": False}))
    elif ident == "tiny" or not pretrained:
        if ident == "tiny":
            config = config_cls(image_size=img_size, **TINY, **extra)
        else:
            config = config_cls.from_pretrained(ident, image_size=img_size, **extra)
        encoder = model_cls(config, **({} if mae else {"add_pooling_layer": False}))
    else:
        encoder = model_cls.from_pretrained(ident, **extra, **({} if mae else {"add_pooling_layer": False}))
    return HFEncoder(encoder, mae)
