"""Self-describing model files: the architecture, labels and preprocessing travel with the weights."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
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
class LoadedModel:
    """A model ready for inference, with everything needed to feed it."""

    model: FERNet
    preprocess: Preprocess
    labels: tuple[str, ...]
    meta: dict

    @property
    def name(self) -> str:
        return self.model.config.name


def describe(model: FERNet, preprocess: Preprocess, labels: tuple[str, ...], **extra) -> dict:
    """The metadata block stored under the ``vitfer`` key of every checkpoint."""
    return {"format": FORMAT_VERSION, "model_config": model.config.to_dict(),
            "preprocess": preprocess.to_dict(), "labels": list(labels), **extra}


def carried_meta(meta: dict) -> dict:
    """What a model file carries beside the description ``describe`` writes (config, metrics, card, calibration):
    pass it on when a model is rewritten (calibrated, shipped)."""
    return {k: v for k, v in meta.items() if k not in ("format", "model_config", "preprocess", "labels")}


def save_model(path: str | Path, model: FERNet, preprocess: Preprocess, labels: tuple[str, ...],
               half: bool = False, **extra) -> Path:
    """Write one compact file (weights + description) that ``load_model`` can read with no config."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    with atomic_write(path) as partial:
        torch.save({"vitfer": describe(model, preprocess, labels, **extra), "state_dict": state}, partial)
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
    """Read a vitfer model file or Lightning checkpoint and check it describes itself."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    data = safe_load(path, CheckpointError)
    if not isinstance(data, dict) or "vitfer" not in data:
        raise CheckpointError(f"{path} is not a vitfer checkpoint (no 'vitfer' description inside)")
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

    config = ModelConfig(**meta["model_config"])
    model = build_from_config(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in model_state(data).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit model {config.name!r}: {err}") from None
    model.to(device).eval()
    return LoadedModel(model, preprocess_of(meta), tuple(meta["labels"]), meta)


def preprocess_of(meta: dict) -> Preprocess:
    """The input contract of a checkpoint; files written before ``decode_size`` existed decoded faces at the
    training data's size (``config.data.size``)."""
    stored = dict(meta["preprocess"])
    if "decode_size" not in stored:
        data = (meta.get("config") or {}).get("data") or {}
        stored["decode_size"] = int(data.get("size") or stored.get("img_size") or 48)
    return Preprocess.from_dict(stored)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
