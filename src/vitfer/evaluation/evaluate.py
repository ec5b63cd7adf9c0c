"""``evaluate(checkpoint, data, split)``: metrics, plots and a readable report for one model on one split."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from vitfer.data.cache import FaceCrops, build_cache, face_crops
from vitfer.data.manifest import OnError
from vitfer.data.readers import read_dataset
from vitfer.errors import ConfigError, DataError, ModelError
from vitfer.labels import EMOTIONS_8
from vitfer.runtime.backends import Backend, OnnxBackend, create_backend
from vitfer.models.backend import TorchBackend
from vitfer.files import increment_path
from vitfer.shipped import SHIPPED_MODELS
from vitfer.models.checkpoint import LoadedModel
from vitfer.shipped import resolve_model
from vitfer.evaluation.metrics import classification_metrics
from vitfer.evaluation.groups import audit_markdown, group_audit, read_groups
from vitfer.evaluation.significance import bootstrap_intervals, macro_f1
from vitfer.evaluation.plots import plot_confusion, plot_prediction_grid, plot_reliability
from vitfer.models.inputs import finish, in_batches, lowpass, to_float

TTA_MODES = ("none", "flip", "crops")
# which model outputs a figure counts when the data has fewer classes than the model: every one (a face given a class
# the data lacks counts wrong, as `predict` answers) or only the data's classes, renormalised (the usual
# cross-data-set protocol)
OUTPUT_MODES = ("all", "data")
SPLIT_NAMES = {"test": "test", "val": "val", "validation": "val", "train": "train", "all": "all"}


@dataclass
class EvalData:
    """The faces of one split, with labels as indices into ``labels`` (the classes model and data share)."""

    images: torch.Tensor
    targets: np.ndarray
    labels: tuple[str, ...]
    model_columns: list[int]  # which model outputs ``labels`` are
    items: np.ndarray
    dropped: dict[str, int]  # data labels the model does not know -> how many faces were left out
    model_labels: tuple[str, ...] = ()
    crops: FaceCrops | None = None  # how whole photos were cropped to their face, if they were
    no_face: list[str] = field(default_factory=list)  # photos where the detector found none (kept whole)

    @property
    def masked(self) -> list[str]:
        """The model's outputs for classes this data does not have."""
        return [name for name in self.model_labels if name not in self.labels]

    def scored(self, probabilities: np.ndarray, outputs: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """Targets, probabilities and class names of a figure over ``outputs`` (see OUTPUT_MODES) of the model's
        probabilities (N x model classes)."""
        if outputs == "data" or not self.masked:
            return self.targets, restrict(probabilities, self.model_columns), self.labels
        return np.asarray(self.model_columns)[self.targets], probabilities, self.model_labels


def load_eval_data(data: str | Path, split: str, model_labels: tuple[str, ...], size: int = 48,
                   channels: int = 1, kind: str = "auto", on_error: OnError = "raise", seed: int = 0,
                   folds: int = 0, fold: int = 0, group_by: str | None = None,
                   crops: FaceCrops | None = None) -> EvalData:
    """Read one split of a data set (of fold ``fold``, with k-fold) and line its labels up with the model's;
    ``crops``: crop whole photos to their largest face first, as ``predict`` does."""
    if split not in SPLIT_NAMES:
        raise DataError(f"unknown split {split!r}; use test, val, train or all")
    manifest = read_dataset(data, kind=kind, on_error=on_error, seed=seed, folds=folds, fold=fold, group_by=group_by)
    wanted = SPLIT_NAMES[split]
    if wanted != "all":
        present = sorted(set(manifest["split"]))
        manifest = manifest[manifest["split"] == wanted]
        if manifest.empty:
            raise DataError(f"{data} has no faces in split {split!r} (it has: {', '.join(present)}; in FER2013, val "
                            "is PublicTest and test is PrivateTest, both in its test/ folder)")
    data_labels = set(manifest["label"])
    shared = tuple(name for name in model_labels if name in data_labels)
    if len(shared) < 2:
        raise ModelError(f"the model's labels {list(model_labels)} and the data set's {sorted(data_labels)} "
                              "share fewer than two classes; this checkpoint cannot be evaluated on this data")
    dropped = {name: int((manifest["label"] == name).sum()) for name in sorted(data_labels - set(shared))}
    manifest = manifest[manifest["label"].isin(shared)]
    cache = build_cache(manifest, size=size, channels=channels, num_classes=8, on_error=on_error, crops=crops)
    names = [EMOTIONS_8[i] for i in cache.labels.tolist()]
    return EvalData(cache.images, np.array([shared.index(n) for n in names]), shared,
                    [model_labels.index(n) for n in shared], cache.items, dropped, tuple(model_labels),
                    crops, cache.no_face)


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Float faces -> the views averaged by test-time augmentation (flip: 2 views; crops: 5 crops x flip)."""
    if mode not in TTA_MODES:
        raise ConfigError(f"unknown TTA mode {mode!r}; use {', '.join(TTA_MODES)}")
    if mode == "none":
        return [x]
    if mode == "flip":
        return [x, x.flip(-1)]
    side = x.shape[-1]
    crop = int(round(side * 0.9))
    corners = [((side - crop) // 2, (side - crop) // 2), (0, 0), (0, side - crop), (side - crop, 0),
               (side - crop, side - crop)]
    views = []
    for top, left in corners:
        view = F.interpolate(x[..., top:top + crop, left:left + crop], size=(side, side), mode="bilinear",
                             align_corners=False)
        views += [view, view.flip(-1)]
    return views


@torch.no_grad()
def predict_probabilities(loaded: LoadedModel, images: torch.Tensor, tta: str = "none",
                          batch_size: int = 256) -> np.ndarray:
    """uint8 faces -> softmax probabilities (N x model classes), averaged over the TTA views."""
    loaded.model.eval()
    p = loaded.preprocess

    def batch(faces: torch.Tensor) -> torch.Tensor:
        x = lowpass(p, to_float(p, faces.to(next(loaded.model.parameters()).device)))
        return torch.stack([loaded.model(finish(p, view)).softmax(-1) for view in tta_views(x, tta)]).mean(0).cpu()

    return in_batches(batch, images, batch_size, progress="classifying").numpy()


def backend_probabilities(backend: Backend, images: torch.Tensor, tta: str = "none",
                          batch_size: int = 256) -> np.ndarray:
    """uint8 faces -> probabilities through any backend (test-time augmentation with PyTorch only)."""
    if isinstance(backend, TorchBackend):
        return predict_probabilities(backend.loaded, images, tta, batch_size)
    return in_batches(lambda faces: backend.probabilities(faces.numpy()), images, batch_size, progress="classifying")


def compare_backends_on_data(checkpoint: str | Path, onnx_files: list[Path], data: str | Path,
                             split: str = "val", batch_size: int = 256) -> list[dict]:
    """Accuracy and agreement with PyTorch of each exported file on one labelled split: the cost of int8."""
    reference_backend = create_backend(resolve_model(checkpoint), backend="torch")
    eval_data = split_for(reference_backend, data, split)
    backends = [("pytorch", reference_backend)] + [(path.name, OnnxBackend(path)) for path in onnx_files]
    rows, reference = [], None
    for name, backend in backends:
        probs = backend_probabilities(backend, eval_data.images, "none", batch_size)
        predicted = restrict(probs, eval_data.model_columns).argmax(axis=1)
        reference = predicted if reference is None else reference
        rows.append({"model": name, "faces": len(predicted),
                     "accuracy": float((predicted == eval_data.targets).mean()),
                     "agrees_with_pytorch": float((predicted == reference).mean())})
    return rows


def restrict(probabilities: np.ndarray, columns: list[int]) -> np.ndarray:
    """Keep the model outputs of the shared classes and renormalise (e.g. contempt dropped for 7 classes)."""
    kept = probabilities[:, columns]
    return kept / np.clip(kept.sum(axis=1, keepdims=True), 1e-12, None)


def split_settings(loaded: LoadedModel | Backend) -> dict:
    """The seed, k-fold and grouping a model was trained with, so that its evaluation reads the same splits."""
    config = loaded.meta.config
    data = config.get("data", {})
    return {"seed": int(config.get("seed", 0)), "folds": int(data.get("folds") or 0), "fold": int(data.get("fold") or 0),
            "group_by": data.get("group_by") or None}


def eval_size(loaded: LoadedModel | Backend) -> tuple[int, int]:
    """Decode size and channels as at training time (from the stored config), else the model's input."""
    data = loaded.meta.config.get("data", {})
    channels = data.get("channels") or (1 if loaded.preprocess.grayscale else 3)
    return int(data.get("size") or loaded.preprocess.img_size), int(channels)


def split_for(model: LoadedModel | Backend, data: str | Path, split: str, kind: str = "auto",
              on_error: OnError = "raise", detector: str | None = None) -> EvalData:
    """One split of a data set as this model was trained to see it: its decode size and channels, the seed and
    k-fold of its training, and its face cropping, so evaluation, calibration and explanation all read the model's
    own splits. ``detector`` (yunet, ssd, haar, mtcnn; none = the images are crops) overrides the cropping the
    model file records (none unless it was trained on cropped photos); the margin is the model's own."""
    size, channels = eval_size(model)
    if detector is None:
        detector = model.meta.config.get("data", {}).get("detector") or "none"
    crops = face_crops(detector, model.preprocess.crop_margin)
    return load_eval_data(data, split, model.labels, size, channels, kind, on_error, **split_settings(model),
                          crops=crops)


def evaluate(checkpoint: str | Path, data: str | Path, split: str = "val", tta: str = "none",
             out_dir: str | Path | None = None, batch_size: int = 256, kind: str = "auto",
             on_error: OnError = "raise", grid_size: int = 32, lowpass_sigma: float | None = None,
             exist_ok: bool = False, device: str | None = None, outputs: str = "all",
             groups: str | Path | None = None, detector: str | None = None) -> dict:
    """Evaluate a model (a shipped name, run folder, .pt/.ckpt or .onnx) on one split; writes metrics.json,
    report.md, predictions.csv and figures to ``out_dir`` (default ``<run>/eval-<data>-<split>``; for a shipped
    model ``runs/eval-<model>-<data>-<split>``), taken afresh (``...-val2``) when it holds an earlier report,
    unless ``exist_ok``.

    When the model has outputs for classes the data lacks (contempt on 7-class data, say), both figures are
    reported: over every output (``outputs="all"``, what ``predict`` users get) and over the data's classes only
    (``"data"``, renormalised); ``outputs`` says which one is primary (``plain``), the other is ``other_outputs``.
    ``groups``: a CSV of attributes per file name; adds the per-group audit (``groups`` in the results).
    ``detector``: crop whole photos to their largest face as ``predict`` does (default: as the model was trained;
    see ``split_for``); photos with no face found are counted (``photos_without_a_face``) and kept whole.

    >>> results = evaluate("default", "fer2013", split="val", tta="flip")  # doctest: +SKIP
    >>> results["plain"]["accuracy"], results["plain"]["macro"]["f1"]     # doctest: +SKIP

    ``lowpass_sigma`` replaces the model's own input low-pass (see ``Preprocess.lowpass_sigma``) to measure its effect.
    """
    if outputs not in OUTPUT_MODES:
        raise ConfigError(f"unknown outputs {outputs!r}; use {' or '.join(OUTPUT_MODES)}")
    path = resolve_model(checkpoint)
    # a .pt/.ckpt runs in PyTorch, an .onnx in ONNX Runtime
    backend = create_backend(path, backend="onnx" if path.suffix == ".onnx" else "torch", device=device)
    if tta != "none" and not isinstance(backend, TorchBackend):
        raise ModelError(f"test-time augmentation needs the PyTorch model; evaluate {path.name} with --tta none, "
                              "or the .pt it was exported from")
    if lowpass_sigma is not None:
        backend.preprocess.lowpass_sigma = lowpass_sigma
    eval_data = split_for(backend, data, split, kind, on_error, detector)
    attributes = read_groups(groups, eval_data.items) if groups is not None else None
    name = backend.meta.name
    if out_dir is None and path in SHIPPED_MODELS.values():  # never into the installed package
        out_dir = Path("runs") / f"eval-{path.stem}-{Path(data).stem}-{split}"
    elif out_dir is None:
        base = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        out_dir = base / f"eval-{Path(data).stem}-{split}"
    out_dir = increment_path(out_dir, exist_ok).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    results: dict = {"checkpoint": str(path), "model": name, "backend": backend.name, "data": str(data),
                     "split": split, "lowpass_sigma": backend.preprocess.lowpass_sigma,
                     "labels_dropped_from_data": eval_data.dropped, "masked_outputs": eval_data.masked,
                     "outputs": outputs if eval_data.masked else "all",
                     "face_crops": eval_data.crops.key() if eval_data.crops else "none",
                     "photos_without_a_face": len(eval_data.no_face), "first_photos_without_a_face": eval_data.no_face[:20]}
    modes = ["none"] if tta == "none" else ["none", tta]
    for mode in modes:
        start = time.perf_counter()
        raw = backend_probabilities(backend, eval_data.images, mode, batch_size)
        seconds = time.perf_counter() - start
        targets, probs, labels = eval_data.scored(raw, outputs)
        metrics = classification_metrics(targets, probs, labels)
        metrics["images_per_second"] = len(probs) / seconds
        # 95 % bootstrap intervals over the faces (seeded): how far the figure could move on another sample
        metrics["intervals"] = bootstrap_intervals(targets, probs.argmax(1), len(labels))
        results["plain" if mode == "none" else f"tta_{mode}"] = metrics
        if mode == "none":
            plain = (targets, probs, labels)
            if eval_data.masked:
                other = "data" if outputs == "all" else "all"
                o_targets, o_probs, o_labels = eval_data.scored(raw, other)
                results["other_outputs"] = {
                    "outputs": other, "accuracy": float((o_probs.argmax(1) == o_targets).mean()),
                    "macro_f1": float(macro_f1(o_targets, o_probs.argmax(1), len(o_labels))[0]),
                    "intervals": bootstrap_intervals(o_targets, o_probs.argmax(1), len(o_labels))}
    targets, plain_probs, labels = plain
    if attributes is not None:
        results["groups"] = group_audit(targets, plain_probs.argmax(1), len(labels), attributes)
    main = results["plain"]
    plot_confusion(main["confusion"], main["labels"], out_dir / "confusion.png", title=f"{name} {split}")
    plot_reliability(main["calibration"], out_dir / "reliability.png")
    write_prediction_grids(eval_data, targets, plain_probs, labels, out_dir, grid_size)
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    # each face's answer by class name, so that two models tested on this split can be compared face by face
    pd.DataFrame({"item": [str(item) for item in eval_data.items], "target": [labels[i] for i in targets],
                  "predicted": [labels[i] for i in plain_probs.argmax(1)]}).to_csv(out_dir / "predictions.csv",
                                                                                    index=False)
    (out_dir / "report.md").write_text(markdown_report(results))
    results["out_dir"] = str(out_dir)
    return results


def write_prediction_grids(eval_data: EvalData, targets: np.ndarray, probs: np.ndarray, labels: tuple[str, ...],
                           out_dir: Path, grid_size: int) -> None:
    """A random sample of predictions, and the most confident mistakes of each true class."""
    predicted = probs.argmax(1)
    confidence = probs.max(1)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(probs), size=min(grid_size, len(probs)), replace=False)
    plot_prediction_grid(eval_data.images[sample].numpy(), [labels[i] for i in targets[sample]],
                         [labels[i] for i in predicted[sample]], confidence[sample].tolist(),
                         out_dir / "samples.png", title="random sample (red = wrong)")
    picked = []
    for cls in range(len(labels)):
        wrong = np.flatnonzero((targets == cls) & (predicted != cls))
        picked += wrong[np.argsort(-confidence[wrong])][:4].tolist()
    picked = np.array(picked, dtype=int)
    plot_prediction_grid(eval_data.images[picked].numpy(), [labels[i] for i in targets[picked]],
                         [labels[i] for i in predicted[picked]], confidence[picked].tolist(),
                         out_dir / "mistakes.png", title="most confident mistakes per true class")


