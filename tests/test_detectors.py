import hashlib

import cv2
import numpy as np
import pytest

from vitfer.runtime.crop import crop_face, square_box
from vitfer.runtime.detectors import FaceBox, HaarDetector, create_detector
from vitfer.errors import DetectorError, DownloadError
from vitfer.hub import fetch
from vitfer.shipped import BUNDLED_YUNET
from tests.conftest import SHARED

WEIGHTS = SHARED / "weights"
needs_weights = pytest.mark.skipif(not (WEIGHTS / "opencv_face_detector_uint8.pb").is_file(),
                                   reason="../shared/weights is absent: the SSD detector's files are not available")


def test_shapes_image_has_no_face():
    image = np.full((240, 320, 3), 255, np.uint8)
    cv2.rectangle(image, (40, 40), (120, 160), (0, 0, 255), -1)
    cv2.circle(image, (220, 120), 50, (255, 0, 0), -1)
    assert HaarDetector().detect(image) == []


def astronaut_composite(astronaut) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Four copies of the astronaut's head at four sizes on a 1280x720 frame, and where each face's centre is."""
    head = cv2.imread(str(astronaut))[20:260, 120:330]
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    centres = []
    for x, y, scale in ((40, 40, 1.6), (500, 60, 1.0), (800, 300, 0.6), (1100, 500, 0.35)):
        copy = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[y:y + copy.shape[0], x:x + copy.shape[1]] = copy
        centres.append((x + int(105 * scale), y + int(110 * scale)))  # her face in the 210 x 240 crop
    return canvas, centres


def test_the_default_detector_is_the_shipped_yunet_and_finds_every_face(astronaut):
    detector = create_detector()
    assert detector.name == "yunet"
    image, centres = astronaut_composite(astronaut)
    faces = detector.detect(image)
    assert len(faces) == 4
    for cx, cy in centres:  # each face found once, by a box around it
        assert sum(f.x1 < cx < f.x2 and f.y1 < cy < f.y2 for f in faces) == 1
    assert all(0.5 <= f.score <= 1 for f in faces)
    strict = create_detector(threshold=min(f.score for f in faces) + 1e-3).detect(image)
    assert len(strict) == 3  # the threshold drops the least sure face


def test_haar_scores_are_real_and_its_threshold_works(astronaut):
    image = cv2.imread(str(astronaut))
    faces = HaarDetector(min_neighbors=1, threshold=0.0).detect(image)
    scores = sorted(f.score for f in faces)
    assert len(faces) >= 2 and 0 < scores[0] < 0.5 < scores[-1] < 1  # a clear face and weaker candidates
    assert len(create_detector("haar", threshold=0.5).detect(image)) == 1
    assert create_detector("haar", threshold=0.9999).detect(image) == []


def test_haar_finds_the_astronaut(astronaut):
    faces = HaarDetector().detect(cv2.imread(str(astronaut)))
    assert len(faces) == 1
    face = faces[0]
    assert 150 < (face.x1 + face.x2) / 2 < 260 and 50 < (face.y1 + face.y2) / 2 < 160  # her face, top middle


@pytest.mark.parametrize("name,path", [("yunet", BUNDLED_YUNET),
                                       pytest.param("ssd", WEIGHTS / "opencv_face_detector_uint8.pb",
                                                    marks=needs_weights)])
def test_dnn_detectors_from_local_files(name, path, astronaut):
    faces = create_detector(name, path).detect(cv2.imread(str(astronaut)))
    assert len(faces) == 1 and 0.5 <= faces[0].score <= 1


def test_fetch_by_name_checks_sha256(tmp_path):
    source = BUNDLED_YUNET  # the same file as OpenCV Zoo's, which the name stands for
    got = fetch("face_detection_yunet.onnx", url=source.as_uri(), directory=tmp_path)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch("opencv_face_detector.pbtxt", url=source.as_uri(), directory=tmp_path)
    with pytest.raises(DownloadError, match="could not download"):
        fetch("opencv_face_detector.pbtxt", url=(tmp_path / "missing").as_uri(), directory=tmp_path)


def test_missing_detector_file_is_named(tmp_path):
    with pytest.raises(DetectorError, match="nothing.onnx"):
        create_detector("yunet", tmp_path / "nothing.onnx")
    with pytest.raises(DetectorError, match="unknown detector"):
        create_detector("retinaface")


def test_square_crop_inside_frame():
    assert square_box(FaceBox(40, 40, 60, 80), 200, 200, margin=0.0) == (30, 40, 70, 80)
    assert square_box(FaceBox(40, 40, 60, 80), 200, 200, margin=0.5) == (20, 30, 80, 90)


def test_square_crop_shifted_at_borders_and_clipped_when_too_large():
    x1, y1, x2, y2 = square_box(FaceBox(0, 0, 30, 40), 100, 100, margin=0.5)
    assert (x1, y1) == (0, 0) and x2 - x1 == y2 - y1 == 60
    x1, y1, x2, y2 = square_box(FaceBox(80, 70, 100, 100), 100, 100, margin=0.2)
    assert (x2, y2) == (100, 100) and x2 - x1 == y2 - y1 == 36
    assert square_box(FaceBox(0, 0, 50, 90), 60, 100, margin=0.5) == (0, 0, 60, 100)
    image = np.zeros((100, 60, 3), np.uint8)
    assert crop_face(image, FaceBox(0, 0, 50, 90), 0.5).shape == (100, 60, 3)


@pytest.mark.skipif(not (WEIGHTS / "mobilenet_v2_1.0_224_quant.tflite").is_file(),
                    reason="../shared/weights is absent: no MobileNetV2 file to pack")
def test_imagenet_weights_by_name_come_out_of_their_archive(tmp_path, monkeypatch):
    import tarfile

    from vitfer.hub import local_or_named

    archive = tmp_path / "mobilenet.tgz"
    with tarfile.open(archive, "w:gz") as tar:  # packed as TensorFlow's hosted .tgz is
        tar.add(WEIGHTS / "mobilenet_v2_1.0_224_quant.tflite", arcname="./mobilenet_v2_1.0_224_quant.tflite")
    got = fetch("mobilenet_v2_1.0_224_quant.tflite", url=archive.as_uri(), directory=tmp_path / "cache")
    assert got.read_bytes() == (WEIGHTS / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()
    monkeypatch.setenv("VITFER_CACHE", str(tmp_path / "home"))
    (tmp_path / "home" / "downloads").mkdir(parents=True)
    got.replace(tmp_path / "home" / "downloads" / got.name)  # already downloaded: no network needed
    assert local_or_named("mobilenet_v2_1.0_224_quant.tflite", "x") == tmp_path / "home" / "downloads" / got.name


def test_mtcnn_boxes_become_face_boxes(monkeypatch):
    import sys
    import types

    from vitfer.runtime.detectors import create_detector
    from vitfer.errors import DetectorError

    monkeypatch.setitem(sys.modules, "mtcnn", None)  # not installed
    with pytest.raises(DetectorError, match=r"pip install 'vitfer\[mtcnn\]'"):
        create_detector("mtcnn")

    class FakeMTCNN:  # the mtcnn package's answer: box as x, y, w, h and a confidence, on an RGB image
        def detect_faces(self, rgb):
            assert rgb[0, 0].tolist() == [30, 20, 10]
            return [{"box": [-4, 10, 50, 60], "confidence": 0.99}, {"box": [100, 100, 30, 30], "confidence": 0.3}]

    monkeypatch.setitem(sys.modules, "mtcnn", types.SimpleNamespace(MTCNN=FakeMTCNN))
    image = np.zeros((200, 200, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # BGR
    boxes = create_detector("mtcnn", threshold=0.5).detect(image)
    assert [(b.x1, b.y1, b.x2, b.y2, b.score) for b in boxes] == [(0, 10, 46, 70, 0.99)]
