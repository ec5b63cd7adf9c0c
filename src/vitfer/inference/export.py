"""Export a checkpoint to ONNX (dynamic batch, metadata inside) and optional dynamic int8 quantisation."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vitfer.models.checkpoint import load_model

EXPORT_REVISION = 2  # bump when exported graphs change (2: hybrid ViT batch axis stays dynamic)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17, quantize: bool = False) -> Path:
    """Write ``out`` (.onnx) for a vitfer checkpoint; labels and preprocessing go into its metadata."""
    import onnx

    loaded = load_model(checkpoint)
    size = loaded.preprocess.img_size
    example = torch.zeros(2, loaded.preprocess.in_channels, size, size)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(loaded.model, (example,), str(out), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                      dynamo=False)
    model = onnx.load(str(out))
    meta = {k: v for k, v in loaded.meta.items() if k in ("format", "model_config", "preprocess", "labels", "metrics")}
    entry = model.metadata_props.add()
    entry.key, entry.value = "vitfer", json.dumps(meta)
    onnx.save(model, str(out))
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = out.with_name(out.stem + ".int8.onnx")
        quantize_dynamic(str(out), str(quantized), weight_type=QuantType.QInt8)
        return quantized
    return out
