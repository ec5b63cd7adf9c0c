"""Readers of AffectNet, RAF-DB, CK+ and JAFFE on small copies shaped exactly like each release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import face_like, write_image
from vitfer.data.cache import build_cache
from vitfer.data.manifest import merge_manifests, write_manifest_csv
from vitfer.data.readers import read_dataset
from vitfer.errors import DataError
from vitfer.data.splits import kfold


def affectnet(root: Path) -> Path:
    """Manually_Annotated_file_lists/{training,validation}.csv + Manually_Annotated_Images/<dir>/<file>."""
    lists, images = root / "Manually_Annotated_file_lists", root / "Manually_Annotated_Images"
    lists.mkdir(parents=True)
    header = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,"
              "arousal\n")
    for name, expressions in (("training.csv", [0, 1, 2, 3, 4, 5, 6, 7] * 3 + [8, 9, 10, 10]),
                              ("validation.csv", [0, 1, 2, 3, 4, 5, 6, 7])):
        lines = [header]
        for i, expression in enumerate(expressions):
            file = f"{i % 3 + 1}/{name[:3]}{i}.jpg"
            picture = np.full((120, 160), 20, np.uint8)
            picture[30:78, 50:98] = face_like(expression % 7, seed=i)  # the face where the box says
            write_image(images / file, picture)
            lines.append(f"{file},50,30,48,48,\"1;2;3\",{expression},0.{i % 10},-0.{i % 10}\n")
        (lists / name).write_text("".join(lines))
    return root


def test_affectnet_official_release(tmp_path):
    root = affectnet(tmp_path / "AffectNet")
    manifest = read_dataset(root)
    assert len(manifest) == 32 and manifest.attrs["dropped"] == {"none": 1, "uncertain": 1, "non-face": 2}
    assert (manifest["split"] == "test").sum() == 8  # validation.csv, the split papers report
    assert set(manifest.loc[manifest["split"] != "test", "split"]) == {"train", "val"}
    first = manifest.iloc[0]
    assert first["label"] == "neutral" and (first["x1"], first["y1"], first["x2"], first["y2"]) == (50, 30, 98, 78)
    assert manifest.set_index("label").loc["contempt", "source"].iloc[0] == "affectnet"
    assert {"valence", "arousal"} <= set(manifest.columns)
    given_the_lists = read_dataset(root / "Manually_Annotated_file_lists", kind="affectnet")
    assert given_the_lists["item"].tolist() == manifest["item"].tolist()  # the images found beside the lists
    cache = build_cache(manifest, num_classes=8)
    expected = face_like(0, seed=0)  # the crop is the face, not the grey frame around it
    assert np.abs(cache.images[0, 0].numpy().astype(int) - expected.astype(int)).mean() < 3


def test_affectnet_class_folders_named_by_id(tmp_path):
    for folder, seed in (("0", 1), ("7", 2), ("1", 3)):
        write_image(tmp_path / "an" / "train" / folder / f"{seed}.png", face_like(seed, seed))
        write_image(tmp_path / "an" / "val" / folder / f"v{seed}.png", face_like(seed, seed))
    manifest = read_dataset(tmp_path / "an", kind="affectnet-folders")
    assert sorted(set(manifest["label"])) == ["contempt", "happy", "neutral"] and set(manifest["source"]) == {"affectnet"}


def test_rafdb_basic_with_aligned_images(tmp_path):
    root = tmp_path / "RAF-DB" / "basic"
    lines = []
    for i in range(1, 15):
        name = f"train_{i:05d}.jpg"
        lines.append(f"{name} {(i % 7) + 1}")
        write_image(root / "Image" / "aligned" / f"train_{i:05d}_aligned.jpg", face_like(i % 7, i))
    for i in range(1, 4):
        lines.append(f"test_{i:04d}.jpg {i}")
        write_image(root / "Image" / "aligned" / f"test_{i:04d}_aligned.jpg", face_like(i, 50 + i))
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    manifest = read_dataset(root)
    assert len(manifest) == 17 and set(manifest["source"]) == {"rafdb"}
    test = manifest[manifest["split"] == "test"].sort_values("item")
    assert test["label"].tolist() == ["surprise", "fear", "disgust"]  # RAF's ids 1, 2, 3
    assert set(manifest.loc[manifest["split"] != "test", "split"]) == {"train", "val"}


def ckplus(root: Path, subjects: int = 10) -> Path:
    """cohn-kanade-images/S###/###/S###_###_########.png and Emotion/S###/###/..._emotion.txt."""
    for s in range(subjects):
        subject = f"S{100 + s:03d}"
        for q, code in enumerate((1 + s % 7, 1 + (s + 3) % 7)):
            sequence = f"{q + 1:03d}"
            for frame in range(1, 7):
                write_image(root / "cohn-kanade-images" / subject / sequence / f"{subject}_{sequence}_{frame:08d}.png",
                            face_like(code % 7, seed=s * 100 + q * 10 + frame))
            emotion = root / "Emotion" / subject / sequence / f"{subject}_{sequence}_00000006_emotion.txt"
            emotion.parent.mkdir(parents=True, exist_ok=True)
            emotion.write_text(f"   {code:.7e}\n")
    return root


def test_ckplus_peak_frames_first_frame_neutral_and_subject_splits(tmp_path):
    manifest = read_dataset(ckplus(tmp_path / "CK+"))
    assert len(manifest) == 10 * 2 * 4  # three peak frames and the first, per sequence
    first = manifest[manifest["item"].str.endswith("S100_001_00000001.png")]
    assert first["label"].tolist() == ["neutral"]
    peak = manifest[manifest["item"].str.endswith("S100_001_00000006.png")]
    assert peak["label"].tolist() == ["angry"]  # CK+ code 1
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert manifest.groupby("subject")["split"].nunique().max() == 1  # no subject in two splits


