"""The data path of training: read -> merge -> cache -> FER+ votes -> offline expansion -> balance, in one
LightningDataModule over an in-memory FaceCache; augmentation runs on whole batches after transfer."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import logging
from pathlib import Path

import pandas as pd

from vitfer.config import Config
from vitfer.errors import ConfigError, DataError
from vitfer.data.balance import class_weights, oversample_minority, undersample_majority, weighted_sampler
from vitfer.data.cache import FaceCache, cached, face_crops
from vitfer.data.expand import expand_training_split
from vitfer.data.manifest import merge_manifests
from vitfer.data.readers import read_dataset
from vitfer.config import AugmentConfig
from vitfer.data.transforms import BatchAugment
from vitfer.preprocess import Preprocess
from vitfer.models.inputs import finish, lowpass, to_float

log = logging.getLogger(__name__)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class CacheRows(Dataset):
    """Rows of a FaceCache as (uint8 images, labels, soft targets, auxiliary targets).

    Soft and auxiliary targets are B x 0 when the cache has none, so every batch has one shape.
    """

    def __init__(self, cache: FaceCache, rows: np.ndarray) -> None:
        self.images = cache.images
        self.labels = cache.labels
        none = torch.zeros(len(cache.labels), 0)
        self.soft = cache.soft if cache.soft is not None else none
        self.aux = cache.aux if cache.aux is not None else none
        self.rows = torch.as_tensor(rows, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Batch:
        row = self.rows[i]
        return self.images[row], self.labels[row], self.soft[row], self.aux[row]

    def __getitems__(self, indices: list[int]) -> Batch:
        rows = self.rows[torch.as_tensor(indices)]
        return self.images[rows], self.labels[rows], self.soft[rows], self.aux[rows]


def decoded_faces(config: Config) -> FaceCache:
    """Read and merge the configured data set(s) and decode their faces, from the on-disk cache when
    ``data.cache_dir`` holds it (built and saved there when it does not)."""
    data = config.data
    if not data.path:
        raise ConfigError("no data path: set data.path in the config or pass --data PATH")
    manifests = [read_dataset(p, kind=data.kind if i == 0 else "auto", on_error=data.on_error, seed=config.seed,
                              ferplus_protocol=data.ferplus_protocol, folds=data.folds if i == 0 else 0,
                              fold=data.fold, group_by=(data.group_by or None) if i == 0 else None)
                 for i, p in enumerate([data.path, *data.extra_paths])]
    manifest = merge_manifests(manifests, data.num_classes)  # also drops labels outside the class set, counted
    cache_dir = Path(data.cache_dir).expanduser() if data.cache_dir else None
    return cached(manifest, cache_dir, data.size, data.channels, data.num_classes, data.on_error,
                  face_crops(data.detector, data.face_margin))



def load_faces(config: Config) -> FaceCache:
    """The faces of a training recipe (``decoded_faces``), with FER+ votes joined for an auxiliary head and the
    train split expanded offline when asked (after the split: no copy of a validation or test face reaches
    training)."""
    data = config.data
    cache = decoded_faces(config)
    if data.aux_ferplus:
        from vitfer.data.ferplus import join_ferplus_votes
        from vitfer.labels import EMOTIONS_8

        items = pd.DataFrame({"item": cache.items})
        cache.aux = torch.from_numpy(join_ferplus_votes(items, data.aux_ferplus, data.aux_ferplus_names,
                                                        data.ferplus_protocol, data.on_error))
        cache.aux_names = EMOTIONS_8
    expand = data.expand_per_class > 0 or data.expand_copies > 0
    if data.teacher_targets and expand:
        raise ConfigError("data.teacher_targets and offline expansion (data.expand_per_class, expand_copies) do not "
                          "combine: the teachers have no targets for augmented copies")
    if data.teacher_targets:
        from vitfer.data.teacher_targets import join_teacher_targets

        cache = join_teacher_targets(cache, data.teacher_targets, config.train.distill_alpha,
                                     config.train.label_smoothing)
    if expand:
        cache = expand_training_split(cache, data.expand_per_class, config.augment, seed=config.seed,
                                      copies=data.expand_copies)
    return cache


def lowpass_sigma_for(cache: FaceCache, setting: str | float | bool) -> float:
    """The input low-pass sigma (48-px face pixels) for inputs outside training; 0 unless asked for.

    ``warn`` (the default) only measures: a training split much blurrier than validation is reported, since a
    model trained on it will meet sharper faces. ``auto`` also low-passes every input outside training to match
    (stored in the checkpoint); a number sets the sigma; ``off`` (or YAML's false) skips the check.
    """
    if isinstance(setting, bool) or setting == "off":
        if setting is True:
            raise ConfigError("data.match_sharpness must be warn, auto, off or a number, got true")
        return 0.0
    if isinstance(setting, (int, float)):
        return float(setting)
    if setting not in ("warn", "auto"):
        raise ConfigError(f"data.match_sharpness must be warn, auto, off or a number, got {setting!r}")
    from vitfer.data.sharpness import sharpness_mismatch

    sigma = round(sharpness_mismatch(cache) * 48.0 / cache.images.shape[-1], 2)
    if sigma > 0 and setting == "warn":
        log.warning("the train split is much blurrier than the validation split (a Gaussian of sigma %.2f px of a "
                    "48-px face maps validation onto train): the model will learn detail that its inputs have and "
                    "training faces lack. Fix the data if you can; data.match_sharpness=auto low-passes inputs "
                    "outside training to match.", sigma)
        return 0.0
    if sigma > 0:
        log.warning("the train split is much blurrier than the validation split; inputs outside training will be "
                    "low-passed with a Gaussian of sigma %.2f px (of a 48-px face).", sigma)
    return sigma


BALANCE_MODES = ("weights", "oversample", "undersample", "sampler")


def balance_modes(balance: str) -> set[str]:
    """The modes of a ``data.balance`` setting: none, one of BALANCE_MODES, or several joined by '+' (e.g.
    ``undersample+oversample+weights``: fewer faces of the largest classes, repeats of the smallest, and class
    weights in the loss)."""
    modes = set() if balance == "none" else set(balance.split("+"))
    if modes - set(BALANCE_MODES):
        raise ConfigError(f"unknown balance {balance!r}; use none, {', '.join(BALANCE_MODES)}, or several joined "
                          "by +")
    return modes


def _stack(batch):
    return batch if isinstance(batch, tuple) else torch.utils.data.default_collate(batch)


class FERDataModule(L.LightningDataModule):
    """Train / val / test loaders over cached faces; balancing touches the train split only."""

    def __init__(self, cache: FaceCache | None = None, preprocess: Preprocess | None = None,
                 augment: AugmentConfig | None = None, batch_size: int = 128, balance: str = "none",
                 oversample_factor: float = 2.0, undersample_limit: int = 5000, seed: int = 0,
                 eval_batch_size: int = 512, config: Config | None = None, undersample_fraction: float = 0.0) -> None:
        """Faces from ``cache``, or read as ``config`` says when ``setup`` runs (see ``from_config``).
        ``preprocess`` (the model's input contract) may be set later, before the first batch."""
        super().__init__()
        balance_modes(balance)  # a clear error for an unknown one, before any face is read
        if cache is None and config is None:
            raise ConfigError("FERDataModule needs faces: a FaceCache, or a config to read them with")
        self.cache, self.config, self.preprocess = cache, config, preprocess
        self.augment = augment or AugmentConfig()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.balance, self.oversample_factor, self.undersample_limit = balance, oversample_factor, undersample_limit
        self.undersample_fraction = undersample_fraction
        self.seed = seed
        self.train_rows: np.ndarray | None = None
        if cache is not None:
            self.setup()

    @classmethod
    def from_config(cls, config: Config) -> FERDataModule:
        """The data of a training recipe: its data section (paths, merge, cache, FER+ votes, expansion, balance),
        its augmentation, batch size and seed."""
        data = config.data
        return cls(None, None, config.augment, config.train.batch_size, data.balance, data.oversample_factor,
                   data.undersample_limit, config.seed, config=config, undersample_fraction=data.undersample_fraction)

    def prepare_data(self) -> None:
        """Decode the faces into the on-disk cache once per node (Lightning calls this on one process of each
        machine; the other processes' ``setup`` then loads the cache file instead of decoding again)."""
        if self.cache is None and self.config is not None and self.config.data.cache_dir:
            decoded_faces(self.config)

    def setup(self, stage: str | None = None) -> None:
        """Read the faces (once) and choose the train rows (balancing touches the train split only)."""
        if self.train_rows is not None:
            return
        if self.cache is None:
            self.cache = load_faces(self.config)
        self.augmenter = BatchAugment(self.augment, self.cache.images.shape[-1])
        train = self.cache.indices("train")
        if len(train) == 0:
            raise DataError("the data set has no train split")
        labels = self.cache.labels.numpy()
        modes = balance_modes(self.balance)
        if "undersample" in modes:  # first, so oversampling counts the classes as they are after it
            train = undersample_majority(train, labels, self.undersample_limit, self.seed, self.undersample_fraction)
        if "oversample" in modes:
            train = oversample_minority(train, labels, self.oversample_factor, self.seed)
        self.train_rows = train

    def class_weights(self, power: float = 0.5) -> torch.Tensor:
        """Loss weights from the train split's class counts (``power`` 0.5: square-root inverse frequency)."""
        train = self.cache.labels[torch.from_numpy(self.cache.indices("train"))].numpy()
        return class_weights(train, len(self.cache.class_names), power)

    def lowpass_sigma(self, setting: str | float | bool) -> float:
        """The input low-pass for inputs outside training (see ``lowpass_sigma_for``)."""
        return lowpass_sigma_for(self.cache, setting)

    def _loader(self, split: str) -> DataLoader:
        rows = self.cache.indices(split)
        if len(rows) == 0:
            raise DataError(f"the data set has no {split} split")
        return DataLoader(CacheRows(self.cache, rows), batch_size=self.eval_batch_size, shuffle=False,
                          collate_fn=_stack)

    def train_dataloader(self) -> DataLoader:
        dataset = CacheRows(self.cache, self.train_rows)
        generator = torch.Generator().manual_seed(self.seed + (self.trainer.current_epoch if self.trainer else 0))
        if "sampler" in balance_modes(self.balance):
            sampler = weighted_sampler(self.cache.labels[dataset.rows].numpy(), seed=self.seed)
            return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, drop_last=True,
                              collate_fn=_stack)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          generator=generator, collate_fn=_stack)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, *targets = batch
        x = to_float(self.preprocess, images)
        if self.trainer is not None and self.trainer.training:
            x = self.augmenter(x)
        else:
            x = lowpass(self.preprocess, x)
        return finish(self.preprocess, x), *targets
