import csv
from pathlib import Path
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

from typer.testing import CliRunner

from vitfer.cli import app
from vitfer.runtime.backends import OnnxBackend
from vitfer.shipped import SHIPPED_MODELS
from vitfer.models.backend import TorchBackend
from vitfer.models.export import export_onnx
from vitfer.errors import ArgumentError, OutputError, SourceError
from vitfer.runtime.predictor import Predictor
from vitfer.runtime.predict import run_prediction
from vitfer.runtime.sources import iter_frames
from vitfer.runtime.tracking import FaceTracker
from vitfer.runtime.detectors import FaceBox, FrameSearch
from vitfer.labels import EMOTIONS_7
from vitfer.preprocess import Preprocess
from vitfer.models.checkpoint import load_model, describe, save_model
from vitfer.shipped import resolve_model
from vitfer.models.factory import build_model
from vitfer.models.inputs import model_input


@pytest.fixture
def astronaut_video(tmp_path, astronaut):
    image = cv2.imread(str(astronaut))
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (512, 512))
    for shift in range(12):
        moved = cv2.warpAffine(image, np.float32([[1, 0, 2 * shift], [0, 1, 0]]), (512, 512),
                               borderMode=cv2.BORDER_REPLICATE)
        writer.write(moved)
    writer.release()
    return path


def test_predict_on_a_real_face(tiny_checkpoint, astronaut):
    faces = Predictor(tiny_checkpoint).predict(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.label in EMOTIONS_7 and face.label == max(face.probabilities, key=face.probabilities.get)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_no_faces_is_an_empty_result(tiny_checkpoint):
    assert Predictor(tiny_checkpoint).predict(np.full((200, 200, 3), 128, np.uint8)) == []


def test_no_detect_classifies_whole_image_like_training(tiny_checkpoint):
    predictor = Predictor(tiny_checkpoint, detector="none", backend="torch")  # compared with PyTorch below
    face = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    result = predictor.predict(face)
    assert len(result) == 1 and result[0].box == (0, 0, 48, 48)
    loaded = load_model(tiny_checkpoint)
    with torch.no_grad():
        direct = loaded.model(model_input(loaded.preprocess, torch.from_numpy(face)[None, None])).softmax(-1)[0]
    assert np.allclose([result[0].probabilities[n] for n in EMOTIONS_7], direct.numpy(), atol=1e-5)


class OneCallAtATimeDetector:
    """Fails like OpenCV's detectors do when two threads run it at once."""

    name = "strict"

    def __init__(self) -> None:
        self.active = 0
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        self.active += 1
        try:
            if self.active > 1:
                raise RuntimeError("detector entered by two threads at once")
            time.sleep(0.01)
            self.calls += 1
            return [FaceBox(0, 0, image_bgr.shape[1], image_bgr.shape[0], 0.9)]
        finally:
            self.active -= 1


def test_threads_share_one_predictor(tiny_checkpoint):
    predictor = Predictor(tiny_checkpoint, detector="none")
    predictor.search = FrameSearch(OneCallAtATimeDetector())
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: predictor.predict(image), range(12)))
    assert predictor.search.detector.calls == 12
    assert all(r[0].probabilities == results[0][0].probabilities for r in results)


def test_corrupt_and_missing_images_are_named(tiny_checkpoint, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    predictor = Predictor(tiny_checkpoint)
    with pytest.raises(SourceError, match="broken.jpg"):
        predictor.predict(bad)
    with pytest.raises(SourceError, match="missing.png"):
        predictor.predict(tmp_path / "missing.png")


def test_unreadable_video_and_missing_webcam(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="clip.mp4"):
        list(iter_frames(str(bad)))
    with pytest.raises(SourceError, match="webcam 9"):
        list(iter_frames("9"))


def test_video_read_to_end_one_row_per_frame_per_face(tiny_checkpoint, astronaut_video, tmp_path):
    save = tmp_path / "faces.csv"
    summary = run_prediction(str(astronaut_video), model=tiny_checkpoint, out_dir=tmp_path / "out", save=save,
                             min_face=64, echo=lambda s: None)
    rows = list(csv.DictReader(open(save)))
    assert str(summary).startswith("12 frame(s), 12 face(s)")
    assert [int(r["frame"]) for r in rows] == list(range(12))
    assert {r["face_id"] for r in rows} == {"0"}  # tracked as one face
    assert float(rows[-1]["time"]) == pytest.approx(1.1, abs=1e-3)
    assert (tmp_path / "out" / "clip_annotated.mp4").stat().st_size > 0


def test_annotated_video_keeps_the_source_rate_and_size_and_every_face(tiny_checkpoint, astronaut, tmp_path):
    head = cv2.imread(str(astronaut))[20:260, 120:330]
    path = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 480))
    for frame in range(30):  # the head moves across a 640 x 480 frame at 15 fps
        canvas = np.full((480, 640, 3), 90, np.uint8)
        x = 40 + 12 * frame
        canvas[200:440, x:x + 210] = head
        writer.write(canvas)
    writer.release()
    save = tmp_path / "faces.csv"
    summary = run_prediction(str(path), model=tiny_checkpoint, out_dir=tmp_path / "out", save=save,
                             echo=lambda s: None)
    assert str(summary).startswith("30 frame(s), 30 face(s)")  # the default detector finds her in every frame
    video = cv2.VideoCapture(str(tmp_path / "out" / "walk_annotated.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    ok, first = video.read()
    assert ok and first.shape == (480, 640, 3)
    assert np.abs(first[:40, :160].astype(int) - 90).mean() < 4  # no FPS counter drawn into the saved file

    # beside the rows: one summary row per tracked face, and its timeline
    assert summary.timelines == [tmp_path / "faces_summary.csv", tmp_path / "faces_face0_timeline.png"]
    table = list(csv.DictReader(open(tmp_path / "faces_summary.csv")))
    assert len(table) == 1 and table[0]["face_id"] == "0" and table[0]["frames"] == "30"
    assert float(table[0]["duration_s"]) == pytest.approx(29 / 15, abs=1e-3)
    shares = {k: float(v) for k, v in table[0].items() if k.startswith("share_")}
    assert sum(shares.values()) == pytest.approx(1.0) and max(shares, key=shares.get) == f"share_{table[0]['dominant']}"
    assert cv2.imread(str(summary.timelines[1])).shape[1] > 400
    with pytest.raises(OutputError, match="faces_summary.csv"):  # a second run does not replace the summary
        run_prediction(str(path), model=tiny_checkpoint, out_dir=None, save=tmp_path / "faces.json",
                       echo=lambda s: None)


def test_a_face_below_the_minimum_size_is_reported_with_the_reason(tiny_checkpoint, astronaut, tmp_path):
    small = tmp_path / "small.png"  # the astronaut's face is about 53 px wide at 256 px (Haar)
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(astronaut)), (256, 256), interpolation=cv2.INTER_AREA))
    lines: list[str] = []
    summary = run_prediction(str(small), model=tiny_checkpoint, out_dir=None, min_face=64, echo=lines.append)
    assert str(summary).startswith("1 frame(s), 0 face(s)")
    assert lines == [f"{small}: no face found (faces under 64 px are ignored: lower --min-face, or pass "
                     "--detector none if the image is already a face crop)"]
    assert len(Predictor(tiny_checkpoint, min_face=24).predict(small)) == 1


