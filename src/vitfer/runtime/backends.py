"""Classification backends: ONNX Runtime here (no torch), PyTorch from the research floor when it is installed.

Every backend takes uint8 faces as ``Preprocess.decode`` gives them (N x C x d x d) and returns probabilities.
A vitfer ONNX file carries the rest of the input contract (to float, resize, normalise) inside its graph and its
description (``ModelMeta``) in its metadata, so nothing here needs PyTorch.

A PyTorch model file (``.pt``, ``.ckpt``, a run folder) or ``backend="torch"`` is served by a backend loader of
the research floor, found through the ``vitfer.backends`` entry point that ``pyproject.toml`` declares (a plugin,
as pytest finds its plugins): the runtime never imports the research floor's modules itself.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import numpy as np

from vitfer.errors import ArgumentError, DeviceError, ExtraMissing, ModelError
from vitfer.meta import ModelMeta
from vitfer.preprocess import Preprocess
from vitfer.shipped import SHIPPED_NAMES, SHIPPED_ONNX, resolve_model

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "onnx-int8", "torch")
RESEARCH_EXTRA = "pip install 'vitfer[train]'"


class Backend(Protocol):
    """What every backend offers: the labels, the input contract, the model file's description, and
    probabilities for a batch of uint8 faces. ``predict``, ``serve``, ``evaluate`` and ``export`` use it."""

    name: str
    labels: tuple[str, ...]
    preprocess: Preprocess
    meta: ModelMeta

    def probabilities(self, faces: np.ndarray) -> np.ndarray: ...


def parse_device(device: str | None) -> tuple[str, int]:
    """'cpu', 'cuda' or 'cuda:N' -> (kind, index); anything else is an error naming the value."""
    text = (device or "cpu").strip().lower()
    if text == "cpu":
        return "cpu", 0
    kind, _, index = text.partition(":")
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    raise DeviceError(f"unknown device {device!r}: use cpu, cuda or cuda:N")


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


class OnnxBackend:
    """Runs an ONNX file written by vitfer with ONNX Runtime; labels and the input contract come from its metadata.

    Threads: ``threads`` for every call when given. Otherwise a few faces (the webcam case) run on one thread,
    where a second costs more in hand-overs than it brings, and larger batches on all cores (ONNX Runtime's
    default); ``benchmarks/inference.py`` times both. ``device``: cpu, cuda or cuda:N (ONNX Runtime's CUDA
    provider, from ``onnxruntime-gpu``).
    """

    name = "onnx"
    FEW_FACES = 4  # batches up to this size run on one thread when the thread count is not set

    def __init__(self, path: str | Path, threads: int | None = None, device: str | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401 - installed or not, said here in one line
        except ImportError as err:
            raise ExtraMissing("the ONNX backend needs onnxruntime: pip install onnxruntime") from err
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"ONNX model not found: {self.path}")
        self.threads = threads
        self.providers = onnx_providers(device)
        try:
            self.session = self._session(threads)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises several types
            raise ModelError(f"cannot load ONNX model {self.path}: {str(err).splitlines()[0]}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "vitfer" not in props:
            raise ModelError(f"{self.path} was not exported by vitfer (no 'vitfer' metadata)")
        try:
            self.meta = ModelMeta.from_dict(json.loads(props["vitfer"]))
        except (ModelError, ValueError) as err:
            raise ModelError(f"{self.path}: unreadable 'vitfer' metadata: {err}") from None
        self.preprocess = self.meta.preprocess
        self.labels = self.meta.labels
        self.input_name = self.session.get_inputs()[0].name
        self._check_graph()

    def _check_graph(self) -> None:
        """The graph's input and output must be what its description says (uint8 faces in, one score per label
        out): a file whose graph and metadata disagree is refused here, not answered wrongly later."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        p = self.preprocess
        channels = 1 if p.grayscale else 3
        want = [channels, p.decode_size, p.decode_size]
        shape = list(inputs[0].shape)
        if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or shape[1:] != want:
            raise ModelError(f"{self.path}: its graph takes {inputs[0].type} {shape}, its description says uint8 "
                             f"faces of [N, {', '.join(map(str, want))}]; re-export it with this vitfer "
                             "(vitfer export MODEL)")
        out_shape = list(outputs[0].shape)
        if len(outputs) != 1 or len(out_shape) != 2 or out_shape[1] != len(self.labels):
            raise ModelError(f"{self.path}: its graph gives {out_shape} scores per face for {len(self.labels)} "
                             f"labels ({', '.join(self.labels)})")

    def _session(self, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are for the exporter, not the user
        if threads:
            options.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.path), options, providers=self.providers)

    @cached_property
    def few_faces_session(self):
        """The session for a few faces: one thread unless ``threads`` was given (made when first needed)."""
        return self.session if self.threads or self.providers[0] != "CPUExecutionProvider" else self._session(1)

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """uint8 faces (N x C x d x d) -> class probabilities (N x classes)."""
        faces = np.ascontiguousarray(faces, dtype=np.uint8)
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        session = self.few_faces_session if len(faces) <= self.FEW_FACES else self.session
        return softmax(session.run(None, {self.input_name: faces})[0])


