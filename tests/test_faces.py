import hashlib

import cv2
import numpy as np
import pytest

from vitfer.faces.crop import crop_face, square_box
from vitfer.faces.detectors import DetectorError, FaceBox, HaarDetector, create_detector, fetch
from tests.conftest import SHARED

WEIGHTS = SHARED / "weights"
needs_weights = pytest.mark.skipif(not (WEIGHTS / "face_detection_yunet.onnx").is_file(),
                                   reason="../shared/weights is absent: detector model files not available")


def test_shapes_image_has_no_face():
    image = np.full((240, 320, 3), 255, np.uint8)
    cv2.rectangle(image, (40, 40), (120, 160), (0, 0, 255), -1)
    cv2.circle(image, (220, 120), 50, (255, 0, 0), -1)
    assert HaarDetector().detect(image) == []


def test_haar_finds_the_astronaut(astronaut):
    faces = HaarDetector().detect(cv2.imread(str(astronaut)))
    assert len(faces) == 1
    face = faces[0]
    assert 150 < (face.x1 + face.x2) / 2 < 260 and 50 < (face.y1 + face.y2) / 2 < 160  # her face, top middle


@needs_weights
@pytest.mark.parametrize("name,path", [("yunet", WEIGHTS / "face_detection_yunet.onnx"),
                                       ("ssd", WEIGHTS / "opencv_face_detector_uint8.pb")])
def test_dnn_detectors_from_local_files(name, path, astronaut):
    faces = create_detector(name, path).detect(cv2.imread(str(astronaut)))
    assert len(faces) == 1 and 0.5 <= faces[0].score <= 1


@needs_weights
def test_fetch_by_name_checks_sha256(tmp_path):
    source = WEIGHTS / "face_detection_yunet.onnx"
    got = fetch("face_detection_yunet.onnx", url=source.as_uri(), directory=tmp_path)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(DetectorError, match="SHA-256"):
        fetch("opencv_face_detector.pbtxt", url=source.as_uri(), directory=tmp_path)
    with pytest.raises(DetectorError, match="could not download"):
        fetch("opencv_face_detector.pbtxt", url=(tmp_path / "missing").as_uri(), directory=tmp_path)


def test_missing_detector_file_is_named(tmp_path):
    with pytest.raises(DetectorError, match="nothing.onnx"):
        create_detector("yunet", tmp_path / "nothing.onnx")
    with pytest.raises(DetectorError, match="unknown detector"):
        create_detector("mtcnn")


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
