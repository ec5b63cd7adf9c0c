"""The Python API, one function per ``vitfer`` verb, with the command's arguments and defaults; the command line
calls these and nothing else.

``predict``, ``serve`` and ``models`` run on the runtime floor (ONNX Runtime, no torch). The other verbs need the
research floor (``pip install 'vitfer[train]'``); called without it they raise ``ExtraMissing``, one line that
names the extra. Each function imports its engine when called, so ``import vitfer`` stays light.

>>> import vitfer
>>> run = vitfer.train("configs/cnn3.yaml", data="fer2013", epochs=3)       # doctest: +SKIP
>>> vitfer.evaluate(run, data="fer2013", split="val")["plain"]["accuracy"]  # doctest: +SKIP
>>> vitfer.Predictor(run).predict("photo.jpg").save("photo_annotated.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitfer.errors import ConfigError, ExtraMissing, OutputError
from vitfer.runtime.backends import RESEARCH_EXTRA
from vitfer.shipped import DEFAULT_DETECTOR
#: the packages of the research floor: a verb that finds one missing names the extra to install
RESEARCH_PACKAGES = frozenset({"torch", "torchvision", "timm", "lightning", "torchmetrics", "kornia", "pandas",
                               "matplotlib", "yaml", "sklearn", "tflite", "safetensors", "pytorch_grad_cam", "onnx",
                               "onnxscript"})


def research(module: str, verb: str):
    """A research-floor module, or ExtraMissing naming the verb and the extra when its packages are absent."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if (err.name or "").split(".")[0] in RESEARCH_PACKAGES:
            raise ExtraMissing(f"vitfer {verb} needs the research floor ({err.name} is not installed): "
                               f"{RESEARCH_EXTRA}") from None
        raise


def _override(key: str, value: Any) -> str:
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def _overrides(overrides: dict[str, Any] | list[str] | None) -> list[str]:
    """``{"train.lr": 3e-4}`` or ``["train.lr=3e-4"]`` (as ``--set`` gives them) as ``key=value`` lines."""
    if isinstance(overrides, dict):
        return [_override(k, v) for k, v in overrides.items()]
    return list(overrides or [])


# --- runtime floor --------------------------------------------------------------------------------------------
def predict(source: Any = "example", model: str | Path | None = "default", detector: str = DEFAULT_DETECTOR,
            detector_model: str | Path | None = None, threshold: float = 0.5, min_face: int = 24,
            backend: str = "auto", out: str | Path | None = "runs/predict", save: str | Path | None = None,
            smoothing: str = "ema", bars: bool = False, show: bool = False, max_frames: int | None = None,
            on_error: str = "skip", exist_ok: bool = False, workers: int | None = None, threads: int | None = None,
            device: str | None = None, min_confidence: float = 0.0, video_format: str = "mp4",
            echo: Callable[[str], None] = print,
            progress: bool = False, on_result: Callable | None = None):
    """Find and classify every face of a source (image, list of images, folder, glob, video, webcam index,
    'example'), print a line per image, write annotated copies to ``out`` (taken afresh: runs/predict2, ...; None
    for none) and rows to ``save``; returns a ``PredictionSummary``. See ``vitfer predict --help`` for every
    option.

    >>> summary = vitfer.predict("photos/", save="faces.csv", out=None)  # doctest: +SKIP
    """
    from vitfer.runtime.predict import run_prediction

    return run_prediction(source, model=model, detector=detector, detector_model=detector_model,
                          threshold=threshold, min_face=min_face, backend=backend,
                          out_dir=Path(out) if out not in (None, "") else out, save=Path(save) if save else None,
                          smoothing=smoothing, bars=bars, show=show, max_frames=max_frames, echo=echo,
                          on_error=on_error, exist_ok=exist_ok, progress=progress, on_result=on_result,
                          workers=workers, threads=threads, device=device, min_confidence=min_confidence,
                          video_format=video_format)


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          detector: str = DEFAULT_DETECTOR, backend: str = "auto", limits: Any = None,
          cors_origins: list[str] | None = None, detector_model: str | Path | None = None, workers: int = 1,
          device: str | None = None, threshold: float = 0.5, min_face: int = 24) -> None:
    """Serve the HTTP API and its pages (``vitfer serve``); needs ``pip install 'vitfer[serve]'``."""
    from vitfer.errors import ArgumentError
    from vitfer.runtime.predict import check_options

    if not 1 <= port <= 65535:
        raise ArgumentError(f"--port {port}: a TCP port, 1 to 65535")
    if workers < 1:
        raise ArgumentError(f"--workers {workers}: 1 or more server processes")
    check_options(detector, backend, threshold, min_face, 1, None, "ema", "skip", 0.0, device, None)
    try:
        app = importlib.import_module("vitfer.serving.app")
    except ImportError as err:
        raise ExtraMissing(f"vitfer serve needs the server's packages ({err.name} is not installed): "
                           "pip install 'vitfer[serve]'") from None
    from vitfer.serving.limits import LOOPBACK

    if host not in LOOPBACK:
        import sys

        print(f"warning: --host {host} answers every machine that can reach this one on port {port}, with no "
              "login; use --host 127.0.0.1 (the default) to answer this machine only", file=sys.stderr)
    app.serve(model, host, port, detector, backend, limits, cors_origins, detector_model, workers, device, threshold,
              min_face)


