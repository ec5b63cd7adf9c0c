"""A LightningDataModule over an in-memory FaceCache; augmentation runs on whole batches after transfer."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vitfer.data.balance import oversample_minority, undersample_majority, weighted_sampler
from vitfer.data.cache import FaceCache
from vitfer.data.readers import DataError
from vitfer.data.transforms import AugmentConfig, BatchAugment
from vitfer.preprocess import Preprocess
from vitfer.config import ConfigError


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


def _stack(batch):
    return batch if isinstance(batch, tuple) else torch.utils.data.default_collate(batch)


class FERDataModule(L.LightningDataModule):
    """Train / val / test loaders over cached faces; balancing touches the train split only."""

    def __init__(self, cache: FaceCache, preprocess: Preprocess, augment: AugmentConfig | None = None,
                 batch_size: int = 128, balance: str = "none", oversample_factor: float = 2.0,
                 undersample_limit: int = 5000, seed: int = 0, eval_batch_size: int = 512) -> None:
        super().__init__()
        if balance not in ("none", "weights", "oversample", "undersample", "sampler"):
            raise ConfigError(f"unknown balance {balance!r}; use none, weights, oversample, undersample or sampler")
        self.cache = cache
        self.preprocess = preprocess
        self.augmenter = BatchAugment(augment or AugmentConfig(), cache.images.shape[-1])
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.balance = balance
        self.seed = seed
        train = cache.indices("train")
        if len(train) == 0:
            raise DataError("the data set has no train split")
        labels = cache.labels.numpy()
        if balance == "oversample":
            train = oversample_minority(train, labels, oversample_factor, seed)
        elif balance == "undersample":
            train = undersample_majority(train, labels, undersample_limit, seed)
        self.train_rows = train

    def _loader(self, split: str) -> DataLoader:
        rows = self.cache.indices(split)
        if len(rows) == 0:
            raise DataError(f"the data set has no {split} split")
        return DataLoader(CacheRows(self.cache, rows), batch_size=self.eval_batch_size, shuffle=False,
                          collate_fn=_stack)

    def train_dataloader(self) -> DataLoader:
        dataset = CacheRows(self.cache, self.train_rows)
        generator = torch.Generator().manual_seed(self.seed + (self.trainer.current_epoch if self.trainer else 0))
        if self.balance == "sampler":
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
        x = self.preprocess.to_float(images)
        if self.trainer is not None and self.trainer.training:
            x = self.augmenter(x)
        else:
            x = self.preprocess.lowpass(x)
        return self.preprocess.finish(x), *targets
