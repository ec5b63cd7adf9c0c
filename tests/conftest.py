"""Small synthetic data sets made on the fly; nothing real is committed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vitfer.labels import EMOTIONS_7

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory) -> Path:
    """Downloads and ONNX exports of the tests go to a folder of their own, never to the user's cache."""
    import os

    folder = tmp_path_factory.mktemp("vitfer-cache")
    os.environ["VITFER_CACHE"] = str(folder)
    return folder


def face_like(label: int, seed: int, size: int = 48) -> np.ndarray:
    """A grayscale image whose bright block position encodes the class (learnable), plus noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (size, size), dtype=np.uint8)
    cell = size // 4
    row, col = divmod(label, 4)
    image[row * cell * 2:(row * 2 + 1) * cell, col * cell:(col + 1) * cell] = 230
    return image


def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def fer_folder(tmp_path: Path) -> Path:
    """FER2013 image-folder layout: 6 Training, 2 PublicTest, 2 PrivateTest images per class."""
    root = tmp_path / "fer2013"
    seed = 0
    for label, name in enumerate(EMOTIONS_7):
        for prefix, top, count in (("Training", "train", 6), ("PublicTest", "test", 2), ("PrivateTest", "test", 2)):
            for i in range(count):
                seed += 1
                write_image(root / top / name / f"{prefix}_{seed}.png", face_like(label, seed))
    return root


@pytest.fixture
def fer_csv(tmp_path: Path) -> Path:
    """FER2013 Kaggle CSV with 3 usages x 7 classes x 2 rows."""
    lines = ["emotion,pixels,Usage"]
    seed = 0
    for usage in ("Training", "PublicTest", "PrivateTest"):
        for label in range(7):
            for _ in range(2):
                seed += 1
                lines.append(f"{label},{' '.join(map(str, face_like(label, seed).ravel()))},{usage}")
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ck_folder(tmp_path: Path) -> Path:
    """A CK+48-style set: class folders named with CK+ names (incl. contempt), no split folders."""
    root = tmp_path / "CK+48"
    names = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    seed = 1000
    for name in names:
        for i in range(10):
            seed += 1
            write_image(root / name / f"S{seed:03d}_{i}.png", face_like(len(name) % 7, seed))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-weight cnn3 checkpoint (48 px, grayscale) written as vitfer writes them."""
    import torch

    from vitfer.preprocess import Preprocess
    from vitfer.models.checkpoint import describe, save_model
    from vitfer.models.factory import build_model

    torch.manual_seed(0)
    model = build_model("cnn3", 7, img_size=48).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_model(path, model, describe(model, Preprocess(img_size=48, in_channels=3), EMOTIONS_7))


@pytest.fixture(scope="session")
def astronaut(tmp_path_factory) -> Path:
    """scikit-image's astronaut photo (public domain), one real face, as a JPEG."""
    data = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("img") / "astronaut.jpg"
    write_image(path, cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


#: FER+ vote rows (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF) used by the
#: FER+ fixtures; the comments give what the majority protocol makes of each.
FERPLUS_VOTES = [
    [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # happy
    [8, 0, 0, 2, 0, 0, 0, 0, 0, 0],  # neutral
    [0, 0, 0, 0, 0, 0, 0, 7, 3, 0],  # contempt
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
    [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],  # no majority: dropped (kept by crossentropy)
    [0, 0, 9, 0, 0, 0, 1, 0, 0, 0],  # surprise
]


def write_ferplus(root: Path, votes: list[list[int]] | None = None) -> Path:
    """FER+'s folder layout: FER2013Train|Valid|Test/ with PNGs and a headerless label.csv, the same rows in each."""
    votes = votes or FERPLUS_VOTES
    row = 0
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        lines = []
        for i, vote in enumerate(votes):
            name = f"fer{row:07d}.png"
            write_image(root / folder / name, face_like(i % 7, 500 + row))
            lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, vote)))
            row += 1
        (root / folder / "label.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def ferplus_folder(tmp_path: Path) -> Path:
    return write_ferplus(tmp_path / "ferplus")


def fake_camera(image_path: Path, out: Path, frames: int = 30) -> Path:
    """A Y4M clip of one photo at 640 x 480, which Chromium's fake camera plays (--use-file-for-fake-video-capture)."""
    import cv2

    frame = cv2.resize(cv2.imread(str(image_path)), (640, 480))
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(out, "wb") as handle:
        handle.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            handle.write(b"FRAME\n" + yuv)
    return out
