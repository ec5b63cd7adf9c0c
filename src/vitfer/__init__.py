"""vitfer: facial expression recognition with Vision Transformers.

Every verb of the ``vitfer`` command is a function here, with the same arguments (loaded lazily, so
``import vitfer`` stays fast): ``train``, ``evaluate``, ``explain``, ``compare``, ``benchmark``, ``data_stats``,
``export_onnx``; and ``Predictor`` for ``predict``; ``build_model``, ``load_model``, ``load_config``.

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
    "build_model": "vitfer.models.factory",
    "load_model": "vitfer.models.checkpoint",
    "train": "vitfer.api",
    "explain": "vitfer.api",
    "compare": "vitfer.api",
    "benchmark": "vitfer.api",
    "data_stats": "vitfer.data.stats",
    "load_config": "vitfer.config",
    "evaluate": "vitfer.evaluation.evaluate",
    "export_onnx": "vitfer.models.export",
}
__all__ = [*_EXPORTS, "__version__"]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitfer' has no attribute {name!r}")