def test_jaffe_labels_and_subjects_from_file_names(tmp_path):
    root = tmp_path / "jaffe"
    codes = ["AN", "DI", "FE", "HA", "SA", "SU", "NE"]
    for s, subject in enumerate(["KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM"]):
        for c, code in enumerate(codes):
            write_image(root / f"{subject}.{code}{c + 1}.{s * 10 + c}.tiff", face_like(c, s * 10 + c))
    (root / "README").write_text("not an image")
    manifest = read_dataset(root)
    assert len(manifest) == 70 and set(manifest["label"]) == {"angry", "disgust", "fear", "happy", "sad",
                                                               "surprise", "neutral"}
    assert manifest.loc[manifest["item"].str.contains("KA.HA4"), "label"].item() == "happy"
    assert manifest.groupby("subject")["split"].nunique().max() == 1
    for fold in range(5):  # 5-fold, grouped: every subject is tested in exactly one fold
        folded = read_dataset(root, folds=5, fold=fold, group_by="subject")
        assert folded.groupby("subject")["split"].nunique().max() == 1
        assert (folded["split"] == "test").sum() == 14
    tested = pd.concat([kfold(manifest, 5, f, group_by="subject").query("split == 'test'") for f in range(5)])
    assert sorted(tested["item"]) == sorted(manifest["item"])
    with pytest.raises(DataError, match="no such column"):
        kfold(manifest, 5, 0, group_by="session")


def test_merge_of_every_release_reads_back(tmp_path, fer_folder, ferplus_folder):
    sets = [fer_folder, ferplus_folder, affectnet(tmp_path / "AffectNet"), ckplus(tmp_path / "CK+", subjects=4)]
    merged = merge_manifests([read_dataset(p) for p in sets], num_classes=8)
    assert set(merged["source"]) == {"fer2013", "ferplus", "affectnet", "ckplus"}
    out = write_manifest_csv(merged, tmp_path / "merged.csv")
    again = read_dataset(out)
    assert len(again) == len(merged) and set(again["source"]) == set(merged["source"])
    boxed = again[again["source"] == "affectnet"]
    assert boxed["x1"].notna().all() and again[again["source"] == "ckplus"]["subject"].notna().all()
    assert build_cache(again, num_classes=8).images.shape[0] == len(again)


def test_data_stats_and_merge_commands_know_the_releases(tmp_path):
    from typer.testing import CliRunner

    from vitfer.cli import app

    root = affectnet(tmp_path / "AffectNet")
    result = CliRunner().invoke(app, ["data", "stats", str(root), "--no-duplicates"])
    assert result.exit_code == 0, result.output
    assert "contempt" in result.output and "dropped (not an emotion): none 1, uncertain 1, non-face 2" in result.output
    jaffe = tmp_path / "jaffe"
    for s, subject in enumerate(["KA", "KL", "KM", "KR"]):
        write_image(jaffe / f"{subject}.HA1.{s}.tiff", face_like(3, s))
        write_image(jaffe / f"{subject}.SA1.{s + 9}.tiff", face_like(4, s + 9))
    merged = CliRunner().invoke(app, ["data", "merge", str(root), str(jaffe), "--num-classes", "8",
                                      "--out", str(tmp_path / "m.csv")])
    assert merged.exit_code == 0, merged.output
    assert set(pd.read_csv(tmp_path / "m.csv")["source"]) == {"affectnet", "jaffe"}


def test_file_lists_cannot_reach_outside_their_data_set(tmp_path):
    """An AffectNet list (or a FER+ label.csv) naming ../../outside/secret.png or an absolute path is refused,
    named by file and line; a symlinked root still works."""
    from tests.conftest import write_ferplus

    secret = tmp_path / "outside" / "secret.png"
    write_image(secret, face_like(3, seed=9))
    root = affectnet(tmp_path / "AffectNet")
    training = root / "Manually_Annotated_file_lists" / "training.csv"
    with open(training, "a") as handle:
        handle.write('../../outside/secret.png,0,0,48,48,"1",3,0.1,0.1\n')
        handle.write(f'{secret},0,0,48,48,"1",3,0.1,0.1\n')
    with pytest.raises(DataError, match="secret.png' lies outside"):
        read_dataset(root)
    skipped = read_dataset(root, on_error="skip").attrs["skipped"]
    assert sum("lies outside" in line for line in skipped) == 2
    assert not any("secret" in item for item in read_dataset(root, on_error="skip")["item"])
    linked = tmp_path / "linked"
    linked.symlink_to(root)
    assert len(read_dataset(linked, on_error="skip")) == len(read_dataset(root, on_error="skip"))

    ferplus = write_ferplus(tmp_path / "ferplus")
    with open(ferplus / "FER2013Train" / "label.csv", "a") as handle:
        handle.write('../../outside/secret.png,"(0, 0, 48, 48)",10,0,0,0,0,0,0,0,0,0\n')
    with pytest.raises(DataError, match="lies outside"):
        read_dataset(ferplus)


@pytest.mark.parametrize("bad", ["nan", "inf", "-1"])
def test_ferplus_votes_must_be_finite_counts(tmp_path, bad):
    from tests.conftest import write_ferplus

    root = write_ferplus(tmp_path / "ferplus")
    label_csv = root / "FER2013Valid" / "label.csv"
    lines = label_csv.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 10)[0] + f",{bad},2,1,1,1,1,1,1,1,1"
    label_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"label.csv line 2: .*(finite|non-negative)"):
        read_dataset(root)