def models(pattern: str | None = None) -> dict[str, Any]:
    """The shipped models with their figures (``shipped``), and with the research floor installed, the
    architectures ``vitfer train --model`` takes (``architectures``: name -> description) matching ``pattern``."""
    from vitfer.runtime.backends import shipped_models

    found: dict[str, Any] = {"shipped": shipped_models() if pattern is None else {}}
    try:
        factory = research("vitfer.models.factory", "models")
        zoo = research("vitfer.models.zoo", "models")
    except ExtraMissing as err:
        found["architectures"], found["missing"] = {}, str(err)
        return found
    found["architectures"] = {name: zoo.own_models().get(name, "") for name in factory.available_models(pattern)}
    return found


# --- research floor -------------------------------------------------------------------------------------------
def train(config: str | Path | None = None, data: str | Path | None = None, model: str | None = None,
          epochs: int | None = None, name: str | None = None, pretrained: str | Path | bool | None = None,
          resume: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None,
          verbose: bool = False, progress: bool = True) -> Path:
    """Train a model as ``vitfer train`` does; returns the run folder (``runs/<name>``).

    ``overrides`` takes any config key in dotted form, as a dict or as ``--set``'s ``key=value`` lines.

    >>> run = vitfer.train("configs/default.yaml", data="fer2013", epochs=5,
    ...                    overrides={"train.lr": 3e-4, "model.pretrained": "mobilenet_v2_1.0_224_quant.tflite"})
    ... # doctest: +SKIP
    """
    config_module = research("vitfer.config", "train")
    training = research("vitfer.training.run", "train")
    settings = _overrides(overrides)
    for key, value in (("data.path", data), ("model.name", model), ("train.epochs", epochs), ("name", name),
                       ("model.pretrained", pretrained)):
        if value is not None:
            settings.append(_override(key, str(value) if isinstance(value, Path) else value))
    return training.train(config_module.load_config(config, settings), resume=resume, progress=progress,
                          verbose=verbose)


def evaluate(checkpoint: str | Path, data: str | Path, split: str = "val", tta: str = "none",
             out_dir: str | Path | None = None, on_error: str = "raise", lowpass_sigma: float | None = None,
             exist_ok: bool = False, device: str | None = None, outputs: str = "all",
             groups: str | Path | None = None, detector: str | None = None) -> dict:
    """Accuracy, per-class figures, confusion, calibration and a report of a model on one split of ``data``
    (``vitfer evaluate``); returns the metrics, the report folder in ``out_dir``. ``outputs``: which figure is
    primary when the model knows classes the data lacks (``all`` or ``data``; both are reported); ``groups``: a
    CSV of attributes per file name for the per-group audit; ``detector``: crop whole photos of ``data`` to their
    largest face as ``predict`` does (default: as the model was trained)."""
    engine = research("vitfer.evaluation.evaluate", "evaluate")
    return engine.evaluate(checkpoint, data, split=split, tta=tta, out_dir=out_dir, on_error=on_error,
                           lowpass_sigma=lowpass_sigma, exist_ok=exist_ok, device=device, outputs=outputs,
                           groups=groups, detector=detector)


