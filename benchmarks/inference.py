"""Inference cost on this machine beside the `fer` package: per face through the public API, bulk throughput,
threads, face detectors, the whole video pipeline, and the accuracy-per-millisecond picture.

    python benchmarks/inference.py [--model default fast ferplus] [--fer-python PATH/fervenv/bin/python]
        [--fer-accuracy 0.6587] [--plot benchmarks/results/frontier.png] [--weights ../shared/weights]

Runtime floor only (ONNX Runtime, no torch): each model as `pip install vitfer` runs it.

- **Classifier**: one pre-cropped face through the public API (`Predictor(model, detector="none", threads=1)
  .predict(face)`: decode, runtime call, calibrated probabilities, result objects), the runtime call alone on one
  thread, and faces/s of 64 faces in one call (the backend's default threads). With --fer-python, fer's
  classifier call (`FER()._classify_emotions`, its quantised TFLite mini-Xception) is timed in the same run by its
  own environment (benchmarks/fer_package_speed.py) and every row gets its ratios to fer.
- **Frontier** (--plot): accuracy on each model's held-out test split (from its file's card: PrivateTest for the
  FER2013 models, FER+ Test for `ferplus`) against the milliseconds per face measured here; fer's PrivateTest
  accuracy is --fer-accuracy (benchmarks/accuracy_fer2013.py measured 0.6587).
- Threads of the runtime, detectors per 640x480 frame, and frames/s of `Predictor.stream` on a generated video.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from timing import timed  # benchmarks/timing.py
from vitfer.runtime.backends import OnnxBackend, create_backend
from vitfer.runtime.detectors import create_detector
from vitfer.runtime.predictor import Predictor
from vitfer.shipped import EXAMPLE_IMAGE, SHIPPED_ONNX


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    return head + "\n".join("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values())
                            + " |" for r in rows)


def model_file(name: str) -> Path:
    return SHIPPED_ONNX[name] if name in SHIPPED_ONNX else Path(name)


def test_accuracy(backend) -> tuple[str, float | None]:
    """The held-out test accuracy in a model file's card, and which split it is."""
    for key, value in backend.meta.card.items():
        if key.endswith("accuracy") and "Test" in key and "Public" not in key and "Valid" not in key:
            return key.removesuffix(" accuracy"), float(value)
    return "", None


def classifier_rows(name: str, crop: np.ndarray) -> list[dict]:
    """One face through the public API and the runtime call alone (one thread); 64 faces in one call."""
    predictor = Predictor(model_file(name), detector="none", threads=1)
    face = predictor.preprocess.decode([crop])
    many = np.repeat(face, 64, axis=0)
    bulk = create_backend(model_file(name))  # default threads: one for a few faces, every core for a batch
    api = timed(lambda: predictor.predict(crop), 500)
    runtime = timed(lambda: predictor.backend.probabilities(face), 500)
    batch = timed(lambda: bulk.probabilities(many), 20)
    split, accuracy = test_accuracy(predictor.backend)
    return [{"model": name, "input": f"{predictor.preprocess.img_size}px",
             "test accuracy (card)": "-" if accuracy is None else f"{accuracy:.4f} ({split})",
             "public API, 1 face (ms)": 1000 * statistics.median(api),
             "runtime call, 1 face (ms)": 1000 * statistics.median(runtime),
             "faces/s (batch 64)": 64 / statistics.median(batch)}]


def thread_rows(name: str) -> list[dict]:
    """The runtime with 1 and 2 threads and with its default, at batch 1 and 64."""
    batch = np.random.default_rng(0).integers(0, 256, (64, 1, 48, 48), dtype=np.uint8)
    rows = []
    for threads in (1, 2, None):
        backend = OnnxBackend(model_file(name), threads)
        one = timed(lambda b=backend: b.probabilities(batch[:1]), 300)
        many = timed(lambda b=backend: b.probabilities(batch), 10)
        rows.append({"model": name, "threads": threads or "default (1 up to 4 faces, else all cores)",
                     "latency 1 face (ms, median)": 1000 * statistics.median(one),
                     "faces/s (batch 64)": 64 / statistics.median(many)})
    return rows


def detector_rows(weights: Path) -> list[dict]:
    frame = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (640, 480))
    rows = []
    for name, path in (("yunet", None), ("haar", None), ("ssd", weights / "opencv_face_detector_uint8.pb")):
        if path is not None and not path.is_file():
            rows.append({"detector": name, "ms / 640x480 frame": float("nan"), "faces found": f"missing {path}"})
            continue
        detector = create_detector(name, path)
        seconds = timed(lambda d=detector: d.detect(frame), 20)
        rows.append({"detector": name, "ms / 640x480 frame": 1000 * statistics.median(seconds),
                     "faces found": len(detector.detect(frame))})
    return rows


def make_video(path: Path, frames: int = 90) -> Path:
    """The example photo panning slowly across a 640x480 frame (one face per frame)."""
    photo = cv2.imread(str(EXAMPLE_IMAGE))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    canvas = np.zeros((480, 640, 3), np.uint8)
    for i in range(frames):
        canvas[:] = 40
        x = 20 + (i * 2) % 100
        canvas[:, x:x + 512][:480] = photo[:480]
        writer.write(canvas)
    writer.release()
    return path


