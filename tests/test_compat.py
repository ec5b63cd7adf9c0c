"""Drop-ins for fer and deepface users: their answer shapes, vitfer's answers."""

import cv2
import numpy as np
import pytest

from vitfer.compat import FER, analyze
from vitfer.runtime.predictor import Predictor


def test_fer_users_change_one_import(astronaut):
    image = cv2.imread(str(astronaut))
    faces = FER().detect_emotions(image)
    ours = Predictor().predict(image)
    assert len(faces) == len(ours) == 1
    x1, y1, x2, y2 = ours[0].box
    assert faces[0]["box"] == [x1, y1, x2 - x1, y2 - y1]  # fer's x, y, w, h
    assert list(faces[0]["emotions"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert sum(faces[0]["emotions"].values()) == pytest.approx(1, abs=1e-3)
    assert FER().top_emotion(image) == ("happy", faces[0]["emotions"]["happy"])
    assert FER().top_emotion(np.full((200, 200, 3), 255, np.uint8)) == (None, None)


def test_deepface_users_get_analyze(astronaut):
    [face] = analyze(str(astronaut))
    assert face["dominant_emotion"] == "happy" and sum(face["emotion"].values()) == pytest.approx(100, abs=0.1)
    assert set(face["region"]) == {"x", "y", "w", "h"} and 0 < face["face_confidence"] <= 1
    blank = np.full((120, 120, 3), 255, np.uint8)
    with pytest.raises(ValueError, match="Face could not be detected"):
        analyze(blank)
    assert len(analyze(blank, enforce_detection=False)) == 1
    with pytest.raises(ValueError, match="emotions only"):
        analyze(blank, actions=("age",))
