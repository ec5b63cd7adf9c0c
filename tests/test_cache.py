import pytest
import torch

from vitfer.data.cache import FaceCache, build_cache, cached
from vitfer.data.readers import read_dataset
from vitfer.errors import DataError


def test_cache_decodes_every_face(fer_folder):
    manifest = read_dataset(fer_folder)
    cache = build_cache(manifest)
    assert cache.images.dtype == torch.uint8 and tuple(cache.images.shape) == (70, 1, 48, 48)
    assert cache.labels.tolist() == [cache.class_names.index(n) for n in manifest["label"]]
    assert len(cache.indices("train")) == 42 and len(cache.indices("val")) == 14


def test_csv_and_folder_give_same_pixels(fer_csv):
    cache = build_cache(read_dataset(fer_csv), size=32, channels=3)
    assert tuple(cache.images.shape) == (42, 3, 32, 32)
    assert torch.equal(cache.images[:, 0], cache.images[:, 2])


def test_save_load_roundtrip_and_disk_cache(fer_folder, tmp_path):
    manifest = read_dataset(fer_folder)
    first = cached(manifest, tmp_path / "c")
    files = list((tmp_path / "c").glob("*.pt"))
    assert len(files) == 1
    again = FaceCache.load(files[0])
    assert torch.equal(first.images, again.images) and (first.split == again.split).all()
    assert torch.equal(cached(manifest, tmp_path / "c").labels, first.labels)


def test_corrupt_image_raise_or_skip(fer_folder):
    bad = sorted((fer_folder / "train" / "sad").iterdir())[0]
    bad.write_bytes(b"not an image")
    manifest = read_dataset(fer_folder)
    with pytest.raises(DataError, match=bad.name):
        build_cache(manifest)
    cache = build_cache(manifest, on_error="skip")
    assert len(cache) == 69 and any(bad.name in s for s in cache.skipped)
    assert bad.name not in " ".join(cache.items)


def test_labels_outside_label_set_are_refused(ck_folder):
    manifest = read_dataset(ck_folder)
    with pytest.raises(DataError, match="contempt"):
        build_cache(manifest, num_classes=7)
    assert (build_cache(manifest, num_classes=8).labels == 7).sum() == 10


def test_empty_manifest(fer_folder):
    with pytest.raises(DataError, match="the manifest is empty"):
        build_cache(read_dataset(fer_folder).iloc[0:0])


def test_a_broken_cache_file_is_rebuilt_not_fatal(fer_folder, tmp_path, caplog):
    manifest = read_dataset(fer_folder)
    first = cached(manifest, tmp_path / "c")
    path = next((tmp_path / "c").glob("*.pt"))
    path.write_bytes(path.read_bytes()[:1000])  # what a kill during a plain write leaves
    with caplog.at_level("WARNING"):
        again = cached(manifest, tmp_path / "c")
    assert torch.equal(again.images, first.images) and "decoding the faces again" in caplog.text
    assert FaceCache.load(path).images.shape == first.images.shape  # rewritten whole


def test_a_cache_write_that_dies_leaves_no_file(fer_folder, tmp_path, monkeypatch):
    cache = build_cache(read_dataset(fer_folder))

    def killed(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"half a cache")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.save(tmp_path / "c" / "faces.pt")
    assert list((tmp_path / "c").iterdir()) == []


def test_merge_cache_and_export_never_replace_a_file_unasked(tmp_path, fer_folder, tiny_checkpoint):
    from typer.testing import CliRunner

    from vitfer.cli import app

    runner = CliRunner()
    for command, out in ((["data", "merge", str(fer_folder)], tmp_path / "merged.csv"),
                         (["data", "cache", str(fer_folder)], tmp_path / "faces.pt"),
                         (["export", str(tiny_checkpoint)], tmp_path / "tiny.onnx")):
        out.write_text("mine")
        refused = runner.invoke(app, [*command, "--out", str(out)])
        assert refused.exit_code == 2 and "exists; pass --exist-ok" in refused.output and out.read_text() == "mine"
        replaced = runner.invoke(app, [*command, "--out", str(out), "--exist-ok"])
        assert replaced.exit_code == 0, replaced.output
        assert out.read_bytes() != b"mine" and not list(tmp_path.glob(".*partial*"))