def pipeline_rows(name: str, video: Path) -> list[dict]:
    rows = []
    for detector in ("yunet", "haar"):
        predictor = Predictor(model_file(name), detector=detector)
        start = time.perf_counter()
        frames = faces = 0
        for result in predictor.stream(str(video)):
            frames += 1
            faces += len(result.faces)
        label = f"{detector} + {name}" + (" (the default: no flags)" if (detector, name) == ("yunet", "default") else "")
        rows.append({"pipeline": label, "frames": frames, "faces": faces,
                     "FPS": frames / (time.perf_counter() - start)})
    return rows


def fer_figures(fer_python: str, video: Path, threads: int, work: Path) -> dict:
    """The fer package's latency, throughput and video FPS, measured by its own environment."""
    out = work / "fer.json"
    helper = Path(__file__).with_name("fer_package_speed.py")
    subprocess.run([fer_python, str(helper), str(video), str(threads), str(out)], check=True,
                   capture_output=True, text=True)
    return json.loads(out.read_text())


def with_fer_classifier(rows: list[dict], fer: dict | None) -> list[dict]:
    """fer's row, and each row's cost beside fer's (below 1: cheaper than fer; faces/s: above 1 is better)."""
    if fer is None:
        return rows
    rows = rows + [{"model": "fer 25.10.3 (classifier call)", "input": "64px", "test accuracy (card)": "-",
                    "public API, 1 face (ms)": fer["latency_ms"], "runtime call, 1 face (ms)": fer["latency_ms"],
                    "faces/s (batch 64)": fer["faces_per_second"]}]
    for row in rows:
        row["API ms / fer's"] = row["public API, 1 face (ms)"] / fer["latency_ms"]
        row["faces/s / fer's"] = row["faces/s (batch 64)"] / fer["faces_per_second"]
    return rows


def plot_frontier(rows: list[dict], fer: dict | None, fer_accuracy: float, out: Path) -> None:
    """Held-out test accuracy against milliseconds per face (public API, one thread), one point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for row in rows:
        card = row["test accuracy (card)"]
        if card == "-":
            continue
        accuracy, split = float(card.split()[0]), card.split("(", 1)[1].rstrip(")")
        ax.scatter(row["public API, 1 face (ms)"], 100 * accuracy, s=40)
        ax.annotate(f"{row['model']} ({split})", (row["public API, 1 face (ms)"], 100 * accuracy),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    if fer is not None:
        ax.scatter(fer["latency_ms"], 100 * fer_accuracy, s=40, marker="s", color="black")
        ax.annotate("fer 25.10.3 (FER2013 PrivateTest)", (fer["latency_ms"], 100 * fer_accuracy),
                    textcoords="offset points", xytext=(6, -12), fontsize=8)
    slowest = max([r["public API, 1 face (ms)"] for r in rows] + [fer["latency_ms"] if fer else 0])
    ax.set_xlim(0, 1.45 * slowest)  # room for the labels
    ax.set(xlabel="milliseconds per face (one face, one thread; this run)", ylabel="test accuracy (%)",
           title="Accuracy against cost per face")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["default", "fast", "ferplus"],
                        help="shipped names or .onnx files; the first one also for threads and the pipeline")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "weights")
    parser.add_argument("--threads", type=int, default=2, help="threads of OpenCV and of fer's TensorFlow")
    parser.add_argument("--fer-python", help="python of an environment with fer==25.10.3, to measure it beside")
    parser.add_argument("--fer-accuracy", type=float, default=0.6587,
                        help="fer's PrivateTest accuracy for the picture (benchmarks/accuracy_fer2013.py)")
    parser.add_argument("--plot", type=Path, help="write the accuracy-per-millisecond picture here (PNG)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    crop = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (48, 48))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_video(work / "pan.avi")
        fer = fer_figures(args.fer_python, video, args.threads, work) if args.fer_python else None
        print(f"models {', '.join(args.model)}; ONNX Runtime; OpenCV and fer with {args.threads} threads\n")
        rows = with_fer_classifier([row for name in args.model for row in classifier_rows(name, crop)], fer)
        print("## Classifier, one pre-cropped face and 64 at once\n\n" + table(rows) + "\n")
        if args.plot:
            plot_frontier(rows, fer, args.fer_accuracy, args.plot)
            print(f"![accuracy against cost per face]({args.plot.name})\n")
        print("## Threads of the runtime\n\n" + table([r for n in args.model for r in thread_rows(n)]) + "\n")
        print("## Face detectors\n\n" + table(detector_rows(args.weights)) + "\n")
        rows = pipeline_rows(args.model[0], video)
        if fer is not None:
            rows.append({"pipeline": "fer 25.10.3 (Haar + TFLite)", "frames": fer["video_frames"],
                         "faces": fer["video_faces"], "FPS": fer["video_fps"]})
            for row in rows:
                row["FPS / fer"] = row["FPS"] / fer["video_fps"]
        print("## Whole pipeline on a 640x480 video (90 frames)\n\n" + table(rows))


if __name__ == "__main__":
    main()
