"""What each cost lever of issue 27 buys per face, timed in one run: ONNX Runtime, one thread, one face.

Table 1, the graph of a shipped model: fp32, the shipped file (dynamic int8 matrix products), static int8
convolutions (QDQ, calibrated on Training faces), static int8 convolutions and matrix products. Each variant's
PublicTest accuracy and its agreement with the shipped file say what it costs in labels.
Table 2, the architecture: untrained hybrid ViTs (a model's cost does not depend on its weights) exported and
quantised as `vitfer export --quantize` does, beside the shipped `fast`'s architecture.
With --fer-python, fer's classifier call is timed in the same run and every row gets its ratio to it.

    python benchmarks/cost_levers.py --data /tmp/data/fer2013 --fer-python /tmp/fervenv/bin/python \
        --out benchmarks/results/cost_levers.md
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from inference import fer_figures, make_video, table  # benchmarks/inference.py
from timing import publish, timed  # benchmarks/timing.py
from vitfer.models.checkpoint import count_parameters, describe, load_model, save_model
from vitfer.models.export import export_onnx
from vitfer.models.factory import build_model
from vitfer.models.inputs import in_batches
from vitfer.preprocess import Preprocess
from vitfer.shipped import SHIPPED_ONNX

#: (name, hybrid ViT settings) of the architectures timed in table 2; the first is the shipped fast's
ARCHITECTURES = [
    ("fast as shipped: stem to stage 5, 4 blocks, dim 192", {}),
    ("stem to stage 4, 4 blocks, dim 192", {"stem_blocks": 4}),
    ("stem to stage 5, 2 blocks, dim 192", {"depth": 2}),
    ("stem to stage 5, 2 blocks, dim 128 (2 heads)", {"depth": 2, "embed_dim": 128, "num_heads": 2}),
    ("stem to stage 4, 2 blocks, dim 128 (2 heads)", {"stem_blocks": 4, "depth": 2, "embed_dim": 128, "num_heads": 2}),
    ("stem to stage 4, 3 blocks, dim 160 (2 heads)", {"stem_blocks": 4, "depth": 3, "embed_dim": 160, "num_heads": 2}),
]


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ms_per_face(path: Path, face: np.ndarray, repeats: int) -> float:
    s = session(path)
    feed = {s.get_inputs()[0].name: face[None]}
    return 1000 * statistics.median(timed(lambda: s.run(None, feed), repeats))


def faces(data: Path, pattern: str, count: int, seed: int = 0) -> tuple[list[Path], list[str]]:
    """``count`` files of a FER2013 folder layout matching ``pattern`` (seeded), with their class folders."""
    files = sorted(data.glob(pattern))
    if not files:
        raise SystemExit(f"no faces match {pattern} under {data}")
    random.Random(seed).shuffle(files)
    files = files[:count]
    return files, [f.parent.name for f in files]


def decoded(preprocess: Preprocess, files: list[Path]) -> np.ndarray:
    return preprocess.decode([cv2.imread(str(f)) for f in files])


def static_int8(fp32: Path, out: Path, calibration: np.ndarray, ops: list[str]) -> Path:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(calibration)

        def get_next(self) -> dict | None:
            face = next(self.left, None)
            return None if face is None else {"input": face[None]}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    return out


def labels_of(path: Path, faces_: np.ndarray) -> np.ndarray:
    s = session(path)
    return in_batches(lambda batch: s.run(None, {s.get_inputs()[0].name: batch})[0].argmax(1), faces_)


def graph_rows(name: str, data: Path, work: Path, repeats: int, count: int) -> list[dict]:
    shipped = SHIPPED_ONNX[name]
    model_file = shipped.with_suffix(".pt")
    loaded = load_model(model_file)
    train_files, _ = faces(data, "train/*/*.jpg", 200)
    val_files, val_classes = faces(data, "test/*/PublicTest_*.jpg", count)
    calibration, val = decoded(loaded.preprocess, train_files), decoded(loaded.preprocess, val_files)
    truth = np.array([loaded.labels.index(c) for c in val_classes])
    fp32 = export_onnx(model_file, work / f"{name}.onnx")
    variants = {"fp32 (no quantisation)": fp32, "shipped: dynamic int8 matrix products": shipped,
                "static int8 convolutions": static_int8(fp32, work / f"{name}.conv.onnx", calibration, ["Conv"]),
                "static int8 convolutions + matrix products": static_int8(
                    fp32, work / f"{name}.all.onnx", calibration, ["Conv", "MatMul"])}
    reference = labels_of(shipped, val)
    face = val[0]
    rows = []
    for variant, path in variants.items():
        predicted = labels_of(path, val)
        rows.append({"model": name, "graph": variant, "ms / face (1 thread)": ms_per_face(path, face, repeats),
                     f"PublicTest accuracy ({len(val)} faces)": float((predicted == truth).mean()),
                     "same label as shipped": float((predicted == reference).mean())})
    base = rows[1]["ms / face (1 thread)"]
    for row in rows:
        row["time / shipped"] = row["ms / face (1 thread)"] / base
    return rows


def architecture_rows(work: Path, repeats: int) -> list[dict]:
    face = np.full((1, 48, 48), 128, dtype=np.uint8)
    shipped = load_model(SHIPPED_ONNX["fast"].with_suffix(".pt"))
    rows = []
    for label, settings in ARCHITECTURES:
        model = build_model("hybrid_vit_tiny", num_classes=7, img_size=48, aux_classes=8,
                            kwargs=settings).eval()
        path = save_model(work / f"arch{len(rows)}.pt", model, describe(model, shipped.preprocess, shipped.labels))
        onnx_file = export_onnx(path, work / f"arch{len(rows)}.onnx", quantize=True)
        rows.append({"architecture (48 px, untrained)": label,
                     "params (M)": count_parameters(model) / 1e6,
                     "ms / face (1 thread)": ms_per_face(onnx_file, face, repeats)})
    for row in rows:
        row["time / shipped fast"] = row["ms / face (1 thread)"] / rows[0]["ms / face (1 thread)"]
    return rows


def with_fer(rows: list[dict], fer_ms: float | None) -> list[dict]:
    if fer_ms is not None:
        for row in rows:
            row["time / fer's classifier call"] = row["ms / face (1 thread)"] / fer_ms
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="FER2013 folder layout (train/, test/)")
    parser.add_argument("--model", nargs="+", default=["fast", "default"], choices=sorted(SHIPPED_ONNX))
    parser.add_argument("--faces", type=int, default=1000, help="PublicTest faces for accuracy and agreement")
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--fer-python", help="a Python with the fer package: its classifier call is timed too")
    parser.add_argument("--out", type=Path, help="append the report to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fer_ms = None
        if args.fer_python:
            fer_ms = fer_figures(args.fer_python, make_video(work / "clip.mp4"), 1, work)["latency_ms"]
        graphs = [row for name in args.model for row in graph_rows(name, args.data, work, args.repeats, args.faces)]
        architectures = architecture_rows(work, args.repeats)
    command = "python benchmarks/cost_levers.py --data DATA" + (" --fer-python FER_PYTHON" if fer_ms else "")
    text = (f"`{command}`; fer's classifier call: {fer_ms:.3f} ms\n\n" if fer_ms else f"`{command}`\n\n")
    text += "### The graph of a shipped model\n\n" + table(with_fer(graphs, fer_ms)) + "\n"
    text += "\n### The architecture\n\n" + table(with_fer(architectures, fer_ms)) + "\n"
    publish(text, args.out)


if __name__ == "__main__":
    main()
