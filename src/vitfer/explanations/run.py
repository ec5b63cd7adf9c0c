"""``vitfer explain``: overlays for images or folders, and per-class mean maps over a data split."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import torch
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from vitfer.evaluation.evaluate import split_for  # noqa: E402
from vitfer.explanations.maps import explain_batch, overlay  # noqa: E402
from vitfer.errors import ExplainError, SourceError
from vitfer.runtime.detectors import DEFAULT_DETECTOR  # noqa: E402
from vitfer.runtime.draw import Text, put_texts  # noqa: E402
from vitfer.runtime.predictor import Predictor  # noqa: E402
from vitfer.runtime.sources import image_paths, read_image  # noqa: E402
from vitfer.models.inputs import in_batches  # noqa: E402
from vitfer.models.checkpoint import load_model  # noqa: E402
from vitfer.shipped import resolve_model
from vitfer.files import save_figure  # noqa: E402


def explain_images(checkpoint: str | Path | None, source: str | Path, out_dir: str | Path, method: str = "rollout",
                   detector: str = DEFAULT_DETECTOR, threshold: float = 0.5, detector_model: str | Path | None = None,
                   min_face: int = 24) -> list[dict]:
    """One overlay per face of every image in ``source`` (a file, folder or glob); the detector options are
    ``predict``'s, and ``detector='none'`` treats each image as one face crop. Images where no face is found are
    listed with ``faces: 0`` and no overlay."""
    if resolve_model(checkpoint).suffix == ".onnx":
        raise ExplainError(f"explanations need the PyTorch model (its attention or gradients); give the .pt or run "
                           f"folder that {checkpoint} was exported from")
    predictor = Predictor(checkpoint, detector=detector, backend="torch", threshold=threshold,
                          detector_model=detector_model, min_face=min_face)
    loaded = predictor.backend.loaded
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = image_paths(str(source))
    if not paths:
        raise SourceError(f"no images found at {source}")
    rows = []
    for path in paths:
        image = read_image(path)
        boxes = predictor.detect(image)
        if not boxes:
            rows.append({"image": str(path), "faces": 0, "note": "no face found; nothing explained"})
            continue
        faces = torch.from_numpy(predictor.faces_array(image, boxes))
        maps, probs = explain_batch(loaded, faces, method)
        for index, (face, heat, p) in enumerate(zip(faces.numpy(), maps, probs)):
            label = loaded.labels[int(p.argmax())]
            picture = overlay(face.transpose(1, 2, 0), heat)
            picture = cv2.resize(picture, (224, 224), interpolation=cv2.INTER_LINEAR)
            put_texts(picture, [Text(4, 4, f"{label} {p.max():.0%}", (255, 255, 255), 16)])
            target = out_dir / f"{path.stem}_face{index}_{method}.png"
            cv2.imwrite(str(target), picture)
            rows.append({"image": str(path), "face": index, "label": label, "confidence": float(p.max()),
                         "overlay": str(target)})
    (out_dir / "explanations.json").write_text(json.dumps(rows, indent=2))
    return rows


def mean_maps_per_class(loaded, data_split, method: str = "rollout", per_class: int = 64,
                        batch_size: int = 64) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """For each true class of ``data_split``: (mean face H x W x C uint8, mean map H x W, faces used) over up to
    ``per_class`` of its faces (seeded); classes without faces are left out."""
    rng = np.random.default_rng(0)
    found = {}
    for column, name in enumerate(tqdm(data_split.labels, desc="mean maps", unit="class", disable=None,
                                       leave=False)):
        members = rng.permutation(np.flatnonzero(data_split.targets == column))[:per_class]
        if len(members) == 0:
            continue
        maps = in_batches(lambda faces: explain_batch(loaded, faces, method)[0], data_split.images[members],
                          batch_size)
        mean_face = data_split.images[members].float().mean(0).numpy().transpose(1, 2, 0).astype(np.uint8)
        found[name] = (mean_face, maps.mean(0), len(members))
    return found


def class_mean_maps(checkpoint: str | Path, data: str | Path, split: str, out: str | Path, method: str = "rollout",
                    per_class: int = 64, batch_size: int = 64, detector: str | None = None) -> Path:
    """Mean map and mean face of up to ``per_class`` faces of each true class: where the model looks per emotion,
    as a PNG (a column per class)."""
    loaded = load_model(resolve_model(checkpoint))
    data_split = split_for(loaded, data, split, detector=detector)
    found = mean_maps_per_class(loaded, data_split, method, per_class, batch_size)
    fig, axes = plt.subplots(2, len(data_split.labels), figsize=(2 * len(data_split.labels), 4.4), squeeze=False)
    for column, name in enumerate(data_split.labels):
        for ax in axes[:, column]:
            ax.axis("off")
        mean_face, mean_map, count = found.get(name, (None, None, 0))
        axes[0, column].set_title(f"{name} (n={count})", fontsize=9)
        if mean_face is None:
            continue
        axes[0, column].imshow(mean_face[..., 0] if mean_face.shape[-1] == 1 else mean_face, cmap="gray")
        axes[1, column].imshow(cv2.cvtColor(overlay(mean_face, mean_map / max(mean_map.max(), 1e-12)),
                                            cv2.COLOR_BGR2RGB))
    fig.suptitle(f"{loaded.name}: mean {method} map per true class ({split})")
    return save_figure(fig, out)