def test_json_schema_for_images(tiny_checkpoint, astronaut, tmp_path):
    save = tmp_path / "faces.json"
    run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=tmp_path, save=save, echo=lambda s: None)
    rows = json.loads(save.read_text())
    assert len(rows) == 1
    expected = {"source", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "detection_score", "label",
                "confidence"} | {f"p_{n}" for n in EMOTIONS_7}
    assert set(rows[0]) == expected
    lines = tmp_path / "faces.jsonl"  # JSON Lines: the same rows, one object per line
    run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=None, save=lines, echo=lambda s: None)
    assert [json.loads(line) for line in lines.read_text().splitlines()] == rows
    with pytest.raises(OutputError, match=r"faces\.txt: use one of \.csv, \.json, \.jsonl"):
        run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=None, save=tmp_path / "faces.txt",
                       echo=lambda s: None)
    assert not (tmp_path / "faces.txt").exists()
    from typer.testing import CliRunner

    from vitfer.cli import app
    from vitfer.runtime.rows import ROW_FORMATS

    help_text = CliRunner().invoke(app, ["predict", "--help"], env={"COLUMNS": "200"}).stdout
    assert all(suffix in help_text for suffix in ROW_FORMATS)  # the help names every registered format
    assert (tmp_path / "astronaut_annotated.jpg").is_file()


def test_tracker_keeps_ids_and_smooths():
    tracker = FaceTracker("ema", alpha=0.5)
    a, b = FaceBox(0, 0, 10, 10), FaceBox(50, 50, 60, 60)
    first = tracker.update([a, b], np.array([[1.0, 0.0], [0.0, 1.0]]))
    second = tracker.update([FaceBox(52, 51, 62, 61), FaceBox(1, 0, 11, 10)], np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert [i for i, _ in first] == [0, 1] and [i for i, _ in second] == [1, 0]
    assert np.allclose(second[0][1], [0.5, 0.5]) and np.allclose(second[1][1], [0.5, 0.5])


@pytest.mark.slow
def test_onnx_export_matches_torch(tiny_checkpoint, tmp_path):
    path = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    onnx_backend = OnnxBackend(path)
    torch_backend = TorchBackend(load_model(tiny_checkpoint))
    faces = torch.randint(0, 255, (5, 1, 48, 48), dtype=torch.uint8)
    assert onnx_backend.labels == EMOTIONS_7
    assert np.allclose(onnx_backend.probabilities(faces), torch_backend.probabilities(faces), atol=1e-4)
    # a few faces run on a one-thread session of their own, with the same answers; a set thread count serves all
    assert onnx_backend.few_faces_session.get_session_options().intra_op_num_threads == 1
    assert np.allclose(onnx_backend.probabilities(faces[:2]), onnx_backend.probabilities(faces)[:2], atol=1e-5)
    pinned = OnnxBackend(path, threads=2)
    assert pinned.few_faces_session is pinned.session
    quantized = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", quantize=True)
    q = OnnxBackend(quantized).probabilities(faces)
    assert q.shape == (5, 7) and np.allclose(q.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_export_reports_the_accuracy_cost_of_int8(tiny_checkpoint, fer_folder, tmp_path):
    from typer.testing import CliRunner

    from vitfer.cli import app
    from vitfer.evaluation.evaluate import evaluate

    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), "--out", str(tmp_path / "m.onnx"), "--quantize",
                                      "--check-data", str(fer_folder), "--check-split", "test"])
    assert result.exit_code == 0, result.output
    rows = [line.split(" | ") for line in result.output.splitlines() if line.startswith("| ") and "%" in line]
    assert [row[0] for row in rows] == ["| pytorch", "| m.onnx", "| m.int8.onnx"]
    assert all(row[1] == "14" for row in rows)  # 2 PrivateTest faces per class
    plain = evaluate(tiny_checkpoint, fer_folder, "test", out_dir=tmp_path / "eval")["plain"]["accuracy"]
    assert rows[0][2] == rows[1][2] == f"{100 * plain:.2f} %"
    assert rows[1][3].startswith("100.00 %")


