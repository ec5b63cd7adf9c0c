"""Does a model start to learn on a data set at all? A plain PyTorch loop, no Lightning, no augmentation.

    python benchmarks/from_scratch_probe.py PATH/TO/fer2013 [--faces 6000] [--epochs 6] [--threads 2]

Trains each model from random weights (AdamW, lr 5e-4, batch 64, 100 warm-up steps) on a seeded subset of
the training split and prints its mean training loss per epoch beside the class-prior entropy: a loss that
stays at the prior means the model predicts class frequencies and has learnt nothing from the faces.
Because the loop is written here and not taken from `vitfer train`, a stall seen both here and there is
the model's, not the training engine's.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from vitfer.config import load_config
from vitfer.preprocess import Preprocess
from vitfer.models.factory import build_model
from vitfer.data.datamodule import load_faces

MODELS = [("vit_tiny_patch16_224", 112), ("hybrid_vit_tiny", 64), ("cnn3", 48)]


def prior_entropy(labels: torch.Tensor) -> float:
    """Cross-entropy (nats) of always predicting the class frequencies."""
    p = torch.bincount(labels).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def probe(name: str, size: int, faces: torch.Tensor, labels: torch.Tensor, epochs: int) -> list[float]:
    """Mean training loss per epoch of one model trained from scratch in a plain loop."""
    torch.manual_seed(0)
    model = build_model(name, 7, img_size=size)
    preprocess = Preprocess(img_size=size, in_channels=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    losses, step = [], 0
    for _ in range(epochs):
        model.train()
        order, total = torch.randperm(len(labels)), 0.0
        for start in range(0, len(labels), 64):
            rows = order[start:start + 64]
            for group in optimizer.param_groups:
                group["lr"] = 5e-4 * min(1.0, (step + 1) / 100)
            loss = F.cross_entropy(model(preprocess(faces[rows])), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            step += 1
        losses.append(total / len(labels))
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--faces", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = load_faces(load_config(None, [f"data.path={args.data}"]))
    faces, labels = cache.subset("train")
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[: args.faces]
    faces, labels = faces[pick], labels[pick]
    print(f"{len(labels)} training faces, {args.epochs} epochs; class-prior entropy {prior_entropy(labels):.3f} "
          f"nats (chance level), ln 7 = {math.log(7):.3f}\n")
    print("| model | input | " + " | ".join(f"train loss ep {e}" for e in range(args.epochs)) + " | s |")
    print("|---|---|" + "---|" * args.epochs + "---|")
    for name, size in MODELS:
        began = time.perf_counter()
        losses = probe(name, size, faces, labels, args.epochs)
        cells = " | ".join(f"{v:.3f}" for v in losses)
        print(f"| {name} | {size}px | {cells} | {time.perf_counter() - began:.0f} |", flush=True)


if __name__ == "__main__":
    main()