def teacher_targets(teachers: list[str | Path], data: str | Path, out: str | Path, num_classes: int = 7) -> Path:
    """The teachers' mean probabilities (each on the face and its mirror) for every training face of ``data``,
    written to ``out`` (.npz, never over a file) for a student's ``data.teacher_targets``."""
    from vitfer.labels import label_set

    engine = research("vitfer.training.distill", "teacher-targets")
    return engine.write_teacher_targets([str(t) for t in teachers], data, out, classes=label_set(num_classes))


def calibrate(checkpoint: str | Path, data: str | Path, out: str | Path, split: str = "val",
              detector: str | None = None) -> dict:
    """Fit a temperature on ``split`` of ``data`` and write the calibrated model to ``out`` (never over its
    source, never over an existing file); returns the calibration record. ``detector``: crop whole photos of
    ``data`` to their face (default: as the model was trained)."""
    if Path(out).exists():
        raise OutputError(f"{out} exists; choose another --out (a calibrated model never replaces its source)")
    return research("vitfer.evaluation.calibration", "calibrate").calibrate(checkpoint, data, out, split=split,
                                                                             detector=detector)


def export(checkpoint: str | Path | None = None, out: str | Path | None = None, quantize: bool = False,
           check_data: str | Path | None = None, check_split: str = "val", web: str | Path | None = None,
           model: str | Path = "default", ort_web: str | Path | None = None, exist_ok: bool = False) -> dict[str, Any]:
    """Export a model to ONNX (``vitfer export``): ``files`` written (fp32, then int8 with ``quantize``), and with
    ``check_data`` each file's accuracy there beside PyTorch's (``check``).

    ``web=DIR``: instead, the in-browser folder for ``model`` (a shipped name or an .onnx file; see
    ``vitfer.web.export``), which needs no research floor; ``files`` is the folder.
    """
    from vitfer.shipped import SHIPPED_NAMES, resolve_model

    if web is not None:
        from vitfer.web.export import export_web

        return {"files": [export_web(web, model, exist_ok=exist_ok, ort_web=ort_web)], "check": []}
    if checkpoint is None:
        raise ConfigError("give a model to export (a shipped name, a run folder or a .pt file), or --web DIR")

    exporter = research("vitfer.models.export", "export")
    backend = research("vitfer.models.backend", "export")
    path = resolve_model(checkpoint)
    target = Path(out) if out else (Path(f"{checkpoint}.onnx") if str(checkpoint) in SHIPPED_NAMES
                                    else path.with_suffix(".onnx"))
    written = [target, target.with_name(target.stem + ".int8.onnx")] if quantize else [target]
    from vitfer.runtime.rows import check_output_path

    for file in written:  # never over an earlier export unless asked
        check_output_path(file, exist_ok, "--out")
    cached = backend.onnx_cache_path(path)
    cached = [cached, cached.with_name(cached.stem + ".int8.onnx")] if quantize else [cached]
    if all(file.is_file() for file in cached):  # exported before (a prediction with --backend onnx, say)
        from vitfer.files import atomic_write

        for source, destination in zip(cached, written):
            with atomic_write(destination) as partial:
                partial.write_bytes(source.read_bytes())
    else:
        exporter.export_onnx(path, target, quantize=quantize)  # with quantize: fp32 at target, then int8
    rows = []
    if check_data:
        evaluation = research("vitfer.evaluation.evaluate", "export")
        rows = evaluation.compare_backends_on_data(path, written, check_data, check_split)
    return {"files": written, "check": rows}