@pytest.mark.slow
def test_onnx_backend_exports_once_into_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    from vitfer.runtime.backends import create_backend
    from vitfer.models.backend import onnx_cache_path

    monkeypatch.setenv("VITFER_CACHE", str(tmp_path / "cache"))
    backend = create_backend(tiny_checkpoint, "onnx")
    cached = onnx_cache_path(tiny_checkpoint)
    assert backend.name == "onnx" and cached.is_file() and cached.parent.parent == tmp_path / "cache"
    faces = torch.randint(0, 256, (3, 1, 48, 48), dtype=torch.uint8)
    assert np.allclose(backend.probabilities(faces), create_backend(tiny_checkpoint).probabilities(faces), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hybrid_vit_tiny", "vit_tiny_patch16_224"])
def test_onnx_export_of_transformers_takes_any_batch(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 7, img_size=32 if name.startswith("vit") else 64).eval()
    preprocess = Preprocess(img_size=model.config.resolved_img_size(), in_channels=3, lowpass_sigma=3.0)
    checkpoint = save_model(tmp_path / "m.pt", model, describe(model, preprocess, EMOTIONS_7))
    onnx_backend = OnnxBackend(export_onnx(checkpoint, tmp_path / "m.onnx"))
    torch_backend = TorchBackend(load_model(checkpoint))
    for batch in (1, 5):  # the export traces a batch of 2
        faces = torch.randint(0, 255, (batch, 1, 48, 48), dtype=torch.uint8)
        assert np.allclose(onnx_backend.probabilities(faces), torch_backend.probabilities(faces), atol=1e-4)


def test_a_face_gives_the_same_answer_at_48_and_at_400_px(astronaut):
    """The input contract: a large crop is decoded to the training faces' size before the model resizes it."""
    image = cv2.imread(str(astronaut), cv2.IMREAD_GRAYSCALE)
    face48 = cv2.resize(image[20:260, 130:370], (48, 48), interpolation=cv2.INTER_AREA)  # the astronaut's face
    face400 = cv2.resize(face48, (400, 400), interpolation=cv2.INTER_CUBIC)  # the same face, as a photo has it
    predictor = Predictor("default", detector="none")
    small, large = predictor.predict(face48)[0], predictor.predict(face400)[0]
    assert small.label == large.label
    gap = max(abs(small.probabilities[n] - large.probabilities[n]) for n in predictor.labels)
    assert gap < 0.05
    decoded = predictor.faces_array(face400, predictor.detect(face400))
    assert decoded.shape[-1] == predictor.preprocess.decode_size == 48


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_the_shipped_models_filter_nothing_and_are_calibrated(name):
    loaded = load_model(resolve_model(name))
    assert loaded.preprocess.lowpass_sigma == 0.0
    assert loaded.preprocess.decode_size == 48
    calibration = loaded.meta.calibration
    assert 0.3 < calibration["temperature"] < 5.0
    # the temperature minimises the validation split's negative log-likelihood; the binned ECE need not fall with
    # it (fast: 0.030 -> 0.033) but stays that of a calibrated model
    assert calibration["nll_after"] <= calibration["nll_before"]
    assert calibration["ece_after"] < 0.05


def test_the_cli_refuses_an_image_bomb_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.test_serving import png_header

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    result = subprocess.run([sys.executable, "-m", "vitfer.cli", "predict", str(bomb), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "over the limit of 120,000,000 pixels" in result.stderr
    assert "Traceback" not in result.stderr and "limit of" in result.stderr and result.stderr.count("limit") == 1


def test_an_animated_gif_says_it_uses_the_first_frame(tmp_path, caplog):
    from PIL import Image

    from vitfer.runtime.sources import read_image

    frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level("WARNING"):
        assert read_image(tmp_path / "anim.gif").shape == (32, 32, 3)
    assert "3 frames; only its first frame" in caplog.text


def test_a_folder_with_a_bad_image_is_read_to_the_end_and_reported(tiny_checkpoint, astronaut, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    image = cv2.imread(str(astronaut))
    for name in ("a_face.png", "face.jpg", "sub/face.jpg", "z_face.png"):
        cv2.imwrite(str(folder / name), image)
    (folder / "b_broken.jpg").write_bytes(b"not an image")
    lines: list[str] = []
    summary = run_prediction(str(folder), model=tiny_checkpoint, out_dir=tmp_path / "out", echo=lines.append)
    assert summary.frames == 4 and summary.faces == 4  # z_face.png, after the broken file, was read too
    assert len(summary.errors) == 1 and "b_broken.jpg" in summary.errors[0]
    assert any(line.startswith("error:") and "b_broken.jpg" in line for line in lines)
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*"))
    assert written == ["a_face_annotated.png", "face_annotated.jpg", "sub/face_annotated.jpg", "z_face_annotated.png"]
    with pytest.raises(SourceError, match="b_broken.jpg"):
        run_prediction(str(folder), model=tiny_checkpoint, out_dir=None, echo=lines.append, on_error="raise")


def test_outputs_are_never_overwritten_silently(tiny_checkpoint, astronaut, tmp_path):
    from vitfer.errors import OutputError

    save = tmp_path / "faces.csv"
    save.write_text("earlier results\n")
    with pytest.raises(OutputError, match="exists; pass --exist-ok"):
        run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=None, save=save, echo=lambda s: None)
    assert save.read_text() == "earlier results\n"
    first = run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=tmp_path / "predict", echo=lambda s: None)
    second = run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=tmp_path / "predict", echo=lambda s: None)
    assert (first.out_dir.name, second.out_dir.name) == ("predict", "predict2")
    run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=None, save=save, exist_ok=True, echo=lambda s: None)
    assert "p_happy" in save.read_text() and not save.with_name("faces.csv.partial").exists()
    with pytest.raises(OutputError, match="is a file, not a folder"):
        run_prediction(str(astronaut), model=tiny_checkpoint, out_dir=None, save=save / "x.csv", echo=lambda s: None)


def test_a_run_that_dies_keeps_its_rows_and_the_old_file(tiny_checkpoint, astronaut_video, tmp_path, monkeypatch):
    save = tmp_path / "faces.csv"
    save.write_text("earlier results\n")
    calls = {"n": 0}
    original = Predictor.classify

    def dies_at_frame_five(self, faces):  # a crash (out of memory, a bug): not Ctrl-C, which ends a run whole
        calls["n"] += 1
        if calls["n"] > 5:
            raise MemoryError
        return original(self, faces)

    monkeypatch.setattr(Predictor, "classify", dies_at_frame_five)
    with pytest.raises(MemoryError):
        run_prediction(str(astronaut_video), model=tiny_checkpoint, out_dir=None, save=save, exist_ok=True,
                       min_face=64, echo=lambda s: None)
    assert save.read_text() == "earlier results\n"
    partial = list(csv.DictReader(open(tmp_path / "faces.csv.partial")))
    assert [int(r["frame"]) for r in partial] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("side", [1000, 2000, 3000, 4000])
def test_an_upscaled_portrait_has_one_face_at_every_size(side, astronaut):
    """Phone photos: the whole frame is searched at the size the detector was made for, so the suit and the
    background of a 3000-px portrait are not faces (three were found before)."""
    image = cv2.resize(cv2.imread(str(astronaut)), (side, side), interpolation=cv2.INTER_CUBIC)
    faces = Predictor("fast").detect(image)
    assert len(faces) == 1
    assert faces[0].width == pytest.approx(side * 91 / 512, rel=0.15)  # her face: 91 px of the 512-px photo


