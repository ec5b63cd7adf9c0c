"""vitfer: facial expression recognition with Vision Transformers.

Every verb of the ``vitfer`` command is a function here, with the same arguments (``vitfer.api``, loaded lazily,
so ``import vitfer`` stays fast): ``predict``, ``serve``, ``models`` (the runtime: ONNX Runtime, no torch);
``train``, ``evaluate``, ``calibrate``, ``export``, ``explain``, ``compare``, ``benchmark``, ``data_stats``,
``data_merge``, ``data_cache`` (the research floor: ``pip install 'vitfer[train]'``). ``Predictor`` classifies
images and streams in Python; ``build_model``, ``load_model``, ``load_config``, ``export_onnx`` serve research.

>>> import vitfer
>>> faces = vitfer.Predictor().predict("photo.jpg")  # doctest: +SKIP
>>> [(face.label, round(face.confidence, 2)) for face in faces]  # doctest: +SKIP
[('happy', 0.93)]
"""

from __future__ import annotations

import importlib

from vitfer.version import __version__

_EXPORTS = {
    "Predictor": "vitfer.runtime.predictor",
    **{verb: "vitfer.api" for verb in ("predict", "serve", "models", "train", "evaluate", "calibrate", "export",
                                       "explain", "compare", "benchmark", "data_stats", "data_merge", "data_cache",
                                       "teacher_targets")},
    "build_model": "vitfer.models.factory",
    "load_model": "vitfer.models.checkpoint",
    "load_config": "vitfer.config",
    "export_onnx": "vitfer.models.export",
}
__all__ = [*_EXPORTS, "__version__"]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitfer' has no attribute {name!r}")
