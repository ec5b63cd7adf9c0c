"""The input contract (``vitfer.preprocess``): its NumPy half (decode), its PyTorch half (``models.inputs``), and
the proof that the runtime's path (NumPy decode -> the contract inside the ONNX graph) equals training's."""

import cv2
import numpy as np
import pytest
import torch

from vitfer.models.inputs import model_input
from vitfer.preprocess import Preprocess


def test_preprocess_resizes_expands_and_normalises():
    pre = Preprocess(img_size=64, in_channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    images = torch.zeros(4, 1, 48, 48, dtype=torch.uint8)
    images[:, :, :24] = 255
    out = model_input(pre, images)
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.float32
    assert out.min() == -1 and out.max() == 1
    assert torch.equal(out[:, 0], out[:, 2])
    assert Preprocess.from_dict(pre.to_dict()) == pre


def test_preprocess_converts_colour_to_gray():
    pre = Preprocess(img_size=8, in_channels=3, grayscale=True)
    rgb = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    rgb[:, 1] = 255
    out = model_input(pre, rgb)
    assert torch.allclose(out[0, 0], out[0, 1]) and torch.allclose(out.mean(), torch.tensor(0.587 * 2 - 1), atol=1e-4)


def test_decode_face_takes_grey_bgr_and_bgra_alike():
    from vitfer.preprocess import decode_face

    grey = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    bgr = np.repeat(grey[:, :, None], 3, axis=2)
    bgra = np.concatenate([bgr, np.full((96, 96, 1), 255, np.uint8)], axis=2)
    faces = [decode_face(image, 48, grayscale=True) for image in (grey, bgr, bgra)]
    assert all(face.shape == (48, 48, 1) for face in faces)
    assert np.abs(faces[0].astype(int) - faces[2].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="shape"):
        decode_face(np.zeros((4, 4, 2), np.uint8), 48, grayscale=True)


def face_crops(photo: np.ndarray, box, count: int = 200, seed: int = 0) -> list[np.ndarray]:
    """``count`` crops of the face in ``photo``: jittered position and zoom, 24 to 400 px, colour and grey."""
    rng = np.random.default_rng(seed)
    x1, y1, x2, y2 = box
    crops = []
    for i in range(count):
        side = (x2 - x1) * rng.uniform(0.9, 1.4)
        cx, cy = (x1 + x2) / 2 + rng.uniform(-0.1, 0.1) * side, (y1 + y2) / 2 + rng.uniform(-0.1, 0.1) * side
        top, left = int(max(cy - side / 2, 0)), int(max(cx - side / 2, 0))
        crop = photo[top:top + int(side), left:left + int(side)]
        crop = cv2.resize(crop, (int(rng.integers(24, 400)),) * 2, interpolation=cv2.INTER_AREA)
        crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if i % 3 == 0 else crop)
    return crops


@pytest.fixture(scope="module")
def crops():
    from vitfer.runtime.predictor import Predictor
    from vitfer.shipped import EXAMPLE_IMAGE

    photo = cv2.imread(str(EXAMPLE_IMAGE))
    face = Predictor("fast").detect(photo)[0]
    return face_crops(photo, (face.x1, face.y1, face.x2, face.y2))


@pytest.mark.parametrize("name", ["default", "fast", "ferplus"])
def test_the_contract_in_the_onnx_graph_equals_trainings_on_200_faces(name, crops, tmp_path):
    """The runtime decodes with NumPy/OpenCV and runs the rest of the contract inside the ONNX graph; training
    runs ``model_input`` in PyTorch. Same decoded faces in, the same model input out (<= 1e-5)."""
    import onnxruntime as ort

    from vitfer.models.checkpoint import read_checkpoint
    from vitfer.models.export import _write_graph
    from vitfer.models.inputs import InputContract
    from vitfer.shipped import SHIPPED_MODELS

    pre = read_checkpoint(SHIPPED_MODELS[name])["vitfer"].preprocess
    faces = pre.decode(crops)
    assert faces.shape == (200, 1, pre.decode_size, pre.decode_size) and faces.dtype == np.uint8
    _write_graph(InputContract(pre).eval(), torch.from_numpy(faces[:2]), tmp_path / "contract.onnx", 18)
    session = ort.InferenceSession(str(tmp_path / "contract.onnx"), providers=["CPUExecutionProvider"])
    in_graph = session.run(None, {session.get_inputs()[0].name: faces})[0]
    in_torch = model_input(pre, torch.from_numpy(faces)).numpy()
    assert in_graph.shape == in_torch.shape == (200, pre.in_channels, pre.img_size, pre.img_size)
    assert np.abs(in_graph - in_torch).max() <= 1e-5


@pytest.mark.slow
def test_the_runtime_labels_200_faces_as_pytorch_does(crops, tmp_path):
    """The default model end to end: NumPy decode + its fp32 ONNX export against PyTorch on the same crops."""
    from vitfer.models.backend import TorchBackend
    from vitfer.models.checkpoint import load_model
    from vitfer.models.export import export_onnx
    from vitfer.runtime.backends import OnnxBackend
    from vitfer.shipped import SHIPPED_MODELS

    onnx = OnnxBackend(export_onnx(SHIPPED_MODELS["default"], tmp_path / "default.onnx"))
    pytorch = TorchBackend(load_model(SHIPPED_MODELS["default"]))
    faces = onnx.preprocess.decode(crops)
    runtime, reference = onnx.probabilities(faces), pytorch.probabilities(faces)
    assert np.array_equal(runtime.argmax(1), reference.argmax(1))
    assert np.abs(runtime - reference).max() < 1e-4


@pytest.mark.parametrize("name", ["default", "fast", "ferplus"])
def test_each_shipped_onnx_file_answers_as_its_pytorch_file(name, crops):
    """What the runtime runs (the shipped ONNX file, int8 where it held) against the .pt it was built from."""
    from vitfer.models.backend import TorchBackend
    from vitfer.models.checkpoint import load_model
    from vitfer.runtime.backends import OnnxBackend
    from vitfer.shipped import SHIPPED_MODELS, SHIPPED_ONNX

    onnx, pytorch = OnnxBackend(SHIPPED_ONNX[name]), TorchBackend(load_model(SHIPPED_MODELS[name]))
    assert onnx.labels == pytorch.labels and onnx.preprocess == pytorch.preprocess
    assert onnx.meta.calibration == pytorch.meta.calibration and onnx.meta.card == pytorch.meta.card
    faces = onnx.preprocess.decode(crops)
    runtime, reference = onnx.probabilities(faces), pytorch.probabilities(faces)
    assert (runtime.argmax(1) == reference.argmax(1)).mean() >= 0.98
    assert np.abs(runtime - reference).max() < 0.05