def onnx_providers(device: str | None) -> list:
    """ONNX Runtime's execution providers for a device; a CUDA device that is not there is an error."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceError(f"--device {device}: this ONNX Runtime has no CUDA provider; pip install onnxruntime-gpu "
                          "(with an NVIDIA driver and CUDA 12)")
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def research_loader():
    """The research floor's backend loader (entry point ``vitfer.backends: torch``), or ExtraMissing."""
    found = [ep for ep in entry_points(group="vitfer.backends") if ep.name == "torch"]
    if not found:
        raise ExtraMissing(f"PyTorch model files need vitfer's research floor: {RESEARCH_EXTRA}")
    try:
        return found[0].load()
    except ImportError as err:
        raise ExtraMissing(f"PyTorch model files need vitfer's research floor ({err.name} is missing): "
                           f"{RESEARCH_EXTRA}") from None


def create_backend(model: str | Path | None = None, backend: str = "auto", threads: int | None = None,
                   device: str | None = None) -> Backend:
    """A backend for a shipped model's name, an .onnx file, or (research floor) a .pt/.ckpt file or run folder.

    ``backend``: auto (ONNX Runtime: a shipped model's ONNX file, or a model file exported once into the cache),
    onnx / onnx-int8 (the same, fp32 or int8 matrix products for exports), torch (PyTorch). ``threads``: CPU
    threads of inference (None: see ``OnnxBackend``). ``device``: cpu, cuda, cuda:N.
    """
    if backend not in BACKENDS:
        raise ArgumentError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise ArgumentError(f"--threads must be 1 or more, got {threads}")
    parse_device(device)
    name = "default" if model is None else str(model)
    if backend != "torch" and name in SHIPPED_NAMES and SHIPPED_ONNX[name].is_file():
        return OnnxBackend(SHIPPED_ONNX[name], threads, device)
    path = resolve_model(model)
    if path.suffix == ".onnx":
        if backend == "torch":
            raise ModelError(f"{path} is an ONNX file: PyTorch cannot run it; use --backend onnx")
        return OnnxBackend(path, threads, device)
    return research_loader()(path, backend, threads, device)


def shipped_models() -> dict[str, str]:
    """Each shipped model's name -> a one-line summary from its card (classes, held-out test accuracy)."""
    summaries = {}
    for name, path in SHIPPED_ONNX.items():
        if not path.is_file():
            summaries[name] = f"missing ({path})"
            continue
        meta = OnnxBackend(path, threads=1).meta
        figures = ", ".join(f"{k} {v:.2%}" for k, v in meta.card.items() if k.endswith("accuracy") and "Test" in k)
        summaries[name] = f"{len(meta.labels)} classes, {meta.name}; {figures}"
    return summaries
