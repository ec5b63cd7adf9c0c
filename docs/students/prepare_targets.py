"""The ensemble teacher of the distilled students (issue 27): its PublicTest accuracy, then its targets for the
FER2013 Training faces (each teacher on the face and its mirror, probabilities averaged; ferplus folded to 7).

    python docs/students/prepare_targets.py PATH/fer2013 runs/teacher_targets.npz [TEACHER ...]

PublicTest is the only split read besides Training; nothing here reads PrivateTest.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from vitfer.data.cache import build_cache
from vitfer.data.readers import read_dataset
from vitfer.labels import EMOTIONS_7
from vitfer.training.distill import write_teacher_targets

DEFAULT_TEACHERS = ["runs/teacher-hybrid-vit-small-80", "default", "ferplus"]


def accuracy_on_val(teachers: list[str], data: str, folder: Path) -> float:
    """PublicTest accuracy of the teachers' mean probabilities (as their training targets are made)."""
    saved = np.load(write_teacher_targets(teachers, data, folder / f"val-{len(list(folder.iterdir()))}.npz",
                                          split="val"))
    manifest = read_dataset(data)
    manifest = manifest[manifest["split"] == "val"]
    cache = build_cache(manifest, size=48, channels=1, num_classes=7)
    truth = {str(item): int(label) for item, label in zip(cache.items, cache.labels)}
    targets = np.array([truth[str(item)] for item in saved["items"]])
    return float((saved["probabilities"].argmax(1) == targets).mean())


def main() -> None:
    data, out, *teachers = sys.argv[1:]
    teachers = teachers or DEFAULT_TEACHERS
    with tempfile.TemporaryDirectory() as tmp:
        for subset in [[t] for t in teachers] + [teachers]:
            print(f"PublicTest accuracy, {' + '.join(subset)} (with mirror): "
                  f"{accuracy_on_val(subset, data, Path(tmp)):.4f}", flush=True)
    write_teacher_targets(teachers, data, out, classes=EMOTIONS_7)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
