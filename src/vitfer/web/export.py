"""``vitfer export --web DIR``: a static folder that runs the whole pipeline in the visitor's browser.

The folder holds the page (``index.html``, ``page.js``, ``vitfer.js``, ``style.css``), the YuNet detector and
the classifier as ONNX files, ``model.json`` (labels, input contract, detector settings, the model's card) and
ONNX Runtime Web (``ort/``, from its npm package at a pinned version, fetched by name with checksums and cached,
or copied from ``ort_web``). Any static file server serves it (``python -m http.server``); it fetches nothing
from anywhere but its own folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vitfer.errors import ArgumentError, ModelError, OutputError
from vitfer.hub import ORT_WEB_VERSION, fetch
from vitfer.runtime.backends import OnnxBackend
from vitfer.shipped import BUNDLED_YUNET, SHIPPED_NAMES, SHIPPED_ONNX

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("index.html", "page.js", "vitfer.js", "style.css")
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: the detector as the page runs it: the whole frame at 640 px (vitfer.runtime.FrameSearch's whole-frame pass)
DETECTOR = {"whole_side": 640, "threshold": 0.5, "min_face": 24, "nms": 0.3}
SIZE_BUDGET_MB = 25  # the folder: ONNX Runtime Web's WASM (14 MB), the models (5 MB), the page

NOTICE = f"""Third-party files in this folder

yunet.onnx: YuNet face detector, OpenCV Zoo (face_detection_yunet_2023mar.onnx), MIT licence,
  Copyright (c) 2020 Shiqi Yu.
ort/: ONNX Runtime Web {ORT_WEB_VERSION} (the npm package onnxruntime-web), MIT licence,
  Copyright (c) Microsoft Corporation.
model.onnx: a vitfer model (MIT); trained on FER2013 / FER+, data for research and non-commercial use.
"""


def model_file(model: str | Path) -> Path:
    """The ONNX file of a shipped model's name or an ``.onnx`` path (PyTorch files: export them first)."""
    if str(model) in SHIPPED_NAMES:
        return SHIPPED_ONNX[str(model)]
    path = Path(model).expanduser()
    if path.suffix != ".onnx":
        raise ArgumentError(f"--model {model}: the web page runs ONNX files; give a shipped name "
                            f"({', '.join(SHIPPED_NAMES)}) or an .onnx file (vitfer export {model})")
    if not path.is_file():
        raise ModelError(f"model not found: {path}")
    return path


def export_web(out: str | Path, model: str | Path = "default", exist_ok: bool = False,
               ort_web: str | Path | None = None) -> Path:
    """Write the in-browser folder to ``out`` (refused when it holds files, unless ``exist_ok``); returns it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write the web folder {out}: it is a file")
    if out.is_dir() and any(out.iterdir()) and not exist_ok:
        raise OutputError(f"{out} holds files; choose an empty folder or pass --exist-ok to replace them")
    source = model_file(model)
    backend = OnnxBackend(source, threads=1)  # checks the file: graph and description agree
    ort_files = [_ort_file(name, ort_web) for name in ORT_FILES]
    (out / "ort").mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(STATIC / name, out / name)
    shutil.copyfile(source, out / "model.onnx")
    shutil.copyfile(BUNDLED_YUNET, out / "yunet.onnx")
    for path in ort_files:
        shutil.copyfile(path, out / "ort" / path.name)
    meta = backend.meta
    description = {"name": str(model) if str(model) in SHIPPED_NAMES else source.stem, "architecture": meta.name,
                   "labels": list(meta.labels), "preprocess": meta.preprocess.to_dict(), "detector": DETECTOR,
                   "card": meta.card, "ort_web": ORT_WEB_VERSION}
    (out / "model.json").write_text(json.dumps(description, indent=2))
    (out / "THIRD_PARTY.txt").write_text(NOTICE)
    return out


def _ort_file(name: str, ort_web: str | Path | None) -> Path:
    """One file of ONNX Runtime Web: from a local folder (or its npm package's ``dist``), else fetched by name."""
    if ort_web is None:
        return fetch(name)
    folder = Path(ort_web).expanduser()
    for candidate in (folder / name, folder / "dist" / name, folder / "package" / "dist" / name):
        if candidate.is_file():
            return candidate
    raise ArgumentError(f"--ort-web {ort_web}: no {name} there (give the folder of onnxruntime-web "
                        f"{ORT_WEB_VERSION}'s npm package, or its dist/ folder)")


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
