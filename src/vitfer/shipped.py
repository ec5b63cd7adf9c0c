"""What ships inside the package (``vitfer/assets``): the models by name, the example photo, the face detector.

Imports nothing heavy, so the command line can check names and paths before loading torch.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
#: The models shipped inside the package, by name: FER2013's 7 classes (``default``; ``fast``, a third of the
#: cost per face for some accuracy), and FER+'s 8 (contempt added).
SHIPPED_MODELS: dict[str, Path] = {"default": ASSETS / "default.pt", "fast": ASSETS / "fast.pt",
                                   "ferplus": ASSETS / "ferplus.pt"}
DEFAULT_MODEL = SHIPPED_MODELS["default"]
#: A bundled photo with a face (scikit-image's astronaut, NASA, public domain): ``vitfer predict example``.
EXAMPLE_IMAGE = ASSETS / "example.jpg"
#: YuNet (MIT; source and licence in assets/THIRD_PARTY.md): face detection works offline.
BUNDLED_YUNET = ASSETS / "face_detection_yunet_2023mar.onnx"
