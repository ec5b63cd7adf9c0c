"""A hybrid ViT: an (ImageNet-pretrainable) MobileNetV2 stem tokenizes the face for transformer blocks."""

from __future__ import annotations

import timm
import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from vitfer.models.cnn import square_size


class ConvStemViT(nn.Module):
    """MobileNetV2 stages to stride 16 -> 1x1 projection -> [CLS] + position embedding -> ViT blocks."""

    def __init__(self, num_classes: int, img_size: int | tuple[int, int] = 112, embed_dim: int = 192, depth: int = 4,
                 num_heads: int = 3, mlp_ratio: float = 4.0, drop_path_rate: float = 0.1,
                 stem_blocks: int = 4, in_chans: int = 3) -> None:
        super().__init__()
        img_size = square_size(img_size)
        mobilenet = timm.create_model("mobilenetv2_100", pretrained=False, pad_type="same", in_chans=in_chans)
        self.stem = nn.Sequential(mobilenet.conv_stem, mobilenet.bn1, *mobilenet.blocks[:stem_blocks])
        with torch.no_grad():
            grid = self.stem(torch.zeros(1, in_chans, img_size, img_size))
        self.grid = grid.shape[-1]
        self.proj = nn.Conv2d(grid.shape[1], embed_dim, kernel_size=1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=r)
                                      for r in rates])
        self.norm = nn.LayerNorm(embed_dim)
        self.freeze_stem_bn = False  # set once pretrained weights arrive; see train()
        self.num_features = embed_dim
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def load_stem_from(self, mobilenet: nn.Module) -> None:
        """Copy pretrained weights of a timm mobilenetv2_100 into the stem."""
        source = nn.Sequential(mobilenet.conv_stem, mobilenet.bn1, *mobilenet.blocks[: len(self.stem) - 2])
        self.stem.load_state_dict(source.state_dict())
        self.freeze_stem_bn = True
        self.train(self.training)  # apply now: Lightning restores captured modes rather than calling train()

    def train(self, mode: bool = True) -> ConvStemViT:
        """Pretrained stems keep their batch-norm statistics (affine still learns).

        The TFLite weights come with batch norm folded into the convolutions; normalising with the statistics of
        48-px face batches instead would throw the pretrained features away at the first step.
        """
        super().train(mode)
        if mode and self.freeze_stem_bn:
            for module in self.stem.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.stem(x)).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # shape[0], not len(): stays dynamic in ONNX
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.norm(self.blocks(tokens))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features[:, 0]
        return pooled if pre_logits else self.head(pooled)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
