"""Inference speed on this machine: classifier backends, face detectors, and the whole video pipeline.

    python benchmarks/inference.py [--model default [fast ...]] [--weights ../shared/weights] [--threads 2]
        [--fer-python PATH/fervenv/bin/python]

Prints Markdown tables: per-face classification throughput (batch 64) and single-face latency for PyTorch,
ONNX Runtime fp32 and int8, and threads of the default backend, for each model given; detector time per 640x480
frame; and frames per second of `Predictor.stream` (detect + crop + classify + track) over a generated video,
for the first model.
With --fer-python (an environment with fer==25.10.3), the `fer` package is measured in the same run
(benchmarks/fer_package_speed.py) and every vitfer row gets its ratio to fer.
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
import torch

from timing import timed  # benchmarks/timing.py
from vitfer.runtime.detectors import create_detector
from vitfer.runtime.backends import OnnxBackend
from vitfer.models.backend import TorchBackend
from vitfer.shipped import EXAMPLE_IMAGE
from vitfer.models.export import export_onnx
from vitfer.runtime.predictor import Predictor
from vitfer.models.checkpoint import load_model
from vitfer.shipped import resolve_model


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    return head + "\n".join("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values())
                            + " |" for r in rows)


def backend_rows(model: Path, work: Path) -> list[dict]:
    size = load_model(model).preprocess.img_size
    batch = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    single = batch[:1]
    onnx32 = export_onnx(model, work / "model.onnx")
    onnx8 = export_onnx(model, work / "model.onnx", quantize=True)
    # ONNX Runtime as vitfer runs it by default: one thread for a few faces, every core for a batch
    backends = [("PyTorch fp32", TorchBackend(load_model(model))), ("ONNX Runtime fp32", OnnxBackend(onnx32)),
                ("ONNX Runtime int8", OnnxBackend(onnx8))]
    rows = []
    for name, backend in backends:
        many = timed(lambda b=backend: b.probabilities(batch), 10)
        one = timed(lambda b=backend: b.probabilities(single), 50)
        rows.append({"model": model.stem, "backend": name, "input": f"{size}px",
                     "faces/s (batch 64)": 64 / statistics.median(many),
                     "latency 1 face (ms, median)": 1000 * statistics.median(one),
                     "p95 (ms)": 1000 * float(np.percentile(one, 95))})
    return rows


def thread_rows(model: Path, work: Path) -> list[dict]:
    """The default backend (ONNX Runtime int8) with 1 and 2 threads and with its default, at batch 1 and 64."""
    onnx8 = export_onnx(model, work / "threads.onnx", quantize=True)
    batch = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    rows = []
    for threads in (1, 2, None):
        backend = OnnxBackend(onnx8, threads)
        one = timed(lambda b=backend: b.probabilities(batch[:1]), 300)
        many = timed(lambda b=backend: b.probabilities(batch), 10)
        rows.append({"model": model.stem, "threads": threads or "default (1 up to 4 faces, else all cores)",
                     "latency 1 face (ms, median)": 1000 * statistics.median(one),
                     "faces/s (batch 64)": 64 / statistics.median(many)})
    return rows


def detector_rows(weights: Path) -> list[dict]:
    frame = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (640, 480))
    choices = [("yunet", None), ("haar", None),
               ("ssd", weights / "opencv_face_detector_uint8.pb")]
    rows = []
    for name, path in choices:
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


def pipeline_rows(model: Path, weights: Path, video: Path, backend: str) -> list[dict]:
    rows = []
    for detector, path in (("yunet", None), ("haar", None)):  # YuNet ships with vitfer
        if path is not None and not path.is_file():
            continue
        predictor = Predictor(model, detector=detector, detector_model=path, backend=backend)
        start = time.perf_counter()
        frames = faces = 0
        for result in predictor.stream(str(video)):
            frames += 1
            faces += len(result.faces)
        default = (detector, backend) == ("yunet", "auto")
        name = f"{detector} + {backend}" + (" (the default: no flags)" if default else "")
        rows.append({"pipeline": name, "frames": frames, "faces": faces,
                     "FPS": frames / (time.perf_counter() - start)})
    return rows


def fer_figures(fer_python: str, video: Path, threads: int, work: Path) -> dict:
    """The fer package's latency, throughput and video FPS, measured by its own environment."""
    out = work / "fer.json"
    helper = Path(__file__).with_name("fer_package_speed.py")
    subprocess.run([fer_python, str(helper), str(video), str(threads), str(out)], check=True,
                   capture_output=True, text=True)
    return json.loads(out.read_text())


def with_fer(rows: list[dict], fer: dict | None, classifier: bool) -> list[dict]:
    """Add fer's row and each row's ratio to fer (higher is better for vitfer in every ratio)."""
    if fer is None:
        return rows
    if classifier:
        rows = rows + [{"model": "fer 25.10.3", "backend": "TFLite mini-Xception", "input": "64px",
                        "faces/s (batch 64)": fer["faces_per_second"], "latency 1 face (ms, median)": fer["latency_ms"],
                        "p95 (ms)": fer["p95_ms"]}]
        for row in rows:
            row["throughput / fer"] = row["faces/s (batch 64)"] / fer["faces_per_second"]
            row["fer latency / this"] = fer["latency_ms"] / row["latency 1 face (ms, median)"]
        return rows
    rows = rows + [{"pipeline": "fer 25.10.3 (Haar + TFLite)", "frames": fer["video_frames"],
                    "faces": fer["video_faces"], "FPS": fer["video_fps"]}]
    for row in rows:
        row["FPS / fer"] = row["FPS"] / fer["video_fps"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["default"], help="models to time; the first one also for "
                        "threads and the whole pipeline")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "weights")
    parser.add_argument("--threads", type=int, default=2, help="threads of PyTorch and OpenCV (ONNX Runtime runs with "
                        "vitfer's default; its own table times 1 and 2 threads)")
    parser.add_argument("--fer-python", help="python of an environment with fer==25.10.3, to measure it beside")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    models = [resolve_model(name) for name in args.model]
    model = models[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_video(work / "pan.avi")
        fer = fer_figures(args.fer_python, video, args.threads, work) if args.fer_python else None
        print(f"models {', '.join(m.name for m in models)}, {args.threads} threads, torch {torch.__version__}\n")
        rows = [row for each in models for row in backend_rows(each, work)]
        print("## Classifier\n\n" + table(with_fer(rows, fer, True)) + "\n")
        rows = [row for each in models for row in thread_rows(each, work)]
        print("## Threads of the default backend (ONNX Runtime int8)\n\n" + table(rows) + "\n")
        print("## Face detectors\n\n" + table(detector_rows(args.weights)) + "\n")
        rows = [row for backend in ("auto", "torch", "onnx")
                for row in pipeline_rows(model, args.weights, video, backend)]
        print("## Whole pipeline on a 640x480 video (90 frames)\n\n" + table(with_fer(rows, fer, False)))


if __name__ == "__main__":
    main()
