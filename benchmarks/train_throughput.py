"""Training and evaluation throughput (images/s) of vitfer's main models on this machine.

    python benchmarks/train_throughput.py [--threads 2] [--batch 64] [--steps 8]

One training step = batched augmentation + forward + backward + AdamW step, on random 48-px
grayscale faces resized to each model's default input, as `vitfer train` runs them.
"""

from __future__ import annotations

import argparse
import platform

import torch

from vitfer.config import AugmentConfig
from vitfer.evaluation.benchmark import faces_per_second, train_step_seconds
from vitfer.preprocess import Preprocess
from vitfer.evaluation.compare import forward_gflops
from vitfer.models.checkpoint import count_parameters
from vitfer.models.factory import build_model

MODELS = [("hybrid_vit_tiny", 64), ("vit_tiny_patch16_224", 112), ("deit_small_patch16_224", 112),
          ("cnn3", 48), ("resnet18", 48), ("vgg16", 48), ("mobilenetv2", 48)]


def measure(name: str, size: int, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model(name, 7, img_size=size)
    preprocess = Preprocess(img_size=size, in_channels=3)
    step = train_step_seconds(model, preprocess, AugmentConfig(), batch, steps)  # what `vitfer benchmark` plans with
    eval_ips = faces_per_second(model, 3, size, batch=batch)
    return {"model": name, "input": f"{size}px", "params (M)": count_parameters(model) / 1e6,
            "GFLOPs": forward_gflops(model.eval(), 3, size), "train img/s": batch / step, "eval img/s": eval_ips,
            "epoch of FER2013 (min)": 28709 * step / batch / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", nargs="*", default=None, help="subset of model names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(n, s, args.batch, args.steps) for n, s in MODELS if not args.models or n in args.models]
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.steps} timed steps, "
          f"{platform.processor() or platform.machine()}\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
