"""Ship the models of a finished run: calibrate, evaluate once, write ``src/vitfer/assets/<name>.pt`` (fp16).

    python tools/ship_models.py runs/accurate-hybrid-vit-tiny --fer2013 PATH/fer2013 --name accurate \
        --recipe configs/accurate.yaml --tta flip [--ferplus PATH/ferplus]

- ``<name>.pt`` (``--name``, a name in ``vitfer.shipped.SHIPPED_MODELS``): the run's ``model.pt`` (FER2013 head,
  best PublicTest accuracy), with the test-time augmentation ``--tta`` built in and a temperature fitted on
  PublicTest.
- ``ferplus.pt``: the run's ``model-aux.pt`` (FER+ head, best FER+ Valid majority accuracy), temperature fitted on
  FER+ Valid. Written when the run has one and ``--ferplus`` is given.

Each shipped model is then evaluated on its validation split and, once, on its test split (PrivateTest / FER+
Test); the figures go into the file's card (GET /model, ``vitfer models``) and the reports into
``<run>/shipped-<name>-<split>/``. Nothing here chooses anything by a test split.

Last, ``<name>.onnx``, the file the runtime runs: exported from the shipped ``.pt`` (the input contract inside the
graph), int8 matrix products where that costs at most ``INT8_TOLERANCE`` of validation accuracy and keeps
``INT8_AGREEMENT`` of PyTorch's labels there, else fp32. Only the ONNX step, for models already shipped:

    python tools/ship_models.py --onnx-only default fast --fer2013 PATH/fer2013 --ferplus PATH/ferplus
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import os
import tempfile

from vitfer.evaluation.calibration import calibrate
from vitfer.evaluation.evaluate import compare_backends_on_data, evaluate
from vitfer.models.checkpoint import load_model, save_model
from vitfer.models.export import export_onnx
from vitfer.shipped import SHIPPED_MODELS, SHIPPED_ONNX

INT8_TOLERANCE = 0.003  # validation accuracy int8 may cost (0.3 points)
INT8_AGREEMENT = 0.99  # share of validation faces int8 must label as PyTorch does

FER2013 = ("FER2013 Training (FER2013 labels; FER+ votes of the same faces train a second head)",
           "FER2013 PublicTest", "FER2013 PrivateTest")
DESCRIPTIONS = {
    "ferplus": ("FER+ Train (vote distributions, cross-entropy protocol; FER2013 labels of the same faces train a "
                "second head)", "FER+ Valid (majority)", "FER+ Test (majority)"),
}


def ship(run: Path, name: str, source: Path, data: Path, tta: str, recipe: str) -> dict:
    """Build in ``tta``, calibrate on ``data``'s validation split, evaluate there and once on its test split, ship."""
    target = SHIPPED_MODELS[name]
    with_tta, calibrated = run / f"shipped-{name}-uncalibrated.pt", run / f"shipped-{name}.pt"
    loaded = load_model(source)
    loaded.model.config.tta = tta
    save_model(with_tta, loaded.model, loaded.meta)
    calibrated.unlink(missing_ok=True)
    record = calibrate(with_tta, data, calibrated, split="val")
    trained, val_name, test_name = DESCRIPTIONS.get(name, FER2013)
    card = {"trained on": trained, "selected on": val_name, "recipe": recipe,
            "test-time augmentation (built in)": tta,
            "temperature": record["temperature"], "ECE before/after": [record["ece_before"], record["ece_after"]]}
    loaded = load_model(calibrated)
    save_model(target, loaded.model, loaded.meta, half=True)
    for split, split_name in (("val", val_name), ("test", test_name)):  # the fp16 file as it ships
        results = evaluate(target, data, split, out_dir=run / f"shipped-{name}-{split}")
        card[f"{split_name} accuracy"] = round(results["plain"]["accuracy"], 4)
        card[f"{split_name} macro-F1"] = round(results["plain"]["macro"]["f1"], 4)
    shipped = load_model(target)
    save_model(target, shipped.model, replace(shipped.meta, card=card), half=True)
    (run / f"shipped-{name}.json").write_text(json.dumps(card, indent=2))
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB): {json.dumps(card, indent=1)}")
    build_onnx(name, data)
    return card


def build_onnx(name: str, data: Path) -> dict:
    """``<name>.onnx`` from the shipped ``<name>.pt``: int8 when the validation split says it holds, else fp32."""
    target = SHIPPED_ONNX[name]
    with tempfile.TemporaryDirectory() as folder:
        fp32 = Path(folder) / f"{name}.onnx"
        int8 = export_onnx(SHIPPED_MODELS[name], fp32, quantize=True)
        rows = {row["model"]: row for row in compare_backends_on_data(SHIPPED_MODELS[name], [fp32, int8], data, "val")}
        full, quantized = rows[fp32.name], rows[int8.name]
        holds = (full["accuracy"] - quantized["accuracy"] <= INT8_TOLERANCE
                 and quantized["agrees_with_pytorch"] >= INT8_AGREEMENT)
        os.replace(int8 if holds else fp32, target)
    check = {"onnx": "int8" if holds else "fp32", "validation accuracy (PyTorch, ONNX fp32, ONNX int8)":
             [round(rows["pytorch"]["accuracy"], 4), round(full["accuracy"], 4), round(quantized["accuracy"], 4)],
             "int8 agrees with PyTorch": round(quantized["agrees_with_pytorch"], 4)}
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB): {json.dumps(check)}")
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="finished run folder (model.pt, optional model-aux.pt)")
    parser.add_argument("--onnx-only", nargs="+", choices=sorted(SHIPPED_ONNX), default=None,
                        help="only rebuild these shipped models' ONNX files from their .pt (no test split is read)")
    parser.add_argument("--fer2013", type=Path, required=True, help="FER2013 folder layout (PublicTest, PrivateTest)")
    parser.add_argument("--ferplus", type=Path, default=None, help="FER+ folder layout (FER2013Valid, FER2013Test)")
    parser.add_argument("--name", default="default", choices=sorted(set(SHIPPED_MODELS) - {"ferplus"}),
                        help="the shipped name of the FER2013 model")
    parser.add_argument("--recipe", help="the recipe the run was trained with, for the card")
    parser.add_argument("--tta", default="flip", choices=["none", "flip"],
                        help="test-time augmentation built into the shipped models (chosen on PublicTest)")
    args = parser.parse_args()
    if args.onnx_only:
        for name in args.onnx_only:
            build_onnx(name, args.ferplus if name == "ferplus" else args.fer2013)
        return
    if args.run is None or args.recipe is None:
        parser.error("a run folder and --recipe are needed to ship a model")
    ship(args.run, args.name, args.run / "model.pt", args.fer2013, args.tta, args.recipe)
    if args.ferplus is not None and (args.run / "model-aux.pt").is_file():
        ship(args.run, "ferplus", args.run / "model-aux.pt", args.ferplus, args.tta, args.recipe)


if __name__ == "__main__":
    main()
