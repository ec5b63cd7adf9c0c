"""Helper for inference.py, run with the python of an environment that has fer==25.10.3.

    fervenv/bin/python benchmarks/fer_package_speed.py VIDEO THREADS out.json

Times the `fer` package as its users run it (`FER()`: the quantised TFLite mini-Xception and OpenCV's Haar
cascade): one pre-cropped face at a time, 64 faces in one `_classify_emotions` call (fer classifies them one by
one inside), and `detect_emotions` on every frame of VIDEO (detect + crop + classify). Writes the medians.
"""

import json
import statistics
import sys
import time

import cv2
import numpy as np
import tensorflow as tf
from fer.fer import FER
from timing import timed  # benchmarks/timing.py, beside this file


def main(video: str, threads: str, out: str) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    cv2.setNumThreads(int(threads))
    detector = FER()  # the package's defaults: TFLite classifier, Haar cascade
    classify = detector._classify_emotions
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (64, 64, 64)).astype("float32") / 127.5 - 1.0  # fer's 64x64 input in [-1, 1]
    one = timed(lambda: classify(faces[:1]), 200)
    many = timed(lambda: classify(faces), 10)
    capture = cv2.VideoCapture(video)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    detector.detect_emotions(frames[0])  # warm-up
    start = time.perf_counter()
    found = sum(len(detector.detect_emotions(frame)) for frame in frames)
    seconds = time.perf_counter() - start
    with open(out, "w") as handle:
        json.dump({"latency_ms": 1000 * statistics.median(one), "p95_ms": 1000 * float(np.percentile(one, 95)),
                   "faces_per_second": 64 / statistics.median(many), "video_fps": len(frames) / seconds,
                   "video_frames": len(frames), "video_faces": found}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
