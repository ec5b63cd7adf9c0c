"""What ships inside the package (``vitfer/assets``) and the one place a model reference becomes a file.

Each shipped model comes twice: an ONNX file that the runtime runs (its input contract inside the graph, int8
where the accuracy check held) and the PyTorch model file it was exported from, for the research floor (fine
tuning, explanations, evaluation with PyTorch). Imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

from vitfer.errors import ModelError

ASSETS = Path(__file__).resolve().parent / "assets"
#: The shipped models by name: FER2013's 7 classes (``default``; ``fast``, cheaper per face for some accuracy)
#: and FER+'s 8 (contempt added).
SHIPPED_NAMES: tuple[str, ...] = ("default", "fast", "ferplus")
#: their PyTorch model files (research floor)
SHIPPED_MODELS: dict[str, Path] = {name: ASSETS / f"{name}.pt" for name in SHIPPED_NAMES}
#: their ONNX files (runtime), built from the model files by ``tools/ship_models.py``
SHIPPED_ONNX: dict[str, Path] = {name: ASSETS / f"{name}.onnx" for name in SHIPPED_NAMES}
DEFAULT_MODEL = SHIPPED_MODELS["default"]
#: A bundled photo with a face (scikit-image's astronaut, NASA, public domain): ``vitfer predict example``.
EXAMPLE_IMAGE = ASSETS / "example.jpg"
#: YuNet (MIT; source and licence in assets/THIRD_PARTY.md): face detection works offline.
BUNDLED_YUNET = ASSETS / "face_detection_yunet_2023mar.onnx"
#: the face detector used unless another is named
DEFAULT_DETECTOR = "yunet"

MODEL_SUFFIXES = (".onnx", ".pt", ".ckpt")


def resolve_model(model: str | Path | None, onnx: bool = False) -> Path:
    """A model reference as a file: None or 'default' and the other shipped names -> their file in the package
    (the ONNX file when ``onnx``, else the PyTorch one); a run folder -> its ``model.pt`` (else
    ``checkpoints/best.ckpt``); a ``.pt``/``.ckpt``/``.onnx`` file as it is."""
    name = "default" if model is None else str(model)
    if name in SHIPPED_NAMES:
        path = (SHIPPED_ONNX if onnx else SHIPPED_MODELS)[name]
        if not path.is_file():
            raise ModelError(f"the bundled {name!r} model is missing at {path}; pass --model PATH")
        return path
    path = Path(name).expanduser()
    if path.is_dir():
        for candidate in (path / "model.pt", path / "checkpoints" / "best.ckpt"):
            if candidate.is_file():
                return candidate
        raise ModelError(f"{path} is a folder without model.pt or checkpoints/best.ckpt")
    if not path.is_file():
        raise ModelError(f"model not found: {path} (give a shipped name: {', '.join(SHIPPED_NAMES)}, a run "
                         "folder, or a .pt/.ckpt/.onnx file)")
    return path
