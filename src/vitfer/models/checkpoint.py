"""Self-describing model files: the architecture, labels and preprocessing travel with the weights."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from vitfer.meta import ModelMeta
from vitfer.preprocess import Preprocess
from vitfer.files import atomic_write, safe_load
from vitfer.errors import ModelError

if TYPE_CHECKING:  # the model factory (and timm) load only when a model is built: prediction via ONNX needs none
    from vitfer.models.factory import FERNet

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


def read_checkpoint(path: str | Path) -> dict:
    """Read a vitfer model file or Lightning checkpoint and check it describes itself: its ``vitfer`` entry
    comes back as a ModelMeta."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    data = safe_load(path, ModelError)
    if not isinstance(data, dict) or "vitfer" not in data:
        raise ModelError(f"{path} is not a vitfer checkpoint (no 'vitfer' description inside)")
    try:
        data["vitfer"] = ModelMeta.from_dict(data["vitfer"])
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from None
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
    from vitfer.models.factory import build_from_config, checked_model_config

    config = checked_model_config(meta, path)  # every key and size checked before anything is built
    model = build_from_config(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in model_state(data).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{path}: weights do not fit model {config.name!r}: {err}") from None
    model.to(device).eval()
    with torch.no_grad():  # the head must give one score per label, or answers would be misread
        side = meta.preprocess.img_size
        outputs = model(torch.zeros(1, meta.preprocess.in_channels, side, side)).shape[-1]
    if outputs != len(meta.labels):
        raise ModelError(f"{path}: the model gives {outputs} scores, its description names {len(meta.labels)} "
                         f"labels ({', '.join(meta.labels)})")
    return LoadedModel(model, meta.preprocess, meta.labels, meta)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
