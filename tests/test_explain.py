from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vitfer.preprocess import Preprocess
from vitfer.explanations.maps import explain_batch, rollout
from vitfer.errors import ExplainError
from vitfer.explanations.run import class_mean_maps, explain_images
from vitfer.labels import EMOTIONS_7
from vitfer.models.checkpoint import LoadedModel, describe, save_model
from vitfer.models.factory import build_model


def loaded(name, size, **kwargs):
    torch.manual_seed(0)
    model = build_model(name, 7, img_size=size, **kwargs).eval()
    return LoadedModel(model, Preprocess(img_size=size, in_channels=3), EMOTIONS_7, {})


def faces(n=3, size=32):
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8)


def test_rollout_follows_attention_to_one_patch():
    attention = torch.full((1, 2, 5, 5), 0.2)
    attention[0, :, 0] = torch.tensor([0.1, 0.0, 0.0, 0.9, 0.0])  # [CLS] looks at patch 2 (row 1, col 0)
    relevance = rollout([attention, attention], prefix=1)
    assert relevance.shape == (1, 2, 2)
    assert relevance[0, 1, 0] == 1.0 and relevance.min() == 0.0


@pytest.mark.parametrize("name,kwargs", [("vit_tiny_patch16_224", {"kwargs": {"patch_size": 8, "depth": 2}}),
                                         ("hybrid_vit_tiny", {}), ("hf:tiny", {}), ("hf-mae:tiny", {})])
@pytest.mark.parametrize("method", ["rollout", "gradcam"])
def test_vit_maps_have_image_shape_and_unit_range(name, kwargs, method):
    model = loaded(name, 64 if name.startswith("hybrid") else 32, **kwargs)
    maps, probs = explain_batch(model, faces(3, 40), method)
    assert maps.shape == (3, 40, 40) and probs.shape == (3, 7)
    assert maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0.5
    assert np.allclose(probs.sum(1), 1, atol=1e-5)


def test_gradcam_on_a_cnn_and_rollout_refused():
    cnn = loaded("cnn3", 48)
    maps, _ = explain_batch(cnn, faces(2, 48), "gradcam")
    assert maps.shape == (2, 48, 48) and maps.max() <= 1 and maps.std() > 0
    with pytest.raises(ExplainError, match="use --method gradcam"):
        explain_batch(cnn, faces(2, 48), "rollout")


def test_explain_images_marks_images_without_faces(tmp_path, tiny_checkpoint, astronaut):
    shapes = np.full((240, 320, 3), 255, np.uint8)
    cv2.rectangle(shapes, (30, 30), (120, 120), (0, 0, 255), -1)
    cv2.imwrite(str(tmp_path / "shapes.png"), shapes)
    rows = explain_images(tiny_checkpoint, tmp_path / "shapes.png", tmp_path / "out", method="gradcam")
    assert rows == [{"image": str(tmp_path / "shapes.png"), "faces": 0, "note": "no face found; nothing explained"}]
    rows = explain_images(tiny_checkpoint, astronaut, tmp_path / "out", method="gradcam")
    assert len(rows) == 1 and rows[0]["label"] in EMOTIONS_7
    assert cv2.imread(rows[0]["overlay"]).shape == (224, 224, 3)


def test_class_mean_maps(tmp_path, fer_folder):
    torch.manual_seed(0)
    model = build_model("vit_tiny_patch16_224", 7, img_size=32, kwargs={"patch_size": 8, "depth": 2}).eval()
    path = save_model(tmp_path / "vit.pt", model, describe(model, Preprocess(img_size=32, in_channels=3), EMOTIONS_7))
    out = class_mean_maps(path, fer_folder, "val", tmp_path / "maps.png", per_class=2)
    picture = cv2.imread(str(out))
    assert picture.shape[1] > 2 * picture.shape[0]  # a column per class, two rows

    from vitfer.evaluation.evaluate import split_for
    from vitfer.explanations.run import mean_maps_per_class
    from vitfer.models.checkpoint import load_model

    loaded = load_model(path)
    data_split = split_for(loaded, fer_folder, "val")
    found = mean_maps_per_class(loaded, data_split, "rollout", per_class=2)
    present = [name for column, name in enumerate(data_split.labels) if (data_split.targets == column).any()]
    assert list(found) == present and len(present) >= 2
    for name, (face, heat, count) in found.items():
        column = data_split.labels.index(name)
        assert count == min(2, int((data_split.targets == column).sum()))
        assert face.shape[:2] == heat.shape == (32, 32) and 0 <= heat.min() <= heat.max() <= 1  # the model decodes at 32
        assert heat.max() > heat.min()  # a map, not a constant
    first, second = (found[name][1] for name in present[:2])
    assert not np.allclose(first, second)  # each class averages its own faces


def test_explaining_twice_keeps_the_first_overlays(tmp_path, tiny_checkpoint, astronaut, monkeypatch):
    import vitfer

    monkeypatch.chdir(tmp_path)
    first = vitfer.explain(tiny_checkpoint, astronaut, method="gradcam")
    second = vitfer.explain(tiny_checkpoint, astronaut, method="gradcam")
    assert Path(first[0]["overlay"]).parent == Path("runs/explain")
    assert Path(second[0]["overlay"]).parent == Path("runs/explain2") and Path(first[0]["overlay"]).is_file()


@pytest.mark.parametrize("method", ["gradcam++", "xgradcam", "layercam", "eigencam", "scorecam"])
def test_every_cam_method_of_the_registry_explains_a_cnn_and_a_vit(method):
    from vitfer.explanations.maps import METHODS

    assert method in METHODS
    for model, size in ((loaded("cnn3", 48), 48), (loaded("hybrid_vit_tiny", 64), 40)):
        maps, probs = explain_batch(model, faces(2, size), method)
        assert maps.shape == (2, size, size) and 0 <= maps.min() and maps.max() <= 1 and probs.shape == (2, 7)


def test_the_explain_help_lists_every_method():
    from typer.testing import CliRunner

    from vitfer.cli import app
    from vitfer.explanations.maps import METHODS

    text = CliRunner().invoke(app, ["explain", "--help"], terminal_width=300).output
    assert all(method in text for method in METHODS)
