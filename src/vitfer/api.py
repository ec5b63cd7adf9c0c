"""The Python API, one function per ``vitfer`` verb, with the command's arguments and defaults.

>>> import vitfer
>>> run = vitfer.train("configs/cnn3.yaml", data="fer2013", epochs=3)       # doctest: +SKIP
>>> vitfer.evaluate(run, data="fer2013", split="val")["plain"]["accuracy"]  # doctest: +SKIP
>>> vitfer.Predictor(run).predict("photo.jpg").save("photo_annotated.jpg")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vitfer.faces.detectors import DEFAULT_DETECTOR
from vitfer.config import ConfigError


def _override(key: str, value: Any) -> str:
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def _overrides(overrides: dict[str, Any] | list[str] | None) -> list[str]:
    """``{"train.lr": 3e-4}`` or ``["train.lr=3e-4"]`` (as ``--set`` gives them) as ``key=value`` lines."""
    if isinstance(overrides, dict):
        return [_override(k, v) for k, v in overrides.items()]
    return list(overrides or [])


def train(config: str | Path | None = None, data: str | Path | None = None, model: str | None = None,
          epochs: int | None = None, name: str | None = None, pretrained: str | Path | bool | None = None,
          resume: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None,
          verbose: bool = False,
          progress: bool = True) -> Path:
    """Train a model as ``vitfer train`` does; returns the run folder (``runs/<name>``).

    ``overrides`` takes any config key in dotted form, as a dict or as ``--set``'s ``key=value`` lines.

    >>> run = vitfer.train("configs/default.yaml", data="fer2013", epochs=5,
    ...                    overrides={"train.lr": 3e-4, "model.pretrained": "mobilenet_v2_1.0_224_quant.tflite"})
    ... # doctest: +SKIP
    """
    from vitfer.config import load_config
    from vitfer.training.run import train as run_training

    settings = _overrides(overrides)
    for key, value in (("data.path", data), ("model.name", model), ("train.epochs", epochs), ("name", name),
                       ("model.pretrained", pretrained)):
        if value is not None:
            settings.append(_override(key, str(value) if isinstance(value, Path) else value))
    return run_training(load_config(config, settings), resume=resume, progress=progress, verbose=verbose)


def explain(model: str | Path = "default", source: str | Path | None = None, data: str | Path | None = None,
            out: str | Path = "runs/explain", method: str = "rollout", split: str = "val", per_class: int = 64,
            detector: str = DEFAULT_DETECTOR, threshold: float = 0.5, detector_model: str | Path | None = None,
            min_face: int = 24, exist_ok: bool = False) -> list[dict] | Path:
    """Where the model looks: one overlay per face of ``source`` (a list of rows), or with ``data`` the per-class
    mean maps over one split (the PNG's path). ``out`` is taken afresh (runs/explain2, ...) unless ``exist_ok``.

    >>> rows = vitfer.explain("default", "photo.jpg", method="gradcam")  # doctest: +SKIP
    """
    from vitfer.explanations.run import class_mean_maps, explain_images
    from vitfer.runs import increment_path

    out = increment_path(out, exist_ok)
    if data is not None:
        return class_mean_maps(model, data, split, Path(out) / f"class_maps_{method}.png", method=method,
                               per_class=per_class)
    if source is None:
        raise ConfigError("give an image, folder or glob to explain, or data=PATH for per-class maps")
    return explain_images(None if str(model) == "default" else model, source, out, method=method,
                          detector=detector, threshold=threshold, detector_model=detector_model, min_face=min_face)


def compare(runs: list[str | Path], split: str = "val", out: str | Path = "runs/compare", exist_ok: bool = False):
    """One table over evaluated runs (``comparison.md`` and ``.png`` in ``out``, taken afresh unless ``exist_ok``);
    returns it as a DataFrame, its folder in ``attrs['out']``.

    >>> table = vitfer.compare(["runs/cnn3", "runs/default-hybrid-vit-tiny"])  # doctest: +SKIP
    """
    from vitfer.evaluation.compare import compare_runs
    from vitfer.runs import increment_path

    out = increment_path(out, exist_ok)
    table = compare_runs(runs, out, split=split)
    table.attrs["out"] = str(out)
    return table


def benchmark(recipes: list[str | Path], data: str | Path, budget_minutes: float | None = None,
              budget_epochs: int | None = None, out: str | Path = "runs/benchmark", final_test: bool = True,
              overrides: dict[str, Any] | list[str] | None = None):
    """Train every recipe under one budget and tabulate them (see ``vitfer benchmark``); resumes in ``out``.

    >>> table = vitfer.benchmark(sorted(Path("configs/compare").glob("*.yaml")), "fer2013",
    ...                          budget_minutes=8)  # doctest: +SKIP
    """
    from vitfer.evaluation.benchmark import Budget, benchmark as run_benchmark

    return run_benchmark(recipes, data, out, Budget(epochs=budget_epochs, minutes=budget_minutes),
                         overrides=_overrides(overrides), final_test=final_test)
