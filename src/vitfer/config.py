"""Experiment configuration: nested dataclasses loaded from YAML, with unknown keys rejected by name."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vitfer.errors import ConfigError


@dataclass
class AugmentConfig:
    """Per-sample random augmentation applied to whole batches at cache resolution."""

    hflip: float = 0.5
    rotation: float = 10.0  # degrees, +/-
    translate: float = 0.1  # fraction of the side
    scale: tuple[float, float] = (0.9, 1.1)  # zoom
    resized_crop: float = 0.0  # probability of a random resized crop (scale 0.7-1)
    brightness: float = 0.2
    contrast: float = 0.2
    blur: float = 0.0  # probability of a Gaussian blur
    erasing: float = 0.0  # probability of random erasing
    mixup: float = 0.0  # mixup alpha (0 = off)
    cutmix: float = 0.0  # cutmix alpha (0 = off)


@dataclass
class DataConfig:
    path: str = ""
    kind: str = "auto"  # see vitfer.data.readers.dataset_kinds()
    extra_paths: list[str] = field(default_factory=list)  # merged with path (e.g. CK+48, AffectNet)
    num_classes: int = 7
    size: int = 48  # cache resolution
    channels: int = 1  # 1 = grayscale cache, 3 = colour
    cache_dir: str | None = "~/.cache/vitfer"
    on_error: str = "raise"  # raise | skip
    balance: str = "none"  # none | weights | oversample | undersample | sampler
    balance_power: float = 1.0  # with balance=weights: 0.5 = square-root class weights
    oversample_factor: float = 2.0
    undersample_limit: int = 5000
    expand_per_class: int = 0  # offline augmentation of the train split to N per class
    ferplus_protocol: str = "crossentropy"  # FER+ training targets: majority | probability | crossentropy | multi_target
    # FER+ votes of the same faces as an auxiliary 8-class head (FER2013 folder layout): FER+ folder + name mapping
    aux_ferplus: str = ""
    aux_ferplus_names: str = ""
    # train split blurrier than val? "warn" (measure and report), "auto" (also low-pass inputs outside training to
    # match; sharpness only, no labels), "off", or a Gaussian sigma in 48-px face pixels
    match_sharpness: str | float = "warn"
    folds: int = 0  # > 1: k-fold cross-validation, fold ``fold`` is the test split (CK+, JAFFE are reported so)
    fold: int = 0
    group_by: str = ""  # e.g. "subject" (CK+, JAFFE): no subject in two splits


@dataclass
class ModelSection:
    name: str = "hybrid_vit_tiny"
    img_size: int | None = None
    head: str = "linear"
    head_dropout: float = 0.3
    drop_path_rate: float = 0.1
    pretrained: str | bool | None = None
    freeze: str = "none"  # none | head | blocks:N | full
    gradual_unfreeze_every: int = 0  # >0: head only first, then one more block every N epochs
    kwargs: dict = field(default_factory=dict)


@dataclass
class TrainSection:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    optimizer: str = "adamw"  # adamw | sgd
    momentum: float = 0.9
    sam: bool = False
    sam_rho: float = 0.05
    layer_decay: float | None = None  # e.g. 0.75: lower lr for earlier ViT blocks
    loss: str = "ce"  # ce | focal
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    aux_weight: float = 1.0  # weight of the auxiliary head's loss (data.aux_ferplus)
    # A trained model (file, run folder or shipped name) to learn from. A student with a distillation token
    # (deit_tiny_distilled_patch16_224) learns its predicted labels there (DeiT's hard distillation); any other
    # student learns its probabilities at distill_temperature, distill_alpha of the main head's loss (Hinton)
    teacher: str = ""
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    scheduler: str = "cosine"  # cosine | step | plateau | none
    warmup_epochs: float = 0.0
    step_size: int = 10
    step_gamma: float = 0.1
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    min_lr: float = 1e-6
    early_stop_patience: int = 0  # 0 = off
    monitor: str = "val_acc"  # val_acc | val_f1 | val_loss
    ema_decay: float = 0.0  # 0 = off, e.g. 0.999
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: str | int = "auto"
    strategy: str = "auto"  # ddp for several GPUs or processes
    num_nodes: int = 1  # machines in a multi-node run (torchrun or SLURM sets the rest)
    threads: int | None = None
    limit_train_batches: int | float | None = None  # for smoke tests
    limit_val_batches: int | float | None = None


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainSection = field(default_factory=TrainSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fill(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown config key '{where}{key}'{hint}")
        default = known[key].default_factory() if known[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _fill(type(default), value or {}, f"{where}{key}.")
        elif isinstance(value, list) and key in ("scale",):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = _coerce(value, str(known[key].type), f"{where}{key}")
    return cls(**kwargs)


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Accept numbers that YAML left as strings (PyYAML reads '3e-4' as text) for float fields."""
    if isinstance(value, str) and "float" in annotation and "str" not in annotation:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"config key {where} needs a number, got {value!r}") from None
    return value


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a Config, rejecting keys that do not exist (with a close-match hint)."""
    return _fill(Config, values or {}, "")


def set_dotted(values: dict[str, Any], dotted: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as YAML) to a raw config dict."""
    if "=" not in dotted:
        raise ConfigError(f"override {dotted!r} must look like section.key=value")
    key, raw = dotted.split("=", 1)
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML recipe (or the defaults) and apply ``key=value`` overrides.

    >>> config = load_config("configs/cnn3.yaml", ["train.lr=3e-4", "data.path=fer2013"])  # doctest: +SKIP
    >>> config.train.lr                                                                   # doctest: +SKIP
    0.0003
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
    for override in overrides or []:
        set_dotted(values, override)
    return config_from_dict(values)
