"""Write the bundled default model (src/vitfer/assets/default.pt, fp16) from a finished run.

    python tools/ship_default_model.py runs/default-hybrid-vit-tiny

The run's PublicTest/PrivateTest figures (from `vitfer evaluate ... --out <run>/eval-fer2013-val|test`)
are stored in the checkpoint as its card, which `vitfer serve` reports at GET /model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vitfer.inference.backends import DEFAULT_MODEL
from vitfer.models.checkpoint import load_model, save_model


def main(run: Path) -> None:
    loaded = load_model(run / "model.pt")
    card = {"data": "FER2013 (Training; selected on PublicTest)", "recipe": "configs/default.yaml",
            "input low-pass sigma": loaded.preprocess.lowpass_sigma}
    for split, name in (("val", "PublicTest"), ("test", "PrivateTest")):
        found = run / f"eval-fer2013-{split}" / "metrics.json"
        if found.is_file():
            results = json.loads(found.read_text())
            card[f"{name} accuracy"] = round(results["plain"]["accuracy"], 4)
            card[f"{name} macro-F1"] = round(results["plain"]["macro"]["f1"], 4)
    meta = {k: v for k, v in loaded.meta.items() if k not in ("format", "model_config", "preprocess", "labels")}
    save_model(DEFAULT_MODEL, loaded.model, loaded.preprocess, loaded.labels, half=True, card=card, **meta)
    print(f"wrote {DEFAULT_MODEL} ({DEFAULT_MODEL.stat().st_size / 1e6:.1f} MB): {card}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
