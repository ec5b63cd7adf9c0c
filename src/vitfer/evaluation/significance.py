"""Whether a figure, or a difference between two models, is real: bootstrap intervals and McNemar's exact test.

Both work on the per-face predictions of one split: the interval of a model's accuracy and macro-F1 resamples
its faces (seeded, 1,000 resamples by default); the difference between two models resamples the faces both were
tested on (paired), and McNemar's test counts the faces only one of them got right.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Macro-F1 of each row of ``y_true``/``y_pred`` (R x N, or N): the mean of 2TP / (2TP + FP + FN) over the
    classes that occur in the row's truth or guesses (as torchmetrics and scikit-learn average by default)."""
    y_true, y_pred = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    scores, seen = [], []
    for c in range(classes):
        truth, guess = y_true == c, y_pred == c
        tp = (truth & guess).sum(axis=1)
        denominator = truth.sum(axis=1) + guess.sum(axis=1)
        scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
        seen.append(denominator > 0)
    return np.sum(scores, axis=0) / np.maximum(np.sum(seen, axis=0), 1)


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2
    return [float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))]


def bootstrap_intervals(y_true: np.ndarray, y_pred: np.ndarray, classes: int, resamples: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of accuracy and macro-F1 over the faces."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rows = _resamples(len(y_true), resamples, seed)
    truth, guess = y_true[rows], y_pred[rows]
    return {"accuracy": _interval((truth == guess).mean(axis=1), level),
            "macro_f1": _interval(macro_f1(truth, guess, classes), level),
            "level": level, "resamples": resamples, "seed": seed}


def paired_difference(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, classes: int,
                      resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """A minus B on the same faces: the differences of accuracy and macro-F1, their paired bootstrap intervals,
    and McNemar's exact test (``p``; ``only_a``/``only_b``: faces only A / only B got right). A difference is
    called significant when its interval excludes 0."""
    y_true, pred_a, pred_b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("both models must be tested on the same faces")
    rows = _resamples(len(y_true), resamples, seed)
    truth = y_true[rows]
    accuracy = ((pred_a[rows] == truth).mean(axis=1) - (pred_b[rows] == truth).mean(axis=1))
    f1 = macro_f1(truth, pred_a[rows], classes) - macro_f1(truth, pred_b[rows], classes)
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    result = {"accuracy": float(right_a.mean() - right_b.mean()), "accuracy_interval": _interval(accuracy, level),
              "macro_f1": float(macro_f1(y_true, pred_a, classes)[0] - macro_f1(y_true, pred_b, classes)[0]),
              "macro_f1_interval": _interval(f1, level), "only_a": only_a, "only_b": only_b, "mcnemar_p": float(p)}
    result["significant"] = not (result["accuracy_interval"][0] <= 0 <= result["accuracy_interval"][1])
    return result


def unpaired_difference(y_a: np.ndarray, pred_a: np.ndarray, y_b: np.ndarray, pred_b: np.ndarray, classes: int,
                        resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Group A minus group B (different faces, e.g. two groups of an audit): the differences of accuracy and
    macro-F1 with bootstrap intervals that resample each group on its own."""
    y_a, pred_a, y_b, pred_b = (np.asarray(v) for v in (y_a, pred_a, y_b, pred_b))
    rows_a = _resamples(len(y_a), resamples, seed)
    rows_b = _resamples(len(y_b), resamples, seed + 1)
    accuracy = (pred_a[rows_a] == y_a[rows_a]).mean(axis=1) - (pred_b[rows_b] == y_b[rows_b]).mean(axis=1)
    f1 = macro_f1(y_a[rows_a], pred_a[rows_a], classes) - macro_f1(y_b[rows_b], pred_b[rows_b], classes)
    result = {"accuracy": float((pred_a == y_a).mean() - (pred_b == y_b).mean()),
              "accuracy_interval": _interval(accuracy, level),
              "macro_f1": float(macro_f1(y_a, pred_a, classes)[0] - macro_f1(y_b, pred_b, classes)[0]),
              "macro_f1_interval": _interval(f1, level)}
    result["significant"] = not (result["accuracy_interval"][0] <= 0 <= result["accuracy_interval"][1])
    return result
