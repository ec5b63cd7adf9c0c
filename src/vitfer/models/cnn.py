"""CNN baselines sized for 48-px faces."""

from __future__ import annotations

import timm
from torch import nn


class SmallCNN(nn.Module):
    """The classic 3-block FER CNN: 32/64/128 filters, batch-norm, max-pool, dropout, a 512-unit dense layer."""

    def __init__(self, num_classes: int = 7, in_chans: int = 3, dropout: float = 0.25) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in (32, 64, 128):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2), nn.Dropout(dropout)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pre_logits = nn.Sequential(nn.Flatten(), nn.Linear(128, 512), nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.num_features = 512
        self.head = nn.Linear(512, num_classes) if num_classes else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(512, num_classes) if num_classes else nn.Identity()

    def forward(self, x):
        return self.head(self.pre_logits(self.pool(self.features(x))))


def square_size(img_size: int | tuple[int, int]) -> int:
    """The side of a square input; timm passes a model's fixed input size as (height, width)."""
    if isinstance(img_size, int):
        return img_size
    height, width = img_size
    if height != width:
        raise ValueError(f"vitfer's models take square faces, got img_size {tuple(img_size)}")
    return int(height)


def small_input_stem(model: nn.Module, name: str) -> nn.Module:
    """Adapt an ImageNet CNN to 48-px faces and keep its pretrained stem. ResNet keeps its 7x7 stride-2 conv and
    drops the max-pool: a 48-px face reaches layer1 as 24x24 maps (a quarter of the cost of the CIFAR-style
    stride-1 stem, 0.6 instead of 2.5 GFLOPs). MobileNetV2 runs its 3x3 stem conv at stride 1 (3x3 final maps)."""
    if name.startswith("resnet"):
        model.maxpool = nn.Identity()
    elif name.startswith("mobilenetv2"):
        model.conv_stem.stride = (1, 1)
    return model


def timm_cnn(name: str, in_chans: int = 3, pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18 / VGG-16 / MobileNetV2 from timm, with a stem that keeps a 48-px face's detail."""
    model = timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **kwargs)
    return small_input_stem(model, name)