def explain(model: str | Path = "default", source: str | Path | None = None, data: str | Path | None = None,
            out: str | Path = "runs/explain", method: str = "rollout", split: str = "val", per_class: int = 64,
            detector: str | None = None, threshold: float = 0.5, detector_model: str | Path | None = None,
            min_face: int = 24, exist_ok: bool = False) -> list[dict] | Path:
    """Where the model looks: one overlay per face of ``source`` (a list of rows), or with ``data`` the per-class
    mean maps over one split (the PNG's path). ``out`` is taken afresh (runs/explain2, ...) unless ``exist_ok``.
    ``detector``: for ``source``, the face detector (default yunet); for ``data``, how its whole photos are
    cropped (default: as the model was trained; see ``vitfer.evaluation.evaluate.split_for``).

    >>> rows = vitfer.explain("default", "photo.jpg", method="gradcam")  # doctest: +SKIP
    """
    from vitfer.files import increment_path

    engine = research("vitfer.explanations.run", "explain")
    if data is None and source is None:
        raise ConfigError("give an image, folder or glob to explain, or data=PATH for per-class maps")
    out = increment_path(out, exist_ok)
    if data is not None:
        return engine.class_mean_maps(model, data, split, Path(out) / f"class_maps_{method}.png", method=method,
                                      per_class=per_class, detector=detector)
    return engine.explain_images(None if str(model) == "default" else model, source, out, method=method,
                                 detector=detector or DEFAULT_DETECTOR, threshold=threshold, detector_model=detector_model,
                                 min_face=min_face)


def compare(runs: list[str | Path], split: str = "val", out: str | Path = "runs/compare", exist_ok: bool = False):
    """One table over evaluated runs (``comparison.md`` and ``.png`` in ``out``, taken afresh unless ``exist_ok``);
    returns it as a DataFrame, its folder in ``attrs['out']``.

    >>> table = vitfer.compare(["runs/cnn3", "runs/default-hybrid-vit-tiny"])  # doctest: +SKIP
    """
    from vitfer.files import increment_path

    engine = research("vitfer.evaluation.compare", "compare")
    out = increment_path(out, exist_ok)
    table = engine.compare_runs(runs, out, split=split)
    table.attrs["out"] = str(out)
    return table


def benchmark(recipes: list[str | Path], data: str | Path, budget_minutes: float | None = None,
              budget_epochs: int | None = None, out: str | Path = "runs/benchmark", final_test: bool = True,
              overrides: dict[str, Any] | list[str] | None = None):
    """Train every recipe under one budget and tabulate them (see ``vitfer benchmark``); resumes in ``out``.

    >>> table = vitfer.benchmark(sorted(Path("configs/compare").glob("*.yaml")), "fer2013",
    ...                          budget_minutes=8)  # doctest: +SKIP
    """
    engine = research("vitfer.evaluation.benchmark", "benchmark")
    return engine.benchmark(recipes, data, out, engine.Budget(epochs=budget_epochs, minutes=budget_minutes),
                            overrides=_overrides(overrides), final_test=final_test)


def data_stats(path: str | Path, kind: str = "auto", duplicates: bool = True, on_error: str = "raise",
               plot: str | Path | None = None):
    """Class counts per split, image sizes, duplicates across splits and sharpness per split (``vitfer data
    stats``)."""
    return research("vitfer.data.stats", "data stats").data_stats(path, kind=kind, duplicates=duplicates,
                                                                  on_error=on_error, plot=plot)


def data_merge(paths: list[str | Path], out: str | Path, num_classes: int = 7, seed: int = 0,
               on_error: str = "raise", exist_ok: bool = False):
    """Merge data sets into one manifest over the 7- or 8-class label set, written whole to ``out`` (never over
    an existing file unless ``exist_ok``); returns it."""
    from vitfer.runtime.rows import check_output_path

    check_output_path(Path(out), exist_ok, "--out")
    readers = research("vitfer.data.readers", "data merge")
    manifest = research("vitfer.data.manifest", "data merge")
    merged = manifest.merge_manifests([readers.read_dataset(p, on_error=on_error, seed=seed) for p in paths],
                                      num_classes)
    manifest.write_manifest_csv(merged, out)
    return merged


def data_cache(path: str | Path, out: str | Path, size: int = 48, channels: int = 1, num_classes: int = 7,
               on_error: str = "raise", exist_ok: bool = False):
    """Decode every face of a data set once into a cache file that later runs load in seconds (never over an
    existing file unless ``exist_ok``); returns it."""
    from vitfer.runtime.rows import check_output_path

    check_output_path(Path(out), exist_ok, "--out")
    readers = research("vitfer.data.readers", "data cache")
    cache_module = research("vitfer.data.cache", "data cache")
    cache = cache_module.build_cache(readers.read_dataset(path, on_error=on_error), size, channels, num_classes,
                                     on_error)
    cache.save(out)
    return cache
