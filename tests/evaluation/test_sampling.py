from __future__ import annotations

import numpy as np
import pytest

from umedpt_hf.evaluation.sampling import (
    check_fractions,
    fraction_key,
    multilabel_subset,
    random_subset,
    stratified_subset,
    subset_for_task,
)


def imbalanced_labels() -> np.ndarray:
    # 500 / 100 / 10 / 2 examples: the rare classes must survive a 1 % fraction
    return np.repeat([0, 1, 2, 3], [500, 100, 10, 2])


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.25, 0.5])
def test_stratified_subset_keeps_every_class_and_proportions(fraction):
    labels = imbalanced_labels()
    idx = stratified_subset(labels, fraction, seed=3)
    counts = np.bincount(labels[idx], minlength=4)
    expected = np.maximum(1, np.round(fraction * np.bincount(labels)))
    assert np.array_equal(counts, expected)
    assert len(np.unique(idx)) == len(idx)


def test_stratified_subset_nested_seeded_and_full():
    labels = imbalanced_labels()
    small, large = stratified_subset(labels, 0.05, seed=1), stratified_subset(labels, 0.25, seed=1)
    assert set(small) <= set(large)
    assert np.array_equal(small, stratified_subset(labels, 0.05, seed=1))
    assert not np.array_equal(small, stratified_subset(labels, 0.05, seed=2))
    assert np.array_equal(stratified_subset(labels, 1.0, seed=5), np.arange(len(labels)))


def test_one_example_per_class_at_one_percent_of_a_small_split():
    labels = np.repeat([0, 1, 2], 8)  # 24 examples: 1 % is one per class
    idx = stratified_subset(labels, 0.01, seed=0)
    assert sorted(labels[idx].tolist()) == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -0.1, 1.01, 2, float("nan"), float("inf"), "abc"])
def test_bad_fraction_raises(bad):
    with pytest.raises(ValueError, match="fraction"):
        stratified_subset([0, 1], bad)


def test_check_fractions_sorts_and_keys():
    assert check_fractions([1.0, 0.1, 0.01, 0.1]) == [0.01, 0.1, 1.0]
    assert [fraction_key(f) for f in (0.01, 0.05, 1, 0.25)] == ["0.01", "0.05", "1.0", "0.25"]
    with pytest.raises(ValueError, match="no label fractions"):
        check_fractions([])


def test_multilabel_subset_keeps_a_positive_of_every_label():
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 5)) < [0.5, 0.2, 0.05, 0.01, 0.0]).astype(int)
    labels[7, 3] = 1  # make sure the rarest label has a positive
    for seed in range(3):
        idx = multilabel_subset(labels, 0.01, seed)
        present = labels.sum(0) > 0
        assert np.all(labels[idx].sum(0)[present] >= 1)
        assert set(idx) <= set(multilabel_subset(labels, 0.5, seed))


def test_random_subset_and_dispatch():
    assert len(random_subset(10, 0.01, 0)) == 1
    assert len(random_subset(200, 0.25, 0)) == 50
    assert len(subset_for_task("segmentation", np.zeros(40), 0.1, 0)) == 4
    with pytest.raises(ValueError, match="empty"):
        stratified_subset([], 0.5)
