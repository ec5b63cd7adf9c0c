import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import FERPLUS_VOTES, SHARED, face_like
from vitfer.data.cache import build_cache
from vitfer.data.ferplus import (ferplus_targets, join_ferplus_votes, read_ferplus, read_ferplus_csv,
                                 read_ferplus_votes)
from vitfer.data.readers import read_dataset
from vitfer.errors import DataError
from vitfer.labels import EMOTIONS_8

A, D, F, H, S, U, N, C = (EMOTIONS_8.index(n) for n in
                          ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"))
MIXED = [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]  # neutral 4, sadness 1, anger 3, disgust 2


def target(protocol: str, votes: list[int]) -> tuple[np.ndarray, bool]:
    targets, keep = ferplus_targets(np.array([votes]), protocol)
    return targets[0], bool(keep[0])


def expected(**shares: float) -> np.ndarray:
    row = np.zeros(8, dtype=np.float32)
    for name, share in shares.items():
        row[EMOTIONS_8.index(name)] = share
    return row


def test_majority_needs_more_than_half_of_the_votes_after_single_votes_go():
    assert not target("majority", MIXED)[1]  # 4 of 9 (the single sadness vote is gone): no majority
    t, keep = target("majority", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0])
    assert keep and np.allclose(t, expected(neutral=1.0))


def test_crossentropy_keeps_the_top_classes_until_three_quarters_of_the_votes():
    t, keep = target("crossentropy", MIXED)  # neutral 4 + anger 3 = 7 >= 0.75 x 9; disgust 2 is left out
    assert keep and np.allclose(t, expected(neutral=4 / 7, angry=3 / 7))
    t, keep = target("crossentropy", [5, 4, 0, 0, 0, 0, 0, 0, 1, 0])
    assert keep and np.allclose(t, expected(neutral=5 / 9, happy=4 / 9))


def test_probability_protocol_has_the_crossentropy_targets():
    assert np.allclose(target("probability", MIXED)[0], target("crossentropy", MIXED)[0])


def test_multi_target_keeps_every_class_with_30_percent():
    t, keep = target("multi_target", MIXED)  # threshold 2.7 of 9 votes: neutral 4 and anger 3
    assert keep and np.allclose(t, expected(neutral=4 / 7, angry=3 / 7))
    t, keep = target("multi_target", [4, 4, 0, 0, 0, 0, 0, 0, 0, 2])
    assert keep and np.allclose(t, expected(neutral=0.5, happy=0.5))