def test_a_decompression_bomb_in_a_data_set_is_refused_from_its_header(tmp_path):
    import resource

    from tests.conftest import face_like, write_image
    from tests.test_serving import png_header
    from vitfer.data.cache import build_cache
    from vitfer.data.readers import read_dataset
    from vitfer.data.stats import image_sizes
    from vitfer.errors import DataError

    root = tmp_path / "set"
    for label in ("happy", "sad"):
        for i in range(3):
            write_image(root / label / f"{i}.png", face_like(3 if label == "happy" else 4, seed=i))
    (root / "happy" / "bomb.png").write_bytes(png_header(20000, 20000))  # 400 megapixels, a few bytes
    manifest = read_dataset(root)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="bomb.png: image .*over the limit of 120,000,000 pixels"):
        build_cache(manifest, 48, 1, 7)
    cache = build_cache(manifest, 48, 1, 7, on_error="skip")
    assert len(cache) == 6 and any("bomb.png" in line for line in cache.skipped)
    assert image_sizes(manifest)[(20000, 20000)] == 1  # its size, from the header
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was decoded


@pytest.fixture
def photo_folder(tmp_path):
    """Class folders (of a test split) of whole photos: the bundled example face pasted at known places on larger grey canvases,
    and one canvas with no face."""
    import cv2
    import numpy as np

    from vitfer.shipped import EXAMPLE_IMAGE

    face = cv2.imread(str(EXAMPLE_IMAGE))
    places = {"happy": [(0, 0), (500, 300)], "sad": [(300, 40)]}
    for label, offsets in places.items():
        for k, (x, y) in enumerate(offsets):
            canvas = np.full((900, 1100, 3), 128, np.uint8)
            canvas[y:y + 512, x:x + 512] = face
            (tmp_path / "photos" / "test" / label).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "photos" / "test" / label / f"photo{k}.png"), canvas)
    cv2.imwrite(str(tmp_path / "photos" / "test" / "sad" / "blank.png"), np.full((600, 800, 3), 128, np.uint8))
    return tmp_path / "photos", face


def test_whole_photos_are_cropped_to_their_largest_face(photo_folder, tmp_path):
    import numpy as np

    from vitfer.data.cache import FaceCrops, manifest_fingerprint
    from vitfer.preprocess import decode_face
    from vitfer.runtime.crop import LargestFace

    folder, face = photo_folder
    manifest = read_dataset(folder, kind="folders", seed=0)
    cropped = build_cache(manifest, size=48, channels=1, crops=FaceCrops("yunet", 0.2))
    whole = build_cache(manifest, size=48, channels=1)
    expected = decode_face(LargestFace("yunet", 0.2)(face), 48, grayscale=True)[..., 0].astype(float)
    for i, item in enumerate(cropped.items):
        mine = cropped.images[i, 0].numpy().astype(float)
        if item.endswith("blank.png"):
            continue
        # wherever the face was pasted, the cache holds the face as predict crops it (up to the detector's
        # few-pixel jitter between scales), not the grey canvas
        canvas = whole.images[i, 0].numpy().astype(float)
        assert np.corrcoef(mine.ravel(), expected.ravel())[0, 1] > 0.8, item
        assert np.abs(mine - expected).mean() < 0.5 * np.abs(canvas - expected).mean()
    assert [p.rsplit("/", 1)[-1] for p in cropped.no_face] == ["blank.png"] and cropped.cropping == "yunet|0.2|"
    assert manifest_fingerprint(manifest, 48, 1, FaceCrops()) != manifest_fingerprint(manifest, 48, 1)
    cached(manifest, tmp_path / "c", crops=FaceCrops())
    assert FaceCache.load(next((tmp_path / "c").glob("*.pt"))).no_face == cropped.no_face  # kept with the cache


def test_evaluating_a_folder_of_photos_gives_what_predict_gives(photo_folder, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from vitfer.cli import app
    from vitfer.evaluation.evaluate import evaluate
    from vitfer.runtime.predictor import Predictor
    from vitfer.shipped import SHIPPED_ONNX

    folder, _ = photo_folder
    model = SHIPPED_ONNX["fast"]
    results = evaluate(model, folder, "test", out_dir=tmp_path / "eval", detector="yunet")
    assert results["face_crops"].startswith("yunet|") and results["photos_without_a_face"] == 1
    answers = pd.read_csv(tmp_path / "eval" / "predictions.csv").set_index("item")
    predictor = Predictor(model)
    for item, row in answers.iterrows():
        faces = predictor.predict(item)
        assert (faces[0].label if faces else None) == (row["predicted"] if "blank" not in item else None)
    assert "no face found in 1" in (tmp_path / "eval" / "report.md").read_text()
    result = CliRunner().invoke(app, ["evaluate", str(model), "--data", str(folder), "--split", "test",
                                      "--detector", "bogus", "--out", str(tmp_path / "e2")])
    assert result.exit_code != 0 and "unknown detector 'bogus'" in result.output
    assert len(result.output.strip().splitlines()) == 1
