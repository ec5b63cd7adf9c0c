"""The research floor's backends for PyTorch model files: PyTorch itself, or the file exported once to ONNX.

``load_backend`` is what the runtime's ``create_backend`` reaches through the ``vitfer.backends`` entry point
for a ``.pt``/``.ckpt`` file or a run folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from vitfer.errors import DeviceError
from vitfer.models.checkpoint import LoadedModel, load_model
from vitfer.models.inputs import model_input
from vitfer.runtime.backends import OnnxBackend, parse_device


def torch_device(device: str | None) -> torch.device:
    """cpu, cuda or cuda:N as a torch device; a CUDA device that is not there is an error naming it."""
    kind, index = parse_device(device)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: PyTorch sees no CUDA GPU here (torch {torch.__version__})")
        if index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: PyTorch sees {torch.cuda.device_count()} GPU(s)")
        return torch.device("cuda", index)
    return torch.device("cpu")


class TorchBackend:
    """Runs a vitfer model file with PyTorch (on the CPU or a CUDA device)."""

    name = "torch"

    def __init__(self, loaded: LoadedModel, device: str | None = None) -> None:
        self.device = torch_device(device)
        self.loaded = loaded
        self.loaded.model.to(self.device)
        self.preprocess = loaded.preprocess
        self.labels = loaded.labels
        self.meta = loaded.meta

    @torch.no_grad()
    def probabilities(self, faces: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 faces (N x C x H x W) -> class probabilities (N x classes)."""
        x = torch.as_tensor(faces).to(self.device)
        return self.loaded.model(model_input(self.preprocess, x)).softmax(dim=-1).cpu().numpy()


def onnx_cache_path(checkpoint: Path) -> Path:
    """Where the ONNX export of a checkpoint is kept: named by the checkpoint's content and by the exporting code
    (vitfer's version and EXPORT_REVISION, torch's version), so it is never stale."""
    from vitfer.version import __version__
    from vitfer.hub import cache_root
    from vitfer.models.export import EXPORT_REVISION

    digest = hashlib.sha256(checkpoint.read_bytes())
    digest.update(f"{__version__}|{EXPORT_REVISION}|{torch.__version__}".encode())
    return cache_root() / "onnx" / f"{checkpoint.stem}-{digest.hexdigest()[:16]}.onnx"


def onnx_available() -> bool:
    """Whether ONNX Runtime and the exporter's packages are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


def onnx_file_for(path: Path, quantized: bool) -> Path:
    """The cached ONNX export of a checkpoint (int8 matrix products when ``quantized``), exported on first use."""
    from vitfer.models.export import export_onnx

    fp32 = onnx_cache_path(path)
    target = fp32.with_name(fp32.stem + ".int8.onnx") if quantized else fp32
    if not target.is_file():
        fp32.parent.mkdir(parents=True, exist_ok=True)
        # exported in a folder of its own, then moved in one step: processes that start together (server or
        # batch workers) never see, or clash over, each other's half-written files
        with tempfile.TemporaryDirectory(dir=fp32.parent) as folder:
            written = export_onnx(path, Path(folder) / fp32.name, quantize=quantized, announce=True)
            os.replace(written, target)
            if quantized and not fp32.is_file():
                os.replace(Path(folder) / fp32.name, fp32)
    return target


def load_backend(path: Path, backend: str = "auto", threads: int | None = None,
                 device: str | None = None) -> TorchBackend | OnnxBackend:
    """A backend for a PyTorch model file: ``torch``; ``onnx``/``onnx-int8`` (exported once into the cache);
    ``auto`` = onnx-int8 when the exporter is installed, else torch."""
    if backend == "auto":
        backend = "onnx-int8" if onnx_available() else "torch"
    if backend in ("onnx", "onnx-int8"):
        return OnnxBackend(onnx_file_for(path, quantized=backend == "onnx-int8"), threads, device)
    if threads is not None:
        torch.set_num_threads(threads)
    return TorchBackend(load_model(path), device)
