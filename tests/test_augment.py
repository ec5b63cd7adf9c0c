import numpy as np
import torch

from vitfer.data.cache import build_cache
from vitfer.data.datamodule import FERDataModule
from vitfer.data.expand import expand_training_split
from vitfer.data.readers import read_dataset
from vitfer.config import AugmentConfig
from vitfer.data.transforms import BatchAugment
from vitfer.preprocess import Preprocess
from vitfer.data.cache import pixel_hashes


def test_augment_keeps_shape_range_and_varies_per_sample():
    torch.manual_seed(0)
    config = AugmentConfig(hflip=0.5, rotation=15, translate=0.1, scale=(0.9, 1.1), resized_crop=0.5,
                           brightness=0.3, contrast=0.3, blur=0.5, erasing=0.5)
    x = torch.rand(1, 1, 48, 48).repeat(16, 1, 1, 1)
    out = BatchAugment(config, 48)(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert len({round(float(v), 5) for v in out.mean(dim=(1, 2, 3))}) > 8  # random per sample, not per batch


def test_no_augmentation_is_identity():
    x = torch.rand(3, 1, 16, 16)
    config = AugmentConfig(hflip=0, rotation=0, translate=0, scale=(1.0, 1.0), brightness=0, contrast=0)
    assert torch.equal(BatchAugment(config, 16)(x), x)


def test_expansion_reaches_target_from_train_only(fer_folder):
    cache = build_cache(read_dataset(fer_folder))
    expanded = expand_training_split(cache, per_class=20, seed=0)
    train = expanded.indices("train")
    assert np.bincount(expanded.labels[train].numpy()).tolist() == [20] * 7
    assert len(expanded.indices("val")) == 14 and len(expanded.indices("test")) == 14
    copies = expanded.items[len(cache):]
    parents = {c.removeprefix("augmented:") for c in copies}
    train_items = set(cache.items[cache.indices("train")])
    assert parents <= train_items


def test_no_augmented_copy_of_a_held_out_face_reaches_training(fer_folder):
    """The leak test: every face in training, original or augmented, derives from a train face only."""
    cache = build_cache(read_dataset(fer_folder))
    held_out = set(pixel_hashes(cache.images[torch.from_numpy(np.concatenate([cache.indices("val"),
                                                                             cache.indices("test")]))]))
    expanded = expand_training_split(cache, per_class=30, seed=1,
                                     augment=AugmentConfig(hflip=0.0, rotation=0, translate=0, scale=(1.0, 1.0),
                                                           brightness=0, contrast=0))
    # With identity augmentation every copy equals its parent: none may equal a held-out face.
    module = FERDataModule(expanded, Preprocess(img_size=48, in_channels=1), balance="oversample")
    train_hashes = set(pixel_hashes(expanded.images[torch.as_tensor(module.train_rows)]))
    assert not (train_hashes & held_out)
    held_rows = set(expanded.indices("val")) | set(expanded.indices("test"))
    assert not (set(module.train_rows) & held_rows)
    # and batches seen in training come from train rows only
    seen = torch.cat([labels for _, labels, *_targets in module.train_dataloader()])
    assert len(seen) == (len(module.train_rows) // module.batch_size) * module.batch_size


def test_datamodule_augments_only_when_training(fer_folder):
    cache = build_cache(read_dataset(fer_folder))
    module = FERDataModule(cache, Preprocess(img_size=32, in_channels=3), batch_size=8)
    images, labels, *_targets = next(iter(module.val_dataloader()))
    x, y = module.on_after_batch_transfer((images, labels), 0)
    assert x.shape == (14, 3, 32, 32) and torch.equal(y, labels)
    x2, _ = module.on_after_batch_transfer((images, labels), 0)
    assert torch.equal(x, x2)  # no trainer attached -> evaluation path, deterministic
