"""Classification backends: PyTorch, or ONNX Runtime on an exported model (with dynamic batch)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from vitfer.models.checkpoint import CheckpointError, LoadedModel, ModelMeta, load_model, resolve_model

from vitfer.preprocess import Preprocess
from vitfer.shipped import ASSETS, DEFAULT_MODEL, EXAMPLE_IMAGE, SHIPPED_MODELS  # noqa: F401 - re-exported


def shipped_models() -> dict[str, str]:
    """Each shipped model's name -> a one-line summary from its card (classes, test accuracy)."""
    from vitfer.models.checkpoint import read_checkpoint

    summaries = {}
    for name, path in SHIPPED_MODELS.items():
        if not path.is_file():
            summaries[name] = f"missing ({path})"
            continue
        meta = read_checkpoint(path)["vitfer"]
        figures = ", ".join(f"{k} {v:.2%}" for k, v in meta.card.items() if k.endswith("accuracy") and "Test" in k)
        summaries[name] = f"{len(meta.labels)} classes, {meta.name}; {figures}"
    return summaries


class Backend(Protocol):
    """What every backend offers: the labels, the input contract, the model file's description, and
    probabilities for a batch of uint8 faces. ``predict``, ``serve``, ``evaluate`` and ``export`` use it."""

    name: str
    labels: tuple[str, ...]
    preprocess: Preprocess
    meta: ModelMeta

    def probabilities(self, faces: torch.Tensor) -> np.ndarray: ...


class TorchBackend:
    """Runs a vitfer checkpoint with PyTorch."""

    name = "torch"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.preprocess = loaded.preprocess
        self.labels = loaded.labels
        self.meta = loaded.meta

    @torch.no_grad()
    def probabilities(self, faces: torch.Tensor) -> np.ndarray:
        """uint8 faces (N x C x H x W) -> class probabilities (N x classes)."""
        return self.loaded.model(self.preprocess(faces)).softmax(dim=-1).numpy()


class OnnxBackend:
    """Runs an ONNX file written by ``export_onnx`` with onnxruntime; labels and preprocessing come from its metadata.

    Threads: ``threads`` for every call when given. Otherwise a few faces (the webcam case) run on one thread,
    where a second costs more in hand-overs than it brings, and larger batches on all cores (ONNX Runtime's
    default). On this 2-core machine one face of ``fast`` took 0.90-0.92 ms on one thread against 1.09-1.13 ms on
    two; ``default`` (two views per face) 2.07 ms either way (benchmarks/results/inference.md, runs 3-4).
    """

    name = "onnx"
    FEW_FACES = 4  # batches up to this size run on one thread when the thread count is not set

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401 - installed or not, said here in one line
        except ImportError as err:
            raise CheckpointError("the ONNX backend needs onnxruntime: pip install 'vitfer[onnx]'") from err
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX model not found: {self.path}")
        self.threads = threads
        try:
            self.session = self._session(threads)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises several types
            raise CheckpointError(f"cannot load ONNX model {self.path}: {err}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "vitfer" not in props:
            raise CheckpointError(f"{self.path} was not exported by vitfer (no 'vitfer' metadata)")
        try:
            self.meta = ModelMeta.from_dict(json.loads(props["vitfer"]))
        except (CheckpointError, ValueError) as err:
            raise CheckpointError(f"{self.path}: unreadable 'vitfer' metadata: {err}") from None
        self.preprocess = self.meta.preprocess
        self.labels = self.meta.labels
        self.input_name = self.session.get_inputs()[0].name

    def _session(self, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    @cached_property
    def few_faces_session(self):
        """The session for a few faces: one thread unless ``threads`` was given (made when first needed)."""
        return self.session if self.threads else self._session(1)

    def probabilities(self, faces: torch.Tensor) -> np.ndarray:
        x = self.preprocess(faces).numpy()
        session = self.few_faces_session if len(x) <= self.FEW_FACES else self.session
        logits = session.run(None, {self.input_name: x})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def onnx_cache_path(checkpoint: Path) -> Path:
    """Where the ONNX export of a checkpoint is kept: named by the checkpoint's content and by the exporting code
    (vitfer's version and EXPORT_REVISION, torch's version), so it is never stale."""
    import torch

    from vitfer import __version__
    from vitfer.inference.export import EXPORT_REVISION

    digest = hashlib.sha256(checkpoint.read_bytes())
    digest.update(f"{__version__}|{EXPORT_REVISION}|{torch.__version__}".encode())
    digest = digest.hexdigest()[:16]
    from vitfer.hub import cache_root

    return cache_root() / "onnx" / f"{checkpoint.stem}-{digest}.onnx"


BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def onnx_available() -> bool:
    """Whether ONNX Runtime and the exporter's packages are installed (``pip install 'vitfer[onnx]'``)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


def onnx_file_for(path: Path, quantized: bool) -> Path:
    """The cached ONNX export of a checkpoint (int8 matrix products when ``quantized``), exported on first use."""
    fp32 = onnx_cache_path(path)
    target = fp32.with_name(fp32.stem + ".int8.onnx") if quantized else fp32
    if not target.is_file():
        import tempfile

        from vitfer.inference.export import export_onnx

        fp32.parent.mkdir(parents=True, exist_ok=True)
        # exported in a folder of its own, then moved in one step: processes that start together (server or
        # batch workers) never see, or clash over, each other's half-written files
        with tempfile.TemporaryDirectory(dir=fp32.parent) as folder:
            written = export_onnx(path, Path(folder) / fp32.name, quantize=quantized, announce=True)
            os.replace(written, target)
            if quantized and not fp32.is_file():
                os.replace(Path(folder) / fp32.name, fp32)
    return target


def create_backend(model: str | Path | None = None, backend: str = "torch",
                   threads: int | None = None) -> TorchBackend | OnnxBackend:
    """A backend for a checkpoint (.pt/.ckpt) or an exported .onnx file.

    ``backend``: torch; onnx (fp32) or onnx-int8 (int8 matrix products: the shipped model loses 0.06 points of
    PublicTest accuracy to it, see benchmarks/results/inference.md), exported once into the cache; auto =
    onnx-int8 when ONNX Runtime is installed, else torch. ``threads`` sets the CPU threads of inference
    (PyTorch's for the process, or the ONNX Runtime session's); None keeps the library's default.
    """
    if backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise CheckpointError(f"--threads must be 1 or more, got {threads}")
    path = resolve_model(model)
    if backend == "auto":
        backend = "onnx-int8" if path.suffix == ".onnx" or onnx_available() else "torch"
    if path.suffix == ".onnx":
        return OnnxBackend(path, threads)
    if backend in ("onnx", "onnx-int8"):
        return OnnxBackend(onnx_file_for(path, quantized=backend == "onnx-int8"), threads)
    if threads is not None:
        torch.set_num_threads(threads)
    return TorchBackend(load_model(path))
