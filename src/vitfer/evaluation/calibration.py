"""Temperature scaling (Guo et al., 2017): one scalar fitted on a validation split makes confidences probabilities.

The temperature is folded into the classifier's last linear layer (weights and bias divided by it), so every
backend (PyTorch, ONNX, the server) gives calibrated probabilities with no extra step; the checkpoint records
it under ``calibration`` with the ECE before and after.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vitfer.evaluation.metrics import calibration_bins
from vitfer.models.checkpoint import LoadedModel, load_model, save_model
from vitfer.errors import ModelError
from vitfer.models.factory import FERNet
from vitfer.models.inputs import in_batches, model_input


def scaled_log_probabilities(view_logits: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Log of the probabilities averaged over test-time views (V x B x C logits) at a temperature."""
    return (view_logits / temperature).softmax(dim=-1).mean(dim=0).clamp(min=1e-12).log()


def fit_temperature(view_logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of the view-averaged ``softmax(logits / T)``.

    ``view_logits``: V x B x C (V test-time views; V = 1 without test-time augmentation), or B x C.
    """
    if view_logits.ndim == 2:
        view_logits = view_logits[None]
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.nll_loss(scaled_log_probabilities(view_logits, log_t.exp()), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp())


def last_linear(model: FERNet) -> nn.Linear:
    """The layer that writes the logits."""
    layers = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ModelError(f"{model.config.name}: no linear classifier layer to calibrate")
    return layers[-1]


@torch.no_grad()
def fold_temperature(model: FERNet, temperature: float) -> None:
    """Divide the logits by ``temperature`` for good, inside the classifier."""
    layer = last_linear(model)
    layer.weight.div_(temperature)
    if layer.bias is not None:
        layer.bias.div_(temperature)


@torch.no_grad()
def view_logits_of(loaded: LoadedModel, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's logits per test-time view: V x N x classes."""
    loaded.model.eval()
    return in_batches(lambda faces: loaded.model.view_logits(model_input(loaded.preprocess, faces)), images,
                      batch_size, dim=1)


def calibrate(checkpoint: str | Path, data: str | Path, out: str | Path, split: str = "val",
              detector: str | None = None) -> dict:
    """Fit a temperature on ``split`` of ``data``, fold it into the model and write it to ``out``.

    A model calibrated before keeps one overall temperature (the product). Returns the calibration record.
    """
    from vitfer.evaluation.evaluate import split_for
    from vitfer.shipped import resolve_model

    path = resolve_model(checkpoint)
    loaded = load_model(path)
    eval_data = split_for(loaded, data, split, detector=detector)
    logits = view_logits_of(loaded, eval_data.images)[..., eval_data.model_columns]
    targets = torch.as_tensor(eval_data.targets)
    temperature = fit_temperature(logits, targets)
    before, after = (scaled_log_probabilities(logits, t) for t in (1.0, temperature))
    earlier = float(loaded.meta.calibration.get("temperature", 1.0))
    record = {"temperature": round(earlier * temperature, 4), "fitted_on": f"{Path(data).name} {split}",
              "faces": int(len(targets)),
              "ece_before": round(calibration_bins(before.exp().numpy(), eval_data.targets)["ece"], 4),
              "ece_after": round(calibration_bins(after.exp().numpy(), eval_data.targets)["ece"], 4),
              "nll_before": round(float(F.nll_loss(before, targets)), 4),
              "nll_after": round(float(F.nll_loss(after, targets)), 4)}
    fold_temperature(loaded.model, temperature)
    save_model(out, loaded.model, replace(loaded.meta, calibration=record))
    return record

