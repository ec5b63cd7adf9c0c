"""What a vitfer model file says about itself (``ModelMeta``): one schema for ``.pt``/``.ckpt`` files and the
``vitfer`` metadata entry of ``.onnx`` files. Imports no torch: the runtime reads ONNX files with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from vitfer.errors import ModelError
from vitfer.preprocess import Preprocess

FORMAT_VERSION = 1


@dataclass
class ModelMeta:
    """What a vitfer model file says about itself, in one schema for every writer (training, calibration, export,
    the ship tool) and reader (PyTorch and ONNX backends, ``evaluate``, ``serve``'s model card).

    Stored as a plain dict under the ``vitfer`` key of ``.pt``/``.ckpt`` files and as JSON in the ``vitfer``
    metadata entry of ``.onnx`` files.
    """

    model_config: dict  # vitfer.models.factory.ModelConfig as a dict: rebuilds the architecture
    preprocess: Preprocess  # the input contract
    labels: tuple[str, ...]  # class names, in the order of the model's outputs
    config: dict = field(default_factory=dict)  # the training recipe (data path, split, fold, ...)
    metrics: dict = field(default_factory=dict)  # the run's best epoch and its score
    calibration: dict = field(default_factory=dict)  # temperature folded into the head, and its fit
    card: dict = field(default_factory=dict)  # shipped models: what they were trained on, their figures
    format: int = FORMAT_VERSION

    @property
    def name(self) -> str:
        return self.model_config.get("name", "unknown")

    def to_dict(self) -> dict:
        values = asdict(self)
        values["preprocess"], values["labels"] = self.preprocess.to_dict(), list(self.labels)
        return values

    @classmethod
    def from_dict(cls, data: dict) -> ModelMeta:
        """Read a stored description; files written before ``decode_size`` existed decoded faces at the training
        data's size (``config.data.size``)."""
        try:
            stored, model_config, labels = dict(data["preprocess"]), dict(data["model_config"]), tuple(data["labels"])
        except (KeyError, TypeError):
            raise ModelError("the vitfer description lacks its model_config, preprocess or labels") from None
        config = data.get("config") or {}
        if "decode_size" not in stored:
            stored["decode_size"] = int((config.get("data") or {}).get("size") or stored.get("img_size") or 48)
        optional = {f.name for f in fields(cls)} - {"model_config", "preprocess", "labels"}
        return cls(model_config, Preprocess.from_dict(stored), labels,
                   **{k: data[k] for k in optional if data.get(k) is not None})
