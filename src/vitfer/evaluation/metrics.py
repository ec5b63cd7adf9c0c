"""Classification metrics for FER: the figures of a paper's results table, computed with torchmetrics (the same
definitions as the validation metrics of training)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (multiclass_accuracy, multiclass_confusion_matrix,
                                                    multiclass_f1_score, multiclass_precision, multiclass_recall)


def calibration_bins(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 15) -> dict:
    """Confidence/accuracy per equal-width confidence bin and the expected calibration error (ECE)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    acc_sum = np.bincount(which, weights=correct.astype(float), minlength=bins)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    mean_acc = np.where(filled, acc_sum / np.maximum(count, 1), np.nan)
    ece = float(np.sum(count[filled] / len(y_true) * np.abs(mean_acc[filled] - mean_conf[filled])))
    return {"ece": ece, "edges": edges.tolist(), "count": count.tolist(),
            "confidence": [None if np.isnan(v) else float(v) for v in mean_conf],
            "accuracy": [None if np.isnan(v) else float(v) for v in mean_acc]}


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, top-2, per-class P/R/F1/support/accuracy, macro and weighted averages, confusion, ECE."""
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    k = len(labels)
    y_pred = probabilities.argmax(axis=1)
    target, predicted = torch.as_tensor(y_true, dtype=torch.long), torch.as_tensor(y_pred, dtype=torch.long)

    def scores(average: str | None) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(metric(predicted, target, k, average=average, zero_division=0))
                     for metric in (multiclass_precision, multiclass_recall, multiclass_f1_score))

    precision, recall, f1 = scores(None)
    matrix = multiclass_confusion_matrix(predicted, target, k).numpy()
    support = matrix.sum(axis=1)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i]),
               # accuracy of the one-vs-rest decision for this class (what some FER papers call per-class accuracy)
               "accuracy": float((matrix.sum() - matrix[i].sum() - matrix[:, i].sum() + 2 * matrix[i, i])
                                 / matrix.sum())}
        for i, name in enumerate(labels)
    }
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f = scores(average)
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    top2 = (float(multiclass_accuracy(torch.as_tensor(probabilities), target, k, average="micro", top_k=2))
            if k > 2 else 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    present = [name for name in labels if per_class[name]["support"] > 0]
    by_f1 = sorted(present, key=lambda name: per_class[name]["f1"])
    return {
        "samples": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()),
        "top2_accuracy": float(top2),
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "per_class": per_class,
        "best_class": by_f1[-1] if by_f1 else None,
        "worst_class": by_f1[0] if by_f1 else None,
        "labels": list(labels),
        "confusion": matrix.tolist(),
        "confusion_normalised": normalised.round(4).tolist(),
        "calibration": calibration_bins(probabilities, y_true),
    }
