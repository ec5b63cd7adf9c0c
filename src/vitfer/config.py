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
    blur_sigma: tuple[float, float] = (0.1, 1.5)  # its sigma's range, pixels of the cached face
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
    balance: str = "none"  # none | weights | oversample | undersample | sampler, or several: undersample+oversample+weights
    balance_power: float = 1.0  # with balance=weights: 0.5 = square-root class weights
    oversample_factor: float = 2.0
    undersample_limit: int = 5000
    undersample_fraction: float = 0.0  # > 0: keep this fraction of each majority class instead of the limit
    expand_copies: int = 0  # offline augmentation: this many augmented copies of every training face
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
    # data sets of whole photos (JAFFE, CK+ frames, class folders of photos): crop each to its largest face as
    # `predict` does (yunet | ssd | haar | mtcnn; "" = the images are face crops already), with this margin, which
    # the model file keeps as its input contract's crop margin
    detector: str = ""
    face_margin: float = 0.2
    # offline soft targets of trained teachers for the train split (`vitfer.training.distill.write_teacher_targets`);
    # each training face learns (1 - train.distill_alpha) of its label and train.distill_alpha of the teachers'
    teacher_targets: str = ""


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
    focal_alpha: float = 1.0  # focal loss's alpha: a constant factor on the loss (Lin et al. use 0.25)
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
    warmup_start_factor: float = 0.0  # the warm-up ramps the lr linearly from lr x this to lr (0.1: "x10")
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


#: bounds of numeric settings, checked when a recipe is read (lowest, highest; None: unbounded)
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.num_classes": (2, 8), "data.size": (8, 1024), "data.channels": (1, 3), "data.balance_power": (0, 4),
    "data.oversample_factor": (1, 100), "data.undersample_limit": (1, None), "data.expand_per_class": (0, 1_000_000),
    "data.folds": (0, 1000), "data.fold": (0, 999), "data.face_margin": (0, 2),
    "data.undersample_fraction": (0, 1), "data.expand_copies": (0, 1000),
    "model.img_size": (8, 1024), "model.head_dropout": (0, 1), "model.drop_path_rate": (0, 1),
    "model.gradual_unfreeze_every": (0, None),
    "augment.hflip": (0, 1), "augment.rotation": (0, 180), "augment.translate": (0, 1), "augment.resized_crop": (0, 1),
    "augment.brightness": (0, 1), "augment.contrast": (0, 1), "augment.blur": (0, 1), "augment.erasing": (0, 1),
    "augment.mixup": (0, None), "augment.cutmix": (0, None),
    "train.epochs": (1, 100_000), "train.batch_size": (1, 1_000_000), "train.lr": (0, 10), "train.weight_decay": (0, 10),
    "train.momentum": (0, 1), "train.focal_alpha": (0, 100), "train.warmup_start_factor": (0, 1), "train.sam_rho": (0, 10), "train.layer_decay": (0, 1), "train.focal_gamma": (0, 100),
    "train.label_smoothing": (0, 1), "train.aux_weight": (0, 100), "train.distill_alpha": (0, 1),
    "train.distill_temperature": (0, 100), "train.warmup_epochs": (0, 100_000), "train.step_size": (1, None),
    "train.step_gamma": (0, 1), "train.plateau_patience": (0, None), "train.plateau_factor": (0, 1),
    "train.min_lr": (0, 10), "train.early_stop_patience": (0, None), "train.ema_decay": (0, 1),
    "train.num_nodes": (1, None), "train.threads": (1, 1024),
}


def _fill(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a mapping of keys, got {type(values).__name__}")
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
        else:
            kwargs[key] = _checked(value, str(known[key].type), f"{where}{key}")
    return cls(**kwargs)


def _checked(value: Any, annotation: str, where: str) -> Any:
    """``value`` as the field's type wants it (numbers YAML left as text, such as '3e-4', become numbers), and
    within its range where one is known; else a ConfigError naming the key."""
    if annotation.startswith("Optional["):
        annotation = annotation[len("Optional["):-1] + " | None"
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise ConfigError(f"config key {where} needs a value")
    if "str" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # a folder called 2024, which YAML reads as a number
    if isinstance(value, str) and any(k in ("float", "int") for k in kinds) and "str" not in kinds:
        try:
            value = float(value) if "float" in kinds else int(value)
        except ValueError:
            raise ConfigError(f"config key {where} needs a number, got {value!r}") from None
    fits = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
            "dict": lambda v: isinstance(v, dict), "list[str]": lambda v: isinstance(v, list) and all(
                isinstance(item, str) for item in v),
            "tuple[float, float]": lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(
                isinstance(item, (int, float)) and not isinstance(item, bool) for item in v)}
    checks = [fits[k] for k in kinds if k in fits]
    if checks and not any(check(value) for check in checks):
        wanted = " or ".join(k for k in kinds if k != "None")
        raise ConfigError(f"config key {where} needs {wanted}, got {value!r} ({type(value).__name__})")
    if "tuple[float, float]" in kinds:
        value = tuple(value)
    low, high = RANGES.get(where, (None, None))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
            (low is not None and value < low) or (high is not None and value > high)):
        bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        raise ConfigError(f"config key {where} must be {bounds}, got {value}")
    return value


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a Config, rejecting keys that do not exist (with a close-match hint)."""
    return _fill(Config, values or {}, "")


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error; tags that build Python objects are named as what safe loading refuses."""
    text = str(err)
    if "python/" in text or "could not determine a constructor" in text:
        return ("it uses a tag that would build Python objects (!!python/...); recipes are read with YAML's safe "
                "loader, which refuses them")
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(err, 'problem', None) or text.splitlines()[0]}{where}"


def set_dotted(values: dict[str, Any], dotted: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as YAML) to a raw config dict."""
    if "=" not in dotted:
        raise ConfigError(f"override {dotted!r} must look like section.key=value")
    key, raw = dotted.split("=", 1)
    node = values
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {'.'.join(parts[:depth + 1])} is a value, not a section")
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {dotted!r}: its value is not valid YAML ({_yaml_problem(err)})") from None


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
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: {_yaml_problem(err)}") from None
    for override in overrides or []:
        set_dotted(values, override)
    return config_from_dict(values)