def group_photo(astronaut: Path, sizes: list[int], seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A 4000 x 3000 photo (the astronaut photo upscaled) with her face pasted at each size (face width, px) on a
    grid; returns it and each pasted face's centre."""
    photo = cv2.imread(str(astronaut))
    face = photo[45:170, 165:280]  # her face (91 px wide in the 512-px photo) with a margin
    canvas = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    rng, centres = np.random.default_rng(seed), []
    for i, size in enumerate(sizes):
        width = int(size * face.shape[1] / 91)
        height = int(width * face.shape[0] / face.shape[1])
        x, y = 200 + (i % 8) * 450 + int(rng.integers(0, 100)), 300 + (i // 8) * 900 + int(rng.integers(0, 100))
        canvas[y:y + height, x:x + width] = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
        centres.append((x + width // 2, y + height // 2))
    return canvas, centres


def test_small_faces_of_a_large_group_photo_are_found(astronaut):
    """Faces of 24-40 px in a 4000-px photo: 5 px if the whole photo were shrunk to the detector's size; found by
    the tiled search, each confirmed at a second scale, with no face that is not there."""
    sizes = list(np.random.default_rng(1).integers(24, 41, 24))
    canvas, centres = group_photo(astronaut, sizes)
    found = Predictor("fast").detect(canvas)
    hits = [any(b.x1 <= x <= b.x2 and b.y1 <= y <= b.y2 for b in found) for x, y in centres]
    assert sum(hits) >= 0.75 * len(centres)
    pasted_or_hers = [b for b in found if any(b.x1 <= x <= b.x2 and b.y1 <= y <= b.y2 for x, y in centres)
                      or b.width > 500]
    assert len(pasted_or_hers) == len(found)  # nothing found that is not a face
    video_frame = Predictor("fast", small_faces=False).detect(canvas)
    assert len(video_frame) < len(found)  # streams skip the tiles unless asked


def test_a_tiny_input_is_answered_with_a_warning(tiny_checkpoint, caplog):
    with caplog.at_level("WARNING"):
        faces = Predictor(tiny_checkpoint, detector="none").predict(np.full((1, 1, 3), 90, np.uint8))
    assert len(faces) == 1 and "a face of 1 px is far below the 48 px faces" in caplog.text


def test_the_ferplus_model_is_selected_by_name(astronaut):
    from typer.testing import CliRunner

    from vitfer.cli import app

    faces = Predictor("ferplus").predict(astronaut)
    assert len(faces) == 1 and set(faces[0].probabilities) == set(EMOTIONS_7) | {"contempt"}
    listing = CliRunner().invoke(app, ["models"]).output
    assert "ferplus    8 classes" in listing and "default    7 classes" in listing


def test_predict_takes_paths_arrays_pil_images_and_lists(tiny_checkpoint, astronaut):
    from PIL import Image

    predictor = Predictor(tiny_checkpoint)
    bgr = cv2.imread(str(astronaut))
    by_path = predictor.predict(astronaut)
    by_array = predictor.predict(bgr)
    by_pil = predictor.predict(Image.open(astronaut))  # RGB, converted
    assert by_path.source == str(astronaut) and len(by_path) == len(by_array) == len(by_pil) == 1
    assert by_path[0].probabilities == pytest.approx(by_array[0].probabilities)
    assert by_pil[0].probabilities == pytest.approx(by_array[0].probabilities, abs=0.02)  # JPEG decoders differ
    together = predictor.predict([bgr, np.full((120, 160), 128, np.uint8), astronaut])  # grey, faceless
    assert [len(r) for r in together] == [1, 0, 1]
    assert together[0][0].probabilities == pytest.approx(by_array[0].probabilities, abs=1e-5)  # one batch
    for bad, named in ((3.5, "float"), (np.zeros((8, 8, 3), np.float32), "float32"), (np.zeros((8, 8, 2), np.uint8),
                                                                                       "(8, 8, 2)")):
        with pytest.raises(SourceError, match=named):
            predictor.predict(bad)


def test_a_prediction_plots_and_saves(tiny_checkpoint, astronaut, tmp_path):
    result = Predictor(tiny_checkpoint).predict(astronaut)
    drawn = result.plot()
    assert drawn.shape == result.image.shape and not np.array_equal(drawn, result.image)
    x1, y1, x2, y2 = result[0].box
    assert np.array_equal(drawn[y1 + 10:y2 - 10, x1 + 10:x2 - 10], result.image[y1 + 10:y2 - 10, x1 + 10:x2 - 10])
    with_bars = result.plot(bars=True)  # a dark panel to the right of the face, text readable on it
    panel = with_bars[y1:y1 + 60, x2 + 8:x2 + 40].astype(int)
    under = result.image[y1:y1 + 60, x2 + 8:x2 + 40].astype(int)
    assert (panel <= under * 0.3 + 1).mean() > 0.5  # darkened around the white names
    assert cv2.imread(str(result.save(tmp_path / "out" / "a.png"))).shape == result.image.shape
    saved = json.loads(result.save(tmp_path / "a.json").read_text())
    assert saved[0]["label"] == result[0].label and saved[0]["box"] == list(result[0].box)
    with pytest.raises(SourceError, match="a.nope"):
        result.save(tmp_path / "a.nope")


def test_predict_json_lines_go_to_stdout_alone(tiny_checkpoint, astronaut, tmp_path):
    from typer.testing import CliRunner

    from vitfer.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(astronaut), "--model", str(tiny_checkpoint), "--json",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["source"] == str(astronaut) and rows[0]["label"] in EMOTIONS_7
    assert set(rows[0]) >= {"x1", "y1", "x2", "y2", "detection_score", "confidence", "p_happy"}
    assert "1 frame(s), 1 face(s)" in result.stderr


@pytest.mark.slow
def test_a_folder_predicted_by_two_processes_gives_the_same_rows(tiny_checkpoint, astronaut, tmp_path):
    folder = tmp_path / "photos"
    image = cv2.imread(str(astronaut))
    for i in range(6):
        (folder / ("sub" if i % 2 else "")).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / ("sub" if i % 2 else "") / f"p{i}.jpg"), np.roll(image, 7 * i, axis=1))
    (folder / "broken.jpg").write_bytes(b"not an image")
    rows = {}
    for workers in (1, 2):
        save = tmp_path / f"rows{workers}.csv"
        summary = run_prediction(str(folder), model=tiny_checkpoint, out_dir=tmp_path / f"out{workers}", save=save,
                                 echo=lambda s: None, workers=workers)
        assert summary.frames == 6 and len(summary.errors) == 1 and "broken.jpg" in summary.errors[0]
        rows[workers] = list(csv.DictReader(open(save)))
        assert len(list((tmp_path / f"out{workers}").rglob("*_annotated.jpg"))) == 6
    assert [r["source"] for r in rows[1]] == [r["source"] for r in rows[2]]  # the images' order
    assert [r["p_happy"] for r in rows[1]] == [r["p_happy"] for r in rows[2]]


@pytest.mark.parametrize("verb", ["predict", "train", "serve", "explain", "benchmark", "evaluate"])
def test_help_names_options_without_type_tags_and_one_detector_option(verb):
    from typer.testing import CliRunner

    from vitfer.cli import app

    text = CliRunner().invoke(app, [verb, "--help"], terminal_width=200).output
    assert "Usage" in text and not any(tag in text for tag in ("<str>", "<float>", "<int>", "<path>"))
    assert "--no-detect" not in text  # --detector none is the one way to say it


def test_the_default_backend_is_onnx_int8_when_installed_else_pytorch(tiny_checkpoint, monkeypatch, private_cache):
    from vitfer.models import backend as research_backend
    from vitfer.runtime.backends import create_backend

    auto = create_backend(tiny_checkpoint, "auto")
    assert auto.name == "onnx" and list((private_cache / "onnx").glob("tiny-*.int8.onnx"))
    faces = np.random.default_rng(0).integers(0, 256, (4, 1, 48, 48), dtype=np.uint8)
    torch_probs = create_backend(tiny_checkpoint, "torch").probabilities(faces)
    assert np.abs(auto.probabilities(faces) - torch_probs).max() < 0.01  # int8 matrix products, close to fp32
    monkeypatch.setattr(research_backend, "onnx_available", lambda: False)
    assert create_backend(tiny_checkpoint, "auto").name == "torch"
    with pytest.raises(ArgumentError, match="unknown backend 'tensorrt'"):
        create_backend(tiny_checkpoint, "tensorrt")


def test_a_batch_function_for_data_engines(tiny_checkpoint, astronaut, tmp_path):
    import pandas as pd

    from vitfer.runtime.batch import BatchPredictor

    (tmp_path / "bad.jpg").write_bytes(b"no")
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((120, 160), 128, np.uint8))
    table = BatchPredictor(tiny_checkpoint)(pd.DataFrame({"path": [str(astronaut), str(tmp_path / "bad.jpg"),
                                                                   str(tmp_path / "grey.png")]}))
    assert table["source"].tolist() == [str(astronaut), str(tmp_path / "bad.jpg"), str(tmp_path / "grey.png")]
    assert table.loc[0, "label"] in EMOTIONS_7 and "p_happy" in table and pd.isna(table.loc[0, "error"])
    assert "cannot decode" in table.loc[1, "error"] and table.loc[2, "error"] == "no face found"


def test_the_batch_function_runs_in_ray_data(tiny_checkpoint, astronaut):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[data]'); the recipe is in "
                                            "docs/scale.md")
    from vitfer.runtime.batch import BatchPredictor

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        faces = (ray.data.from_items([{"path": str(astronaut)}] * 4)
                 .map_batches(BatchPredictor, fn_constructor_args=(str(tiny_checkpoint),), batch_format="pandas",
                              concurrency=2, batch_size=2).to_pandas())
    finally:
        ray.shutdown()
    assert len(faces) == 4 and set(faces["label"]) <= set(EMOTIONS_7)


