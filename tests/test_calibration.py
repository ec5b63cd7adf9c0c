"""Temperature scaling: the fit finds a known temperature, folding it divides the logits, and ``calibrate`` writes a
model whose probabilities are the fitted ones, never over an existing file."""

import pytest
import torch

import vitfer
from vitfer.errors import OutputError
from vitfer.evaluation.calibration import fit_temperature, fold_temperature, view_logits_of
from vitfer.models.checkpoint import load_model
from vitfer.models.inputs import model_input


def test_the_fit_recovers_the_temperature_the_labels_were_drawn_at():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 7, generator=generator) * 3
    for true_temperature in (0.5, 2.0):
        targets = torch.multinomial((logits / true_temperature).softmax(-1), 1, generator=generator)[:, 0]
        assert fit_temperature(logits, targets) == pytest.approx(true_temperature, rel=0.05)


def test_the_fit_reads_view_averaged_logits():
    """V x B x C logits (test-time views) fit as well as B x C; two equal views change nothing."""
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(5000, 7, generator=generator) * 2
    targets = torch.multinomial((logits / 1.5).softmax(-1), 1, generator=generator)[:, 0]
    assert fit_temperature(torch.stack([logits, logits]), targets) == pytest.approx(fit_temperature(logits, targets),
                                                                                   rel=1e-3)


def test_folding_divides_the_logits_by_the_temperature(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    x = model_input(loaded.preprocess, torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8))
    with torch.no_grad():
        before = loaded.model(x)
        fold_temperature(loaded.model, 2.5)
        after = loaded.model(x)
    assert torch.allclose(after, before / 2.5, atol=1e-5)


def test_calibrate_writes_the_fitted_model_and_never_over_a_file(tiny_checkpoint, fer_folder, tmp_path):
    out = tmp_path / "calibrated.pt"
    record = vitfer.calibrate(tiny_checkpoint, fer_folder, out)
    assert record["fitted_on"].endswith("val") and record["faces"] > 0 and record["temperature"] > 0
    assert record["nll_after"] <= record["nll_before"] + 1e-6  # the fit minimises the NLL
    calibrated, original = load_model(out), load_model(tiny_checkpoint)
    assert calibrated.meta.calibration == record
    faces = torch.randint(0, 256, (6, 1, 48, 48), dtype=torch.uint8)
    expected = view_logits_of(original, faces)[0] / record["temperature"]
    assert torch.allclose(view_logits_of(calibrated, faces)[0], expected, atol=1e-4)
    with pytest.raises(OutputError, match="exists"):
        vitfer.calibrate(tiny_checkpoint, fer_folder, out)
