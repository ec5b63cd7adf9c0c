"""Export a checkpoint to ONNX (dynamic batch, metadata inside) and optional dynamic int8 quantisation.

The graph starts with the input contract (``models.inputs.InputContract``): it takes uint8 faces as
``Preprocess.decode`` gives them, so the runtime feeds it with NumPy and OpenCV alone, and so does a browser.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vitfer.models.checkpoint import load_model
from vitfer.models.inputs import InputContract
from vitfer.files import atomic_write

# bump when exported graphs change (2: hybrid ViT batch axis stays dynamic; 3: dynamo export; 4: uint8 faces in,
# the input contract inside the graph)
EXPORT_REVISION = 4

log = logging.getLogger(__name__)


def _write_graph(model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    """The model as an ONNX graph with a dynamic batch axis.

    torch.export first: it traces with the face size fixed, so padding, attention scales and shapes become
    constants and the graph keeps its compute nodes only (the default model on one view: 232 nodes instead of 800;
    its timings in benchmarks/results/inference.md). The TorchScript exporter is the fallback for a model
    torch.export cannot trace.
    """
    try:
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                          opset_version=max(opset, 18), dynamo=True, optimize=True, verbose=False,
                          external_data=False)  # one file: no weights left beside it in a .data file
        return
    except Exception as err:  # noqa: BLE001 - torch.export fails in many ways; the older exporter may not
        log.info("torch.export could not trace the model (%s); using the TorchScript exporter",
                 str(err).splitlines()[0] if str(err) else type(err).__name__)
    torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                      dynamo=False)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17, quantize: bool = False,
                announce: bool = False) -> Path:
    """Write ``out`` (.onnx) for a vitfer checkpoint; labels and preprocessing go into its metadata. With
    ``quantize``, also ``<out>.int8.onnx`` (int8 matrix products), whose path is returned. ``announce`` says
    so on stderr once the checkpoint has loaded (the first prediction of a model waits for it).

    >>> export_onnx("runs/r18/model.pt", "r18.onnx", quantize=True)  # doctest: +SKIP
    PosixPath('r18.int8.onnx')
    """
    import onnx

    loaded = load_model(checkpoint)
    if announce:
        log.warning("preparing %s for ONNX Runtime, once (about 15 s on 2 cores)", Path(checkpoint).name)
    p = loaded.preprocess
    example = torch.zeros(2, 1 if p.grayscale else 3, p.decode_size, p.decode_size, dtype=torch.uint8)
    graph = torch.nn.Sequential(InputContract(p), loaded.model).eval()
    out = Path(out)
    with atomic_write(out) as partial:
        _write_graph(graph, example, partial, opset)
        model = onnx.load(str(partial))
        entry = model.metadata_props.add()
        entry.key, entry.value = "vitfer", json.dumps(loaded.meta.to_dict())  # the checkpoint's whole description
        onnx.save(model, str(partial))
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = out.with_name(out.stem + ".int8.onnx")
        # Only the matrix products (transformer blocks, heads): dynamic int8 on convolutions cost the default
        # model 14 points of PublicTest accuracy (54.05 % -> 40.15 %), on MatMul/Gemm per channel nothing.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime warns per tensor it leaves alone
        try:
            with atomic_write(quantized) as partial:
                quantize_dynamic(str(out), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                                 op_types_to_quantize=["MatMul", "Gemm"])
        finally:
            root.setLevel(level)
        return quantized
    return out
