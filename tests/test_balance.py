import pytest
import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight

from vitfer.data.balance import class_weights, oversample_minority, undersample_majority, weighted_sampler
from vitfer.errors import ConfigError

LABELS = np.array([0] * 50 + [1] * 5 + [2] * 20 + [3] * 25)


def test_class_weights_match_sklearn_and_zero_for_absent():
    weights = class_weights(LABELS, 5)
    expected = compute_class_weight("balanced", classes=np.arange(4), y=LABELS)
    assert np.allclose(weights[:4].numpy(), expected) and weights[4] == 0


def test_oversample_multiplies_minorities_capped_at_largest():
    rows = oversample_minority(np.arange(len(LABELS)), LABELS, factor=3, seed=0)
    counts = np.bincount(LABELS[rows])
    assert counts.tolist() == [50, 15, 50, 50]
    assert set(rows) == set(range(len(LABELS)))


def test_oversample_stays_inside_given_rows():
    train = np.arange(0, 80)
    rows = oversample_minority(train, LABELS, factor=2, seed=1)
    assert rows.max() < 80


def test_undersample_caps_each_class():
    rows = undersample_majority(np.arange(len(LABELS)), LABELS, limit=10, seed=0)
    assert np.bincount(LABELS[rows]).tolist() == [10, 5, 10, 10]
    assert len(set(rows)) == len(rows)


def test_weighted_sampler_evens_classes():
    sampler = weighted_sampler(LABELS, num_samples=20000, seed=0)
    drawn = np.bincount(LABELS[list(sampler)], minlength=4) / 20000
    assert np.allclose(drawn, 0.25, atol=0.02)
    assert torch.is_tensor(sampler.weights)


def test_undersampling_to_a_fraction_of_the_majority_classes_then_oversampling_the_rest():
    from vitfer.data.balance import oversample_minority, undersample_majority
    from vitfer.data.datamodule import balance_modes

    labels = np.array([0] * 100 + [1] * 50 + [2] * 10)  # mean 53.3: only class 0 is a majority class
    rows = undersample_majority(np.arange(160), labels, limit=5000, fraction=0.4)
    assert np.bincount(labels[rows]).tolist() == [40, 50, 10]
    rows = oversample_minority(rows, labels, factor=2.0)
    assert np.bincount(labels[rows]).tolist() == [50, 50, 20]  # each smaller class doubled, capped at the largest
    assert balance_modes("undersample+oversample+weights") == {"undersample", "oversample", "weights"}
    assert balance_modes("none") == set()
    with pytest.raises(ConfigError, match=r"unknown balance 'weights\+magic'"):
        balance_modes("weights+magic")
