"""Import the ImageNet MobileNetV2 TFLite flatbuffer into timm's ``mobilenetv2_100`` (float).

TFLite folds batch-norm into each convolution, so each BN after a conv is set to add the
folded bias only; training then re-derives BN statistics as usual.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn
from vitfer.errors import WeightImportError


def _dequantise(model, subgraph, tensor_index: int) -> np.ndarray:
    import tflite

    tensor = subgraph.Tensors(tensor_index)
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8,
             tflite.TensorType.INT32: np.int32, tflite.TensorType.FLOAT32: np.float32}[tensor.Type()]
    values = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy()).astype(np.float32)
    if dtype == np.float32:
        return values
    quant = tensor.Quantization()
    scale, zero = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
    axis = quant.QuantizedDimension()
    shape = [1] * values.ndim
    if np.size(scale) > 1:
        shape[axis] = -1
    return (values - np.reshape(zero, shape)) * np.reshape(scale, shape)


def read_tflite_convs(path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Every convolution of a TFLite graph in order: (kind, float weight OIHW, float bias)."""
    try:
        import tflite
    except ImportError as err:
        raise WeightImportError("reading .tflite weights needs the 'tflite' package: pip install tflite") from err
    path = Path(path)
    if not path.is_file():
        raise WeightImportError(f"weights file not found: {path}")
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    convs = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
            continue
        weight = _dequantise(model, graph, op.Inputs(1))
        bias = _dequantise(model, graph, op.Inputs(2)) if op.InputsLength() > 2 else np.zeros(weight.shape[0])
        if builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
            convs.append(("depthwise", weight.transpose(3, 0, 1, 2), bias))  # 1,H,W,C -> C,1,H,W
        else:
            convs.append(("conv", weight.transpose(0, 3, 1, 2), bias))  # O,H,W,I -> O,I,H,W
    return convs


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    pairs, pending = [], None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            pending = module
        elif isinstance(module, nn.BatchNorm2d) and pending is not None:
            pairs.append((pending, module))
            pending = None
    return pairs


def mobilenetv2_from_tflite(path: str | Path, num_classes: int = 1000) -> nn.Module:
    """A float timm ``mobilenetv2_100`` (TF 'same' padding) carrying the TFLite file's ImageNet weights."""
    convs = read_tflite_convs(path)
    model = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=1000, pad_type="same")
    pairs = _conv_bn_pairs(model)
    body, logits = convs[:-1], convs[-1]
    if len(body) != len(pairs):
        raise WeightImportError(f"{path}: {len(body)} convolutions do not fit mobilenetv2_100's {len(pairs)}")
    with torch.no_grad():
        for (kind, weight, bias), (conv, bn) in zip(body, pairs):
            if tuple(conv.weight.shape) != weight.shape:
                raise WeightImportError(f"{path}: {kind} weight {weight.shape} does not fit {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.copy_(torch.from_numpy(bias))
        weight, bias = logits[1][:, :, 0, 0], logits[2]
        if weight.shape[0] == 1001:  # class 0 is 'background' in the TF release
            weight, bias = weight[1:], bias[1:]
        model.classifier.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        model.classifier.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model
