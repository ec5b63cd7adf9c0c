"""Why the ImageNet MobileNetV2 baseline did not learn: the same short run at two learning rates.

    python benchmarks/mobilenetv2_lr_probe.py --data PATH/fer2013 --weights PATH/mobilenet_v2_1.0_224_quant.tflite

AdamW on 6,000 FER2013 Training faces for two epochs (batch 64, weight decay 0.05, flip on odd epochs), then
accuracy on 1,000 PublicTest faces, for each learning rate. The TFLite weights carry batch norm folded into
frozen layers, so nothing renormalises the activations: Adam's steps of 1e-3 move every weight by about 1e-3,
large beside the folded depthwise weights, and the network collapses to the class prior. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from vitfer.labels import EMOTIONS_7
from vitfer.models.factory import build_model


def faces(root: Path, split: str, count: int, rng: np.random.Generator, prefix: str = "") -> tuple:
    files = [(f, i) for i, name in enumerate(EMOTIONS_7) for f in sorted((root / split / name).glob(f"{prefix}*"))]
    files = [files[i] for i in rng.permutation(len(files))[:count]]
    x = torch.tensor(np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f, _ in files]), dtype=torch.float32)
    return (x[:, None].repeat(1, 3, 1, 1) / 255 - 0.5) / 0.5, torch.tensor([i for _, i in files])


def probe(weights: Path, lr: float, train: tuple, val: tuple, epochs: int = 2) -> dict:
    torch.manual_seed(0)
    model = build_model("mobilenetv2", 7, img_size=48, pretrained=str(weights))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.05)
    (x, y), (xv, yv) = train, val
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x) - 63, 64):
            rows = order[start:start + 64]
            batch = x[rows].flip(-1) if epoch % 2 else x[rows]
            loss = torch.nn.functional.cross_entropy(model(batch), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(xv[i:i + 250]).argmax(1) for i in range(0, len(xv), 250)])
    return {"lr": lr, "PublicTest acc": float((predicted == yv).float().mean()),
            "classes predicted": len(set(predicted.tolist())), "last loss": loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="FER2013 folder layout")
    parser.add_argument("--weights", type=Path, required=True, help="mobilenet_v2_1.0_224_quant.tflite")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-4])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train, val = faces(args.data, "train", 6000, rng), faces(args.data, "test", 1000, rng, prefix="PublicTest")
    prior = float((val[1] == torch.bincount(train[1]).argmax()).float().mean())
    print(f"class prior (always the most frequent training class): {prior:.3f}\n")
    print("| AdamW lr | PublicTest acc (1,000 faces) | classes predicted | last training loss |\n|---|---|---|---|")
    for lr in args.lr:
        r = probe(args.weights, lr, train, val)
        print(f"| {lr:g} | {r['PublicTest acc']:.3f} | {r['classes predicted']} | {r['last loss']:.3f} |")


if __name__ == "__main__":
    main()
