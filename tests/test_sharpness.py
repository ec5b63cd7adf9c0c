"""Sharpness per split: a blurred training split is detected, measured and matched by a low-pass on inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from tests.conftest import face_like
from vitfer.data.cache import FaceCache
from vitfer.data.datamodule import FERDataModule
from vitfer.data.sharpness import blur, laplacian_variance, sharpness_mismatch
from vitfer.config import AugmentConfig
from vitfer.models.inputs import lowpass, model_input
from vitfer.preprocess import Preprocess
from vitfer.data.datamodule import lowpass_sigma_for


def textured_cache(train_sigma: float, per_split: int = 40) -> FaceCache:
    """Noisy 48-px faces; the train split blurred by ``train_sigma``, val and test left sharp."""
    faces = np.stack([face_like(i % 7, seed=i)[None] for i in range(3 * per_split)])
    splits = np.array(["train"] * per_split + ["val"] * per_split + ["test"] * per_split, dtype=object)
    faces[:per_split] = blur(faces[:per_split], train_sigma)
    labels = torch.arange(3 * per_split) % 7
    return FaceCache(torch.from_numpy(faces), labels, splits, np.array(["s"] * len(splits), dtype=object),
                     np.array([f"face{i}" for i in range(len(splits))], dtype=object),
                     ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"), [])


def test_blurred_train_split_is_measured_close_to_its_true_blur():
    sigma = sharpness_mismatch(textured_cache(train_sigma=2.0))
    assert 1.6 <= sigma <= 2.4


def test_equally_sharp_splits_need_no_lowpass():
    cache = textured_cache(train_sigma=0.0)
    assert sharpness_mismatch(cache) == 0.0
    assert lowpass_sigma_for(cache, "auto") == 0.0


def test_default_setting_warns_but_never_lowpasses(caplog):
    cache = textured_cache(train_sigma=2.0)
    with caplog.at_level("WARNING"):
        assert lowpass_sigma_for(cache, "warn") == 0.0
    assert "blurrier" in caplog.text
    assert lowpass_sigma_for(cache, False) == 0.0  # YAML reads `off` as false


def test_config_setting_overrides_the_measurement():
    cache = textured_cache(train_sigma=2.0)
    assert lowpass_sigma_for(cache, "off") == 0.0
    assert lowpass_sigma_for(cache, 1.5) == 1.5
    assert lowpass_sigma_for(cache, "auto") > 1.5


def test_lowpass_makes_sharp_inputs_as_smooth_as_blurred_training_faces():
    cache = textured_cache(train_sigma=2.0)
    val = cache.images[cache.indices("val")]
    pre = Preprocess(img_size=48, in_channels=1, mean=(0.0,), std=(1.0,), lowpass_sigma=2.0)
    lowpassed = (model_input(pre, val) * 255).round().clamp(0, 255).to(torch.uint8)
    train_sharpness = np.median(laplacian_variance(cache.images[cache.indices("train")]))
    assert np.median(laplacian_variance(val)) > 10 * train_sharpness
    assert np.median(laplacian_variance(lowpassed)) < 2 * train_sharpness
    assert torch.equal(lowpass(Preprocess(img_size=48, in_channels=1), val.float()), val.float())


def test_datamodule_lowpasses_validation_batches_but_not_training_batches():
    cache = textured_cache(train_sigma=2.0)
    no_augment = AugmentConfig(hflip=0, rotation=0, translate=0, scale=(1.0, 1.0), brightness=0, contrast=0)
    module = FERDataModule(cache, Preprocess(img_size=48, in_channels=1, lowpass_sigma=2.0), no_augment, batch_size=8)
    images = cache.images[cache.indices("val")[:8]]
    plain = model_input(Preprocess(img_size=48, in_channels=1), images)
    module.trainer = SimpleNamespace(training=False)
    val_x, _ = module.on_after_batch_transfer((images, cache.labels[:8]), 0)
    assert val_x.shape == plain.shape and val_x.std() < 0.9 * plain.std()
    module.trainer = SimpleNamespace(training=True)
    train_x, _ = module.on_after_batch_transfer((images, cache.labels[:8]), 0)
    assert torch.allclose(train_x, plain)


def test_data_stats_reports_counts_duplicates_and_warns_about_a_blurred_train_split(tmp_path):
    import cv2
    from typer.testing import CliRunner

    from tests.conftest import write_image
    from vitfer.cli import app

    root = tmp_path / "fer2013"
    for i in range(42):
        label = ("angry", "happy", "neutral")[i % 3]
        face = face_like(i % 7, seed=i)
        write_image(root / "train" / label / f"Training_{i}.png", cv2.GaussianBlur(face, (0, 0), 2.5))
        write_image(root / "test" / label / f"PublicTest_{i}.png", face_like(i % 7, seed=100 + i))
    write_image(root / "test" / "happy" / "PrivateTest_0.png", face_like(0, seed=100))  # twin of a val face
    result = CliRunner().invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 0, result.output
    assert "pixel-identical duplicates: " in result.output and "test~val 1," in result.output
    assert "sharpness (median Laplacian variance" in result.output
    assert "WARNING: the train split is much blurrier than val" in result.output


def test_data_stats_from_python_matches_the_command(fer_folder):
    import vitfer

    stats = vitfer.data_stats(fer_folder)
    assert stats.counts.loc["angry", "train"] == 6 and stats.counts.loc["total", "total"] == 70
    assert list(stats.counts.index[:3]) == ["angry", "disgust", "fear"]  # canonical order, not alphabetical
    assert stats.duplicates["test~val"] == 0 and set(stats.sharpness) == {"train", "val", "test"}
    assert str(stats).splitlines()[0].split() == ["split", "train", "val", "test", "total"]
