"""What each label set costs the other: the shipped models on FER2013 PrivateTest and FER+ Test, 7 classes.

    python benchmarks/cross_dataset.py --fer2013 PATH/fer2013 --ferplus PATH/ferplus

The FER2013 default (7 classes) is scored on FER+ Test by majority vote with the contempt faces left out;
the FER+ model (8 classes) on FER2013 PrivateTest twice: counting every output (a face it calls contempt is
wrong, as `predict` answers) and with its contempt output masked (the other seven renormalised). Same faces in
both test splits, two label sets. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from vitfer.evaluation.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer2013", required=True, help="FER2013 folder layout")
    parser.add_argument("--ferplus", required=True, help="FER+ folder layout")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("default", "ferplus"):
            for name, data in (("FER2013 PrivateTest", args.fer2013), ("FER+ Test (majority)", args.ferplus)):
                result = evaluate(model, data, "test", out_dir=Path(tmp) / f"{model}-{Path(data).name}")
                plain = result["plain"]
                dropped = ", ".join(f"{k} {v}" for k, v in result["labels_dropped_from_data"].items()) or "-"
                masked = ", ".join(result["masked_outputs"]) or "-"
                other = result.get("other_outputs", {}).get("accuracy")
                rows.append((model, name, plain["samples"], plain["accuracy"], plain["macro"]["f1"], dropped, masked,
                             "-" if other is None else f"{other:.4f}"))
    print("| shipped model | test split | faces | accuracy (every output) | macro-F1 | faces left out | "
          "outputs the data lacks | accuracy with them masked |\n|---|---|---|---|---|---|---|---|")
    for model, name, faces, accuracy, f1, dropped, masked, other in rows:
        print(f"| {model} | {name} | {faces} | {accuracy:.4f} | {f1:.4f} | {dropped} | {masked} | {other} |")


if __name__ == "__main__":
    main()
