"""CCT, the Compact Convolutional Transformer (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact
Transformers"): a ViT recipe for small data sets. A few 3x3 convolutions replace the patch embedding (locality
and a cheap inductive bias), and attention-weighted sequence pooling replaces the [CLS] token."""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from vitfer.models.cnn import square_size


class ConvTokenizer(nn.Sequential):
    """``layers`` x (3x3 conv, ReLU, 3x3 max-pool stride 2): each halves the side; the last gives ``embed_dim``."""

    def __init__(self, in_chans: int, embed_dim: int, layers: int = 2, width: int = 64) -> None:
        modules: list[nn.Module] = []
        channels = in_chans
        for i in range(layers):
            out = embed_dim if i == layers - 1 else width
            modules += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                        nn.MaxPool2d(3, stride=2, padding=1)]
            channels = out
        super().__init__(*modules)


class CCT(nn.Module):
    """Convolutional tokenizer -> learned position embedding -> transformer blocks -> sequence pooling."""

    def __init__(self, num_classes: int = 0, img_size: int | tuple[int, int] = 48, in_chans: int = 3,
                 embed_dim: int = 192,
                 depth: int = 6, num_heads: int = 3, mlp_ratio: float = 2.0, tokenizer_layers: int = 2,
                 drop_path_rate: float = 0.1) -> None:
        super().__init__()
        img_size = square_size(img_size)
        self.tokenizer = ConvTokenizer(in_chans, embed_dim, tokenizer_layers)
        with torch.no_grad():
            tokens = self.tokenizer(torch.zeros(1, in_chans, img_size, img_size)).flatten(2).shape[-1]
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=r)
                                      for r in rates])
        self.norm = nn.LayerNorm(embed_dim)
        self.attention_pool = nn.Linear(embed_dim, 1)
        self.num_features = embed_dim
        self.num_prefix_tokens = 0  # no [CLS]: sequence pooling reads every token (explanations need to know)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.norm(self.blocks(tokens))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        weights = self.attention_pool(features).softmax(dim=1)  # B x N x 1: how much each token counts
        pooled = (weights * features).sum(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