def markdown_report(results: dict) -> str:
    """The evaluation as a Markdown page a person can read."""
    main = results["plain"]
    lines = [f"# Evaluation of `{results['model']}` on {results['data']} ({results['split']})", "",
             f"- checkpoint: `{results['checkpoint']}`", f"- faces: {main['samples']}",
             f"- input low-pass sigma: {results.get('lowpass_sigma', 0.0)} px of a 48-px face"]
    if results["labels_dropped_from_data"]:
        lines.append(f"- left out (labels the model does not know): {results['labels_dropped_from_data']}")
    if results.get("face_crops", "none") != "none":
        lines.append(f"- photos cropped to their largest face (detector|margin): {results['face_crops']}; no face "
                     f"found in {results['photos_without_a_face']} (kept whole)"
                     + (f", e.g. {', '.join(results['first_photos_without_a_face'][:3])}"
                        if results["photos_without_a_face"] else ""))
    if results.get("masked_outputs"):
        other = results["other_outputs"]
        ci = other["intervals"]
        described = {"all": "every model output (a face given a class the data lacks counts wrong, as `predict` "
                            "answers)", "data": "only the outputs of the data's classes, renormalised"}
        lines += [f"- model outputs for classes this data lacks: {', '.join(results['masked_outputs'])}",
                  f"- figures below: {described[results['outputs']]}",
                  f"- with {described[other['outputs']]}: accuracy {other['accuracy']:.4f} ({ci['accuracy'][0]:.4f}-"
                  f"{ci['accuracy'][1]:.4f}), macro-F1 {other['macro_f1']:.4f} ({ci['macro_f1'][0]:.4f}-"
                  f"{ci['macro_f1'][1]:.4f})"]
    lines += ["", "| setting | accuracy (95 % CI) | top-2 | macro-F1 (95 % CI) | weighted-F1 | ECE | img/s |",
              "|---|---|---|---|---|---|---|"]
    for key, value in results.items():
        if key == "plain" or key.startswith("tta_"):
            ci = value["intervals"]
            lines.append(f"| {key} | {value['accuracy']:.4f} ({ci['accuracy'][0]:.4f}-{ci['accuracy'][1]:.4f}) | "
                         f"{value['top2_accuracy']:.4f} | {value['macro']['f1']:.4f} "
                         f"({ci['macro_f1'][0]:.4f}-{ci['macro_f1'][1]:.4f}) | {value['weighted']['f1']:.4f} | "
                         f"{value['calibration']['ece']:.4f} | {value['images_per_second']:.0f} |")
    lines += ["", "| class | precision | recall | F1 | support | one-vs-rest accuracy |", "|---|---|---|---|---|---|"]
    for name, row in main["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
                     f"{row['support']} | {row['accuracy']:.3f} |")
    for average in ("macro", "weighted"):
        row = main[average]
        lines.append(f"| *{average} avg* | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | | |")
    if "groups" in results:
        lines += audit_markdown(results["groups"])
    lines += ["", "![confusion](confusion.png)", "", "![reliability](reliability.png)", "",
              "![samples](samples.png)", "", "![mistakes](mistakes.png)", ""]
    return "\n".join(lines)