def test_a_device_that_is_not_there_is_one_line(tiny_checkpoint):
    """--device cuda on a machine without a CUDA provider / GPU: an error naming what to install, never a fallback."""
    import onnxruntime as ort

    from vitfer.errors import DeviceError
    from vitfer.runtime.backends import create_backend, parse_device

    assert parse_device("cpu") == ("cpu", 0) and parse_device("cuda:1") == ("cuda", 1)
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        parse_device("gpu")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DeviceError, match="onnxruntime-gpu"):
            create_backend("default", device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            create_backend(tiny_checkpoint, "torch", device="cuda:0")
        result = CliRunner().invoke(app, ["predict", "example", "--device", "cuda", "--out", "none-written"])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "error: --device cuda" in result.output


WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # as on a machine with the runtime floor only
from typer.testing import CliRunner
from vitfer import api
from vitfer.cli import app
from vitfer.errors import ExtraMissing
import vitfer
for call in (lambda: api.train(data="x"), lambda: api.evaluate("default", "x"), lambda: vitfer.Predictor(sys.argv[1])):
    try:
        call()
    except ExtraMissing as err:
        print("ExtraMissing:", err)
result = CliRunner().invoke(app, ["evaluate", "default", "--data", sys.argv[2]])
print("cli", result.exit_code, result.output.strip())
"""


def test_the_research_verbs_name_their_extra_when_it_is_missing(tiny_checkpoint, tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tiny_checkpoint), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line.split(":")[0] for line in lines[:3]] == ["ExtraMissing"] * 3
    assert all("pip install 'vitfer[train]'" in line for line in lines)
    assert lines[0].startswith("ExtraMissing: vitfer train needs the research floor (torch is not installed)")
    assert lines[3].startswith("cli 2 error: vitfer evaluate needs the research floor")


def test_json_lines_on_stdout_are_the_only_thing_there(tmp_path, astronaut, monkeypatch):
    """`vitfer predict photos/ --json | jq .label`: every stdout line is JSON; the human lines go to stderr."""
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.imread(str(astronaut)))
    (folder / "broken.jpg").write_bytes(b"not an image")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # as on a terminal: the bar is on
    result = CliRunner().invoke(app, ["predict", str(folder), "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1  # the broken file
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["label"] for row in rows] and all(row["source"].endswith("a.jpg") for row in rows)
    assert "broken.jpg" in result.stderr and "frame(s)" in result.stderr


def test_ctrl_c_finishes_a_stream_whole(tmp_path, astronaut, monkeypatch):
    """SIGINT is how a webcam run ends: the rows, the per-face summary and timelines are written whole (no
    .partial), the summary says it was stopped, and the command exits 0."""
    from vitfer.runtime.results import FrameResult

    image = cv2.imread(str(astronaut))
    real_stream = Predictor.stream

    def three_frames_then_ctrl_c(self, source, **options):
        for number, result in enumerate(real_stream(self, source, **options)):
            if number == 3:
                raise KeyboardInterrupt
            yield FrameResult("0", number, number / 10, result.faces, result.image)

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (image.shape[1], image.shape[0]))
    for _ in range(8):
        writer.write(image)
    writer.release()
    monkeypatch.setattr(Predictor, "stream", three_frames_then_ctrl_c)
    save = tmp_path / "faces.csv"
    result = CliRunner().invoke(app, ["predict", str(video), "--save", str(save), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "stopped by Ctrl-C after 3 frame(s)" in result.output
    assert save.is_file() and not save.with_name("faces.csv.partial").exists()
    assert len(list(csv.DictReader(save.open()))) == 3
    assert (tmp_path / "faces_summary.csv").is_file() and list(tmp_path.glob("faces_face*_timeline.png"))


def test_show_says_what_to_install_where_no_window_can_open():
    from vitfer.runtime.predict import GUI_OPENCV, live_window_problem

    assert GUI_OPENCV in live_window_problem("  GUI:                           NONE\n", {"DISPLAY": ":0"})
    assert "display" in live_window_problem("  GUI:  GTK3\n", {})
    assert live_window_problem("  GUI:  GTK3\n", {"DISPLAY": ":0"}) is None
    result = CliRunner().invoke(app, ["predict", "example", "--show", "--out", "never-written"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "--show needs" in result.output


def test_labels_are_drawn_with_a_truetype_font_sized_to_the_image(astronaut):
    """"happy 90% #0" must not read "happy 90X $0" (OpenCV's Hershey font has neither glyph), and stays legible
    from a 320-px thumbnail to a 4000-px photo."""
    from vitfer.runtime.draw import COLOURS, Text, put_texts, text_box, text_size
    from vitfer.runtime.results import Face, Prediction

    def drawn(text: str) -> np.ndarray:
        return put_texts(np.full((40, 200, 3), 255, np.uint8), [Text(4, 4, text, (0, 0, 0), 20)])

    assert not np.array_equal(drawn("happy 90% #0"), drawn("happy 90X $0"))
    for side in (320, 640, 4000):
        size = text_size(np.zeros((side * 3 // 4, side, 3), np.uint8))
        assert size >= 11 and text_box("happy 90% #0", size)[1] >= 0.7 * size  # glyphs as tall as asked
    assert text_size(np.zeros((3000, 4000, 3), np.uint8)) > 4 * text_size(np.zeros((240, 320, 3), np.uint8))
    image = cv2.imread(str(astronaut))
    face = Face((177, 62, 268, 153), 0.9, "happy", 0.9, {"happy": 0.9, "sad": 0.1}, face_id=0)
    labelled = Prediction([face], image).plot()
    above = labelled[62 - text_size(image) - 8:62, 177:300]
    assert (np.abs(above.astype(int) - np.array(COLOURS["happy"])).sum(axis=2) < 30).mean() > 0.3  # the tag's fill


def test_no_save_writes_rows_without_annotated_copies_and_an_empty_out_is_one_line(tmp_path, astronaut, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["predict", str(astronaut), "--no-save", "--save", "faces.csv"])
    assert result.exit_code == 0 and (tmp_path / "faces.csv").is_file() and not (tmp_path / "runs").exists()
    empty = CliRunner().invoke(app, ["predict", str(astronaut), "--out", ""])
    assert empty.exit_code == 2 and empty.output.count("\n") == 1 and "--out is empty" in empty.output


def test_several_files_and_an_expanded_shell_glob(tmp_path, astronaut):
    """`vitfer predict a.jpg b.jpg` and `vitfer predict dir/*.png` (the shell gives the files)."""
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "face.png"), cv2.imread(str(astronaut)))
    files = [str(tmp_path / "one" / "face.png"), str(tmp_path / "two" / "face.png")]
    result = CliRunner().invoke(app, ["predict", *files, "--out", str(tmp_path / "out"), "--save",
                                      str(tmp_path / "rows.csv")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "rows.csv")))
    assert [Path(r["source"]).parent.name for r in rows] == ["one", "two"]
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "one/face_annotated.png", "two/face_annotated.png"]  # same names, kept apart
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    mixed = CliRunner().invoke(app, ["predict", files[0], str(video)])
    assert mixed.exit_code == 2 and "must all be image files" in mixed.output


def test_rgb_arrays_are_said_so(astronaut):
    bgr = cv2.imread(str(astronaut))
    predictor = Predictor("default")
    as_bgr = predictor.predict(bgr)[0].probabilities
    as_rgb = predictor.predict(bgr[..., ::-1].copy(), channels="rgb")[0].probabilities
    assert as_rgb == pytest.approx(as_bgr, abs=1e-6)
    with pytest.raises(SourceError, match="channels must be"):
        predictor.predict(bgr, channels="hsv")
    with pytest.raises(SourceError, match="use stream"):
        predictor.predict(str(astronaut.parent))


def test_every_input_gets_a_row(tmp_path, astronaut):
    """A face-less or unreadable image gets a row with no label and an error, so rows join back to the inputs."""
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.jpg"), cv2.imread(str(astronaut)))
    cv2.imwrite(str(folder / "b_blank.png"), np.full((200, 200, 3), 255, np.uint8))
    (folder / "c_broken.jpg").write_bytes(b"not an image")
    run_prediction(str(folder), out_dir=None, save=tmp_path / "rows.csv", echo=lambda line: None)
    rows = list(csv.DictReader(open(tmp_path / "rows.csv")))
    assert [Path(r["source"]).name for r in rows] == ["a_face.jpg", "b_blank.png", "c_broken.jpg"]
    assert rows[0]["label"] == "happy" and rows[0]["error"] == ""
    assert rows[1]["label"] == "" and rows[1]["error"] == "no face found"
    assert rows[2]["label"] == "" and "cannot decode" in rows[2]["error"]


@pytest.mark.parametrize("option,message", [
    (["--save", "x.xlsx"], "cannot write rows to x.xlsx"), (["--detector", "dlib"], "--detector 'dlib'"),
    (["--backend", "tensorrt"], "--backend 'tensorrt'"), (["--threshold", "1.5"], "--threshold 1.5"),
    (["--min-face", "-5"], "--min-face -5"), (["--workers", "0"], "--workers 0"),
    (["--min-confidence", "2"], "--min-confidence 2.0")])
def test_option_values_are_checked_before_the_model_loads(option, message, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("vitfer.runtime.predict.Predictor", no_model)
    result = CliRunner().invoke(app, ["predict", "example", *option])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output


def test_min_confidence_labels_unsure_faces_uncertain(astronaut, tmp_path):
    sure = Predictor().predict(str(astronaut))[0]
    unsure = Predictor(min_confidence=min(sure.confidence + 0.01, 1.0)).predict(str(astronaut))[0]
    assert sure.label == "happy" and unsure.label == "uncertain"
    assert unsure.probabilities == sure.probabilities and unsure.confidence == sure.confidence
    run_prediction(str(astronaut), out_dir=tmp_path / "out", save=tmp_path / "rows.csv", echo=lambda line: None,
                   min_confidence=0.999)
    assert list(csv.DictReader(open(tmp_path / "rows.csv")))[0]["label"] == "uncertain"
    assert list((tmp_path / "out").glob("*_annotated.jpg"))


@pytest.fixture
def local_web(tmp_path, astronaut):
    """A web server on 127.0.0.1 serving the astronaut photo and a short clip of it."""
    import functools
    import http.server
    import threading

    site = tmp_path / "site"
    site.mkdir()
    cv2.imwrite(str(site / "photo.jpg"), cv2.imread(str(astronaut)))
    frame = cv2.resize(cv2.imread(str(astronaut)), (320, 320))
    writer = cv2.VideoWriter(str(site / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 320))
    for _ in range(6):
        writer.write(frame)
    writer.release()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_images_and_videos_from_urls(local_web, tmp_path):
    summary = run_prediction(f"{local_web}/photo.jpg", out_dir=tmp_path / "out", save=tmp_path / "rows.csv",
                             echo=lambda line: None)
    rows = list(csv.DictReader(open(tmp_path / "rows.csv")))
    assert summary.faces == 1 and rows[0]["label"] == "happy" and rows[0]["source"] == f"{local_web}/photo.jpg"
    assert (tmp_path / "out" / "photo_annotated.jpg").is_file()
    clip = run_prediction(f"{local_web}/clip.mp4", out_dir=tmp_path / "video", echo=lambda line: None)
    assert clip.frames == 6 and clip.faces == 6 and (tmp_path / "video" / "clip_annotated.mp4").is_file()
    with pytest.raises(SourceError, match="cannot fetch .*missing.jpg"):
        run_prediction(f"{local_web}/missing.jpg", out_dir=None, echo=lambda line: None, on_error="raise")


def test_a_face_keeps_its_id_across_a_cut_and_a_gap_and_another_face_does_not_take_it(astronaut, tmp_path):
    """A face leaves for 2 s and comes back elsewhere (a cut): the same id. Another face (another look) where the
    first one was: a new id."""
    face = cv2.resize(cv2.imread(str(astronaut)), (200, 200))
    hsv = cv2.cvtColor(face, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 90) % 180  # another person, as far as colours go
    other = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    video = tmp_path / "cut.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 360))
    plan = [("left", face)] * 10 + [(None, None)] * 20 + [("right", face)] * 10 + [("left", other)] * 10
    for place, who in plan:
        frame = np.full((360, 640, 3), 90, np.uint8)
        if place is not None:
            x = 40 if place == "left" else 400
            frame[80:280, x:x + 200] = who
        writer.write(frame)
    writer.release()
    ids = [[f.face_id for f in result.faces] for result in Predictor("fast").stream(str(video))]
    first, back, newcomer = ids[:10], ids[30:40], ids[40:50]
    assert all(len(frame) == 1 for frame in first + back + newcomer) and ids[10:30] == [[]] * 20
    assert {frame[0] for frame in first} == {frame[0] for frame in back} == {0}
    assert {frame[0] for frame in newcomer} == {1}


def test_annotated_video_for_browsers_or_a_note_that_says_why_not(astronaut_video, tmp_path):
    lines = []
    run_prediction(str(astronaut_video), out_dir=tmp_path / "mp4", echo=lines.append, max_frames=3)
    mp4 = next((tmp_path / "mp4").glob("*_annotated.mp4"))
    capture = cv2.VideoCapture(str(mp4))
    codec = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    capture.release()
    assert codec in ("avc1", "h264") or any("browsers do not" in line for line in lines)
    run_prediction(str(astronaut_video), out_dir=tmp_path / "webm", echo=lines.append, max_frames=3,
                   video_format="webm")
    webm = next((tmp_path / "webm").glob("*_annotated.webm"))
    capture = cv2.VideoCapture(str(webm))
    assert capture.read()[0] and int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"VP80", b"vp80")
    capture.release()


def test_export_leaves_only_its_files_and_reuses_an_earlier_export(tiny_checkpoint, tmp_path, monkeypatch):
    import vitfer
    from vitfer.models import export as exporter
    from vitfer.models.backend import onnx_file_for

    out = tmp_path / "first" / "tiny.onnx"
    vitfer.export(tiny_checkpoint, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.onnx"]  # no .partial, no .data beside it
    onnx_file_for(tiny_checkpoint, quantized=False)  # as a prediction with --backend onnx leaves it in the cache
    monkeypatch.setattr(exporter, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    again = vitfer.export(tiny_checkpoint, tmp_path / "second" / "tiny.onnx")
    assert again["files"][0].read_bytes() == onnx_file_for(tiny_checkpoint, quantized=False).read_bytes()


def test_the_command_answers_h_version_and_lists_the_shipped_models_first():
    runner = CliRunner()
    assert runner.invoke(app, ["-h"]).exit_code == 0 and "predict" in runner.invoke(app, ["-h"]).output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("vitfer ")
    listed = runner.invoke(app, ["models"])
    assert listed.exit_code == 0 and listed.output.splitlines()[0] == "shipped models (--model NAME):"
    assert len(listed.output.splitlines()) == 5 and "vit_base" not in listed.output  # timm's list: --all
    assert "vit_base_patch16_224" in runner.invoke(app, ["models", "--all"]).output


def test_an_onnx_graph_that_disagrees_with_its_description_is_refused(tmp_path):
    """A graph whose outputs are not one score per label (3 for 7) must not answer with three probabilities."""
    import onnx
    from onnx import TensorProto, helper

    from vitfer.errors import ModelError
    from vitfer.meta import ModelMeta

    meta = ModelMeta({"name": "cnn3"}, Preprocess(img_size=48, in_channels=1), EMOTIONS_7)
    for outputs, inputs, message in ((3, [1, 48, 48], "gives .* scores per face for 7 labels"),
                                     (7, [1, 64, 64], "its graph takes")):
        x = helper.make_tensor_value_info("input", TensorProto.UINT8, ["batch", *inputs])
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", outputs])
        nodes = [helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
                 helper.make_node("ReduceMean", ["f"], ["m"], keepdims=0, axes=[2, 3]),
                 helper.make_node("Tile", ["m", "reps"], ["logits"])]
        reps = helper.make_tensor("reps", TensorProto.INT64, [2], [1, outputs])
        model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [reps]),
                                  opset_imports=[helper.make_opsetid("", 13)])
        entry = model.metadata_props.add()
        entry.key, entry.value = "vitfer", json.dumps(meta.to_dict())
        path = tmp_path / f"bad{outputs}.onnx"
        onnx.save(model, str(path))
        with pytest.raises(ModelError, match=message):
            OnnxBackend(path)


def test_outputs_that_cannot_be_folders_and_folders_that_look_like_images(tmp_path, astronaut):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for extra in ([], ["--exist-ok"]):
        result = CliRunner().invoke(app, ["predict", str(astronaut), "--out", str(notes), *extra])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "is a file" in result.output
    assert notes.read_text() == "mine" and not (tmp_path / "notes.txt2").exists()
    folder = tmp_path / "photos"
    (folder / "album.jpg").mkdir(parents=True)  # a folder with an image's name, holding an image
    cv2.imwrite(str(folder / "album.jpg" / "inside.jpg"), cv2.imread(str(astronaut)))
    summary = run_prediction(str(folder), out_dir=None, echo=lambda line: None)
    assert summary.frames == 1 and summary.errors == []  # the image inside, once; the folder is no error


def test_serving_the_network_says_so(monkeypatch, capsys):
    import vitfer.serving.app as serving
    from vitfer import api

    monkeypatch.setattr(serving, "serve", lambda *args: None)
    api.serve(host="0.0.0.0")
    assert "answers every machine" in capsys.readouterr().err
    api.serve(host="127.0.0.1")
    assert capsys.readouterr().err == ""


def test_video_frames_over_the_pixel_limit_are_refused_from_the_header(astronaut_video, monkeypatch):
    from vitfer.errors import ImageTooLarge
    from vitfer.runtime import sources

    monkeypatch.setattr(sources, "MAX_PIXELS", 1000)  # a small limit stands in for a 130-megapixel video
    decoded = []
    monkeypatch.setattr(cv2.VideoCapture, "read", lambda self: decoded.append(1) or (False, None), raising=False)
    with pytest.raises(ImageTooLarge, match="over the limit of 1,000 pixels"):
        list(sources.iter_frames(str(astronaut_video)))
    assert decoded == []  # refused before a frame was decoded


def test_workers_default_to_one_per_core_for_many_photos_only(tmp_path, astronaut):
    from vitfer.runtime.predict import default_workers
    from vitfer.runtime.sources import Source

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(130):
        (folder / f"{i}.jpg").write_bytes(astronaut.read_bytes())
    assert default_workers(Source.of(str(folder)), cores=2) == 2
    assert default_workers(Source.of(str(folder)), cores=8) == 2  # 130 images: 2 workers' worth
    assert default_workers(Source.of(str(folder)), cores=1) == 1
    assert default_workers(Source.of(str(astronaut)), cores=8) == 1
    few = tmp_path / "few"
    few.mkdir()
    (few / "a.jpg").write_bytes(astronaut.read_bytes())
    assert default_workers(Source.of(str(few)), cores=8) == 1


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with PyGObject and GStreamer's RTSP server (see .ci/run)


def rtsp_server_available() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return Path(SYSTEM_PYTHON).is_file() and subprocess.run([SYSTEM_PYTHON, "-c", probe],
                                                             capture_output=True).returncode == 0


@pytest.mark.skipif(not rtsp_server_available(), reason="needs GStreamer's RTSP server for the system Python "
                                                        "(apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                                                        "gstreamer1.0-plugins-good)")
def test_a_live_rtsp_stream(astronaut, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([SYSTEM_PYTHON, str(Path(__file__).with_name("rtsp_server.py")), str(port),
                               str(astronaut)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        summary = run_prediction(f"rtsp://127.0.0.1:{port}/live", out_dir=None, save=tmp_path / "rows.csv",
                                 max_frames=5, echo=lambda line: None)
        rows = list(csv.DictReader(open(tmp_path / "rows.csv")))
    finally:
        server.terminate()
        server.wait(10)
    assert summary.frames == 5 and summary.faces == 5
    assert {row["face_id"] for row in rows} == {"0"} and {row["label"] for row in rows} == {"happy"}


def test_outputs_that_cannot_be_written_are_reported_never_announced(tmp_path, astronaut, monkeypatch):
    """A full disk or a read-only folder: an annotated image that was not written is an error naming it; rows
    that cannot be written are one line, and an earlier rows file stays as it was."""
    monkeypatch.setattr(cv2, "imwrite", lambda *args: False)  # as on a full disk
    lines = []
    summary = run_prediction(str(astronaut), out_dir=tmp_path / "out", echo=lines.append)
    assert summary.faces == 1 and len(summary.errors) == 1
    assert any(line.startswith("error: could not write the annotated image") for line in lines)
    monkeypatch.undo()
    save = tmp_path / "rows.csv"
    save.write_text("earlier rows\n")
    real_open = open

    def full_disk(path, *args, **kwargs):
        if str(path).endswith(".partial"):
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    result = CliRunner().invoke(app, ["predict", str(astronaut), "--save", str(save), "--exist-ok", "--no-save"])
    monkeypatch.undo()
    assert result.exit_code == 2 and "No space left on device" in result.output and result.output.count("\n") == 1
    assert save.read_text() == "earlier rows\n"


def test_an_unreadable_image_is_one_named_skip_and_the_rows_are_kept(tmp_path, astronaut, monkeypatch):
    """Permissions (root, who runs these tests, reads everything: the refusal is simulated where it happens)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "locked.jpg", "z.jpg"):
        (folder / name).write_bytes(astronaut.read_bytes())
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.jpg":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    save = tmp_path / "rows.csv"
    summary = run_prediction(str(folder), out_dir=None, save=save, echo=lambda line: None)
    assert summary.frames == 2 and summary.errors == [f"cannot read {folder / 'locked.jpg'}: Permission denied"]
    rows = list(csv.DictReader(open(save)))
    assert [Path(r["source"]).name for r in rows] == ["a.jpg", "locked.jpg", "z.jpg"]
    assert not save.with_name("rows.csv.partial").exists()
