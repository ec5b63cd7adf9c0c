"""Intervals and tests against answers known in closed form or from scikit-learn and SciPy."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from vitfer.evaluation.significance import bootstrap_intervals, macro_f1, paired_difference


def test_macro_f1_is_scikit_learns_and_the_evaluations_with_absent_classes():
    from vitfer.evaluation.metrics import classification_metrics

    rng = np.random.default_rng(0)
    truth, guess = rng.integers(0, 6, 500), rng.integers(0, 5, 500)  # class 6 never occurs, 5 never predicted
    expected = f1_score(truth, guess, average="macro", zero_division=0)  # over the 6 classes that occur
    assert expected != pytest.approx(f1_score(truth, guess, labels=list(range(7)), average="macro"))
    assert macro_f1(truth, guess, 7)[0] == pytest.approx(expected)
    probabilities = np.eye(7)[guess]
    assert classification_metrics(truth, probabilities, tuple("abcdefg"))["macro"]["f1"] == pytest.approx(expected)


def test_the_interval_of_an_accuracy_is_as_wide_as_the_binomial_says():
    truth = np.zeros(2000, int)
    guess = np.where(np.arange(2000) % 10 == 0, 1, 0)  # 90 % right
    ci = bootstrap_intervals(truth, guess, 2, resamples=2000, seed=1)["accuracy"]
    assert ci[0] < 0.9 < ci[1]
    assert ci[1] - ci[0] == pytest.approx(2 * 1.96 * np.sqrt(0.9 * 0.1 / 2000), rel=0.15)
    assert bootstrap_intervals(truth, guess, 2, seed=1) == bootstrap_intervals(truth, guess, 2, seed=1)  # seeded


def test_mcnemar_and_the_paired_difference():
    truth = np.zeros(1000, int)
    a, b = truth.copy(), truth.copy()
    a[:2], b[2:12] = 1, 1  # A wrong on 2 faces, B on 10 others: only A right on 10, only B right on 2
    result = paired_difference(truth, a, b, 2)
    assert (result["only_a"], result["only_b"]) == (10, 2)
    assert result["mcnemar_p"] == pytest.approx(2 * (1 + 12 + 66) / 4096)  # exact binomial, two-sided
    assert result["accuracy"] == pytest.approx(0.008)
    same = paired_difference(truth, a, a, 2)
    assert same["accuracy_interval"] == [0.0, 0.0] and not same["significant"] and same["mcnemar_p"] == 1.0
    better = a.copy()
    b_much_worse = truth.copy()
    b_much_worse[100:200] = 1
    assert paired_difference(truth, better, b_much_worse, 2)["significant"]
    with pytest.raises(ValueError, match="same faces"):
        paired_difference(truth, a, b[:10], 2)
