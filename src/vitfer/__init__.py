"""vitfer: facial expression recognition with Vision Transformers.

The main entry points are importable from the top level (loaded lazily, so ``import vitfer`` stays fast):
``Predictor``, ``build_model``, ``load_model``, ``train``, ``load_config``, ``evaluate``, ``export_onnx``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Predictor": "vitfer.inference.predictor",
    "build_model": "vitfer.models.factory",
    "load_model": "vitfer.models.checkpoint",
    "train": "vitfer.training.run",
    "load_config": "vitfer.config",
    "evaluate": "vitfer.evaluation.evaluate",
    "export_onnx": "vitfer.inference.export",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitfer' has no attribute {name!r}")
