"""Self-describing model files: the architecture, labels and preprocessing travel with the weights."""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from vitfer.preprocess import Preprocess
from vitfer.runs import atomic_write
from vitfer.errors import VitferError

if TYPE_CHECKING:  # the model factory (and timm) load only when a model is built: prediction via ONNX needs none
    from vitfer.models.factory import FERNet

FORMAT_VERSION = 1


class CheckpointError(VitferError, ValueError):
    """A file that is not a usable vitfer checkpoint."""


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
            raise CheckpointError("the vitfer description lacks its model_config, preprocess or labels") from None
        config = data.get("config") or {}
        if "decode_size" not in stored:
            stored["decode_size"] = int((config.get("data") or {}).get("size") or stored.get("img_size") or 48)
        optional = {f.name for f in fields(cls)} - {"model_config", "preprocess", "labels"}
        return cls(model_config, Preprocess.from_dict(stored), labels,
                   **{k: data[k] for k in optional if data.get(k) is not None})


@dataclass
class LoadedModel:
    """A model ready for inference, with everything needed to feed it."""

    model: FERNet
    preprocess: Preprocess
    labels: tuple[str, ...]
    meta: ModelMeta

    @property
    def name(self) -> str:
        return self.model.config.name


def describe(model: FERNet, preprocess: Preprocess, labels: tuple[str, ...], **extra) -> ModelMeta:
    """A new model's description; ``extra`` fills ModelMeta's optional fields (config, metrics, ...)."""
    return ModelMeta(model.config.to_dict(), preprocess, tuple(labels), **extra)


def save_model(path: str | Path, model: FERNet, meta: ModelMeta, half: bool = False) -> Path:
    """Write one compact file (weights + description) that ``load_model`` can read with no config. The
    description's architecture is the model's own (a rewritten model may have changed, e.g. its built-in TTA)."""
    path = Path(path)
    meta = replace(meta, model_config=model.config.to_dict())
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    with atomic_write(path) as partial:
        torch.save({"vitfer": meta.to_dict(), "state_dict": state}, partial)
    return path


def resolve_model(model: str | Path | None) -> Path:
    """The one place a model reference becomes a file: None or 'default' and the other shipped names ->
    their file in the package; a run folder -> its ``model.pt`` (else ``checkpoints/best.ckpt``); a
    ``.pt``/``.ckpt``/``.onnx`` file as it is."""
    from vitfer.shipped import SHIPPED_MODELS

    name = "default" if model is None else str(model)
    if name in SHIPPED_MODELS:
        if not SHIPPED_MODELS[name].is_file():
            raise CheckpointError(f"the bundled {name!r} model is missing at {SHIPPED_MODELS[name]}; pass --model PATH")
        return SHIPPED_MODELS[name]
    path = Path(name).expanduser()
    if path.is_dir():
        for candidate in (path / "model.pt", path / "checkpoints" / "best.ckpt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path} is a folder without model.pt or checkpoints/best.ckpt")
    if not path.is_file():
        raise CheckpointError(f"model not found: {path} (give a shipped name: {', '.join(SHIPPED_MODELS)}, a run "
                              "folder, or a .pt/.ckpt/.onnx file)")
    return path


def safe_load(path: Path, error: type[Exception]) -> object:
    """``torch.load`` that never runs code from the file: tensors and plain data only (``weights_only``).

    A file that needs more (a pickled class, a ``__reduce__`` payload) is refused with ``error``, naming it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise error(f"refusing to load {path}: it holds Python objects beyond tensors and plain data, which could "
                    "run code when loaded; vitfer files never do. Re-save its state_dict if you trust it") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one clear message
        raise error(f"cannot read {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def read_checkpoint(path: str | Path) -> dict:
    """Read a vitfer model file or Lightning checkpoint and check it describes itself: its ``vitfer`` entry
    comes back as a ModelMeta."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    data = safe_load(path, CheckpointError)
    if not isinstance(data, dict) or "vitfer" not in data:
        raise CheckpointError(f"{path} is not a vitfer checkpoint (no 'vitfer' description inside)")
    try:
        data["vitfer"] = ModelMeta.from_dict(data["vitfer"])
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return data


def model_state(data: dict) -> dict[str, torch.Tensor]:
    """The FERNet weights of a checkpoint: EMA weights when the run kept them, else the live ones."""
    state = data["state_dict"]
    for prefix in ("ema.module.", "model."):
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked
    return state


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load any vitfer checkpoint (exported ``model.pt`` or Lightning ``.ckpt``) in eval mode.

    >>> loaded = load_model(resolve_model("runs/r18"))          # doctest: +SKIP
    >>> loaded.labels, loaded.preprocess.img_size               # doctest: +SKIP
    """
    data = read_checkpoint(path)
    meta = data["vitfer"]
    from vitfer.models.factory import ModelConfig, build_from_config

    config = ModelConfig(**meta.model_config)
    model = build_from_config(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in model_state(data).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit model {config.name!r}: {err}") from None
    model.to(device).eval()
    return LoadedModel(model, meta.preprocess, meta.labels, meta)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
