"""Inference speed on this machine: classifier backends, face detectors, and the whole video pipeline.

    python benchmarks/inference.py [--model default] [--weights ../shared/weights] [--threads 2]

Prints three Markdown tables: per-face classification throughput (batch 64) and single-face
latency for PyTorch, ONNX Runtime fp32 and int8; detector time per 640x480 frame; and frames
per second of `Predictor.stream` (detect + crop + classify + track) over a generated video.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vitfer.faces.detectors import create_detector
from vitfer.inference.backends import EXAMPLE_IMAGE, OnnxBackend, TorchBackend
from vitfer.inference.export import export_onnx
from vitfer.inference.predictor import Predictor
from vitfer.models.checkpoint import load_model, resolve_model


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    return head + "\n".join("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values())
                            + " |" for r in rows)


def timed(fn, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def backend_rows(model: Path, threads: int, work: Path) -> list[dict]:
    size = load_model(model).preprocess.img_size
    batch = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    single = batch[:1]
    onnx32 = export_onnx(model, work / "model.onnx")
    onnx8 = export_onnx(model, work / "model.onnx", quantize=True)
    backends = [("PyTorch fp32", TorchBackend(load_model(model))), ("ONNX Runtime fp32", OnnxBackend(onnx32, threads)),
                ("ONNX Runtime int8", OnnxBackend(onnx8, threads))]
    rows = []
    for name, backend in backends:
        many = timed(lambda b=backend: b.probabilities(batch), 10)
        one = timed(lambda b=backend: b.probabilities(single), 50)
        rows.append({"backend": name, "input": f"{size}px", "faces/s (batch 64)": 64 / statistics.median(many),
                     "latency 1 face (ms, median)": 1000 * statistics.median(one),
                     "p95 (ms)": 1000 * float(np.percentile(one, 95))})
    return rows


def detector_rows(weights: Path) -> list[dict]:
    frame = cv2.resize(cv2.imread(str(EXAMPLE_IMAGE)), (640, 480))
    choices = [("haar", None), ("yunet", weights / "face_detection_yunet.onnx"),
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
    for detector, path in (("haar", None), ("yunet", weights / "face_detection_yunet.onnx")):
        if path is not None and not path.is_file():
            continue
        predictor = Predictor(model, detector=detector, detector_model=path, backend=backend)
        start = time.perf_counter()
        frames = faces = 0
        for result in predictor.stream(str(video)):
            frames += 1
            faces += len(result.faces)
        rows.append({"pipeline": f"{detector} + {backend}", "frames": frames, "faces": faces,
                     "FPS": frames / (time.perf_counter() - start)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "weights")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"model {model.name}, {args.threads} threads, torch {torch.__version__}\n")
        print("## Classifier\n\n" + table(backend_rows(model, args.threads, work)) + "\n")
        print("## Face detectors\n\n" + table(detector_rows(args.weights)) + "\n")
        video = make_video(work / "pan.avi")
        rows = pipeline_rows(model, args.weights, video, "torch") + pipeline_rows(model, args.weights, video, "onnx")
        print("## Whole pipeline on a 640x480 video (90 frames)\n\n" + table(rows))


if __name__ == "__main__":
    main()