def test_a_single_vote_is_an_outlier():
    t, keep = target("crossentropy", [9, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert keep and np.allclose(t, expected(neutral=1.0))  # not 0.9 / 0.1


@pytest.mark.parametrize("protocol", ["majority", "probability", "crossentropy", "multi_target"])
def test_unknown_and_not_a_face_are_dropped_by_every_protocol(protocol):
    assert not target(protocol, [0, 0, 0, 0, 0, 0, 0, 0, 0, 10])[1]
    assert not target(protocol, [3, 3, 0, 0, 0, 0, 0, 0, 4, 0])[1]  # 'unknown' on top


def test_reader_counts_splits_and_applies_majority_outside_training(ferplus_folder):
    votes = read_ferplus_votes(ferplus_folder)
    assert votes["split"].value_counts().to_dict() == {"train": 6, "val": 6, "test": 6}
    manifest = read_ferplus(ferplus_folder, protocol="crossentropy")
    counts = manifest["split"].value_counts().to_dict()
    assert counts == {"train": 5, "val": 4, "test": 4}  # NF dropped everywhere, the split vote only outside train
    val = manifest[manifest["split"] == "val"]
    assert list(val["label"]) == ["happy", "neutral", "contempt", "surprise"]
    assert all(np.isclose(t.max(), 1.0) for t in val["target"])
    assert manifest.attrs["dropped"] == {"train": 1, "val": 2, "test": 2} and manifest.attrs["skipped"] == []


def test_cache_carries_the_vote_distributions(ferplus_folder):
    manifest = read_ferplus(ferplus_folder, protocol="crossentropy")
    cache = build_cache(manifest, num_classes=8)
    row = list(cache.items).index(str(ferplus_folder / "FER2013Train" / "fer0000004.png"))
    assert torch.allclose(cache.soft[row], torch.from_numpy(expected(neutral=4 / 7, angry=3 / 7)))
    assert cache.labels[row] == N
    seven = build_cache(read_ferplus(ferplus_folder).query("label != 'contempt'"), num_classes=7)
    assert seven.soft.shape[1] == 7 and torch.allclose(seven.soft.sum(1), torch.ones(len(seven)))


@pytest.mark.parametrize("line, problem", [
    ('fer0000000.png,"(0, 0, 48, 48)",1,2,3', "got 5 fields"),
    ('fer0000000.png,"(0, 0, 48, 48)",a,0,0,0,0,0,0,0,0,10', "not a number"),
    ('missing.png,"(0, 0, 48, 48)",0,10,0,0,0,0,0,0,0,0', "not found"),
])
def test_bad_rows_raise_naming_the_line_or_are_skipped(ferplus_folder, line, problem):
    label_csv = ferplus_folder / "FER2013Valid" / "label.csv"
    label_csv.write_text(label_csv.read_text() + line + "\n")
    with pytest.raises(DataError, match=f"label.csv line 7: .*{problem}"):
        read_ferplus_votes(ferplus_folder)
    votes = read_ferplus_votes(ferplus_folder, on_error="skip")
    assert len(votes) == 18 and any(problem in s for s in votes.attrs["skipped"])


def test_not_a_ferplus_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="not the FER\\+ layout"):
        read_ferplus(tmp_path)
    with pytest.raises(DataError, match="unknown FER\\+ protocol"):
        read_ferplus(tmp_path, protocol="vote")


def test_read_dataset_recognises_the_layout(ferplus_folder):
    assert set(read_dataset(ferplus_folder)["source"]) == {"ferplus"}


def test_fer2013new_csv_joined_with_the_kaggle_csv(tmp_path):
    votes = FERPLUS_VOTES[:3]
    usages = ["Training", "PublicTest", "PrivateTest"]
    pixels = ["emotion,pixels,Usage"] + [f"{i},{' '.join(map(str, face_like(i, i).ravel()))},{u}"
                                         for i, u in enumerate(usages)] + ["0," + " ".join(["9"] * 2304) + ",Training"]
    (tmp_path / "fer2013.csv").write_text("\n".join(pixels) + "\n")
    rows = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    rows += [f"{u},fer{i:07d}.png," + ",".join(map(str, v)) for i, (u, v) in enumerate(zip(usages, votes))]
    rows += ["Training,,0,0,0,0,0,0,0,0,0,10"]  # a row FER+ dropped (no image name)
    (tmp_path / "fer2013new.csv").write_text("\n".join(rows) + "\n")
    manifest = read_ferplus_csv(tmp_path / "fer2013new.csv", tmp_path / "fer2013.csv")
    assert list(manifest["split"]) == ["train", "val", "test"]
    assert list(manifest["label"]) == ["happy", "neutral", "contempt"]
    assert "pixels" in manifest.columns and len(manifest.attrs["skipped"]) == 1  # the row FER+ dropped
    cache = build_cache(manifest, num_classes=8)
    assert cache.images.shape == (3, 1, 48, 48)


def test_votes_join_a_fer2013_folder_through_the_name_mapping(tmp_path, ferplus_folder, fer_folder):
    manifest = read_dataset(fer_folder)
    first = manifest[manifest["split"] == "train"]["item"].iloc[0]
    mapping = pd.DataFrame({"ferplus_file": ["FER2013Train/fer0000004.png"],
                            "fer2013_file": ["/".join(Path(first).parts[-3:])]})
    mapping.to_csv(tmp_path / "names.csv", index=False)
    targets = join_ferplus_votes(manifest, ferplus_folder, tmp_path / "names.csv")
    assert np.allclose(targets[0], expected(neutral=4 / 7, angry=3 / 7))
    assert not targets[1:].any()  # faces without a FER+ row get no target


@pytest.mark.realdata
def test_real_ferplus_has_the_published_counts(tmp_path):
    archive = SHARED / "data" / "ferplus.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not present (opt-in real-data test)")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if m.name.endswith("label.csv")],
                       filter="data")
    root = next(tmp_path.rglob("FER2013Train")).parent
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):  # the reader checks each image exists
        for name in pd.read_csv(root / folder / "label.csv", header=None)[0]:
            (root / folder / name).touch()
    counts = read_ferplus_votes(root)["split"].value_counts().to_dict()
    assert counts == {"train": 28558, "val": 3579, "test": 3573}
