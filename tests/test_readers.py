import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import face_like, write_image

from vitfer.data.manifest import merge_manifests
from vitfer.data.folders import read_class_folders
from vitfer.data.readers import read_dataset
from vitfer.data.fer2013 import read_fer2013_csv, read_fer2013_folder
from vitfer.errors import DataError, LabelError


def test_fer_folder_split_comes_from_prefix(fer_folder):
    manifest = read_dataset(fer_folder)
    assert manifest["split"].value_counts().to_dict() == {"train": 42, "val": 14, "test": 14}
    val_items = manifest.loc[manifest["split"] == "val", "item"]
    assert val_items.str.contains("PublicTest_").all()
    assert manifest.loc[manifest["split"] == "test", "item"].str.contains("PrivateTest_").all()
    assert set(manifest["source"]) == {"fer2013"}


def test_fer_folder_rejects_unprefixed_file(fer_folder):
    first = sorted((fer_folder / "test" / "happy").glob("PublicTest_*"))[0]
    first.rename(fer_folder / "test" / "happy" / "odd.png")
    with pytest.raises(DataError, match="odd.png"):
        read_fer2013_folder(fer_folder)
    skipped = read_fer2013_folder(fer_folder, on_error="skip")
    assert len(skipped) == 69 and any("odd.png" in s for s in skipped.attrs["skipped"])


def test_fer_csv(fer_csv):
    manifest = read_fer2013_csv(fer_csv)
    assert manifest["split"].value_counts().to_dict() == {"train": 14, "val": 14, "test": 14}
    assert read_dataset(fer_csv)["label"].tolist() == manifest["label"].tolist()
    assert manifest["label"].iloc[0] == "angry"


GOOD_PIXELS = " ".join(["7"] * 2304)


@pytest.mark.parametrize("row, problem", [
    (f"9,{GOOD_PIXELS},Training", "unknown emotion id 9"),
    (f"happy,{GOOD_PIXELS},Training", "emotion 'happy' is not a number"),
    ("3,1 2 3,Training", "not 2304 space-separated whole numbers"),
    (f"3,{GOOD_PIXELS[:-1]}x,Training", "not 2304 space-separated whole numbers"),
    (f"3,{GOOD_PIXELS[:-1]}300,Training", "over 255"),
    (f"3,{GOOD_PIXELS},Training,extra", "expected 3 fields"),
    (f"3,{GOOD_PIXELS},Someday", "unknown Usage 'Someday'"),
])
def test_fer_csv_bad_rows_are_named_and_skipped_alone(tmp_path, row, problem):
    path = tmp_path / "bad.csv"
    path.write_text(f"emotion,pixels,Usage\n0,{GOOD_PIXELS},Training\n{row}\n4,{GOOD_PIXELS},PublicTest\n")
    with pytest.raises(DataError, match=f"line 3: .*{problem}"):
        read_fer2013_csv(path)
    manifest = read_fer2013_csv(path, on_error="skip")
    assert manifest["label"].tolist() == ["angry", "sad"] and len(manifest.attrs["skipped"]) == 1


@pytest.mark.parametrize("content, problem", [(b"", "is empty"), (b"emotion,pixels\n\xff\xfe,1\n", "not UTF-8")])
def test_fer_csv_unreadable_files_are_named(tmp_path, content, problem):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem):
        read_fer2013_csv(path, on_error="skip")


def test_fer_csv_without_usage_is_split_with_a_warning(tmp_path, caplog):
    path = tmp_path / "nousage.csv"
    path.write_text("emotion,pixels\n" + "".join(f"{i % 7},{GOOD_PIXELS}\n" for i in range(70)))
    with caplog.at_level("WARNING"):
        manifest = read_fer2013_csv(path)
    assert "no Usage column" in caplog.text
    assert manifest["split"].value_counts().to_dict() == {"train": 56, "val": 7, "test": 7}


def test_class_folders_seeded_stratified_split(ck_folder):
    a = read_class_folders(ck_folder, seed=3)
    b = read_class_folders(ck_folder, seed=3)
    c = read_class_folders(ck_folder, seed=4)
    assert a["split"].tolist() == b["split"].tolist()
    assert a["split"].tolist() != c["split"].tolist()
    counts = pd.crosstab(a["label"], a["split"])
    assert (counts["val"] == 1).all() and (counts["test"] == 1).all() and (counts["train"] == 8).all()
    assert "contempt" in set(a["label"]) and "angry" in set(a["label"])
    assert set(a["source"]) == {"ck+48"}


def test_class_folders_with_split_dirs(tmp_path, ck_folder):
    root = tmp_path / "affectnet"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    ck_folder.rename(root / "train" / "x")
    (root / "train" / "x" / "anger").rename(root / "val" / "anger")
    for child in (root / "train" / "x").iterdir():
        child.rename(root / "train" / child.name)
    (root / "train" / "x").rmdir()
    manifest = read_class_folders(root)
    assert set(manifest.loc[manifest["split"] == "val", "label"]) == {"angry"}
    assert "angry" not in set(manifest.loc[manifest["split"] == "train", "label"])


def test_unknown_class_folder_raise_or_skip(ck_folder):
    (ck_folder / "bored").mkdir()
    sorted((ck_folder / "happy").iterdir())[0].rename(ck_folder / "bored" / "x.png")
    with pytest.raises(LabelError, match="bored"):
        read_class_folders(ck_folder)
    manifest = read_class_folders(ck_folder, on_error="skip")
    assert any("bored" in s for s in manifest.attrs["skipped"])
    assert len(manifest) == 69


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "empty" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="empty class folder"):
        read_class_folders(tmp_path / "empty")


def test_merge_keeps_source_and_drops_contempt_for_7(fer_folder, ck_folder):
    fer = read_dataset(fer_folder)
    ck = read_dataset(ck_folder)
    merged7 = merge_manifests([fer, ck], 7)
    merged8 = merge_manifests([fer, ck], 8)
    assert len(merged8) == len(fer) + len(ck)
    assert len(merged7) == len(merged8) - 10
    assert sum("contempt" in s for s in merged7.attrs["skipped"]) == 10
    assert set(merged8["source"]) == {"fer2013", "ck+48"}
    assert np.array_equal(merged8.columns[:4], ["item", "label", "source", "split"])


def test_a_merge_of_csv_and_folders_reads_back_with_its_pixels(tmp_path, fer_csv, ck_folder):
    from typer.testing import CliRunner

    from vitfer.cli import app
    from vitfer.data.cache import build_cache

    out = tmp_path / "merged.csv"
    result = CliRunner().invoke(app, ["data", "merge", str(fer_csv), str(ck_folder), "--num-classes", "8",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    merged = read_dataset(out)
    assert len(merged) == 42 + 70 and set(merged["source"]) == {"fer2013", "ck+48"}
    direct = build_cache(merge_manifests([read_dataset(fer_csv), read_dataset(ck_folder)], 8), num_classes=8)
    assert torch.equal(build_cache(merged, num_classes=8).images, direct.images)  # CSV rows kept their pixels
    five = CliRunner().invoke(app, ["data", "merge", str(fer_csv), "--num-classes", "5", "--out", str(out),
                                    "--exist-ok"])
    assert five.exit_code != 0 and "7- and 8-class label sets, not 5" in five.output


def test_a_tiny_class_folder_set_is_refused_in_one_line(tmp_path):
    for name in ("happy", "sad"):
        write_image(tmp_path / "tiny" / name / "a.png", face_like(3, 1))
    with pytest.raises(DataError, match="2 images are too few"):
        read_class_folders(tmp_path / "tiny")
