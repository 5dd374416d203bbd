"""Chance level: the closed form equals the average score of predictions drawn with the training frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from umedpt_hf.evaluation.chance import chance_level, classification_chance, multilabel_chance
from umedpt_hf.evaluation.metrics import classification_metrics, multilabel_metrics


def simulated(metric_fn, metric: str, draw, test, runs: int = 400) -> float:
    rng = np.random.default_rng(0)
    return float(np.mean([metric_fn(test, draw(rng))[metric] for _ in range(runs)]))


@pytest.mark.parametrize("metric", ["macro_f1", "accuracy", "balanced_accuracy"])
def test_classification_chance_matches_stratified_random_predictions(metric):
    train = np.repeat([0, 1, 2], [60, 30, 10])
    test = np.repeat([0, 1, 2], [300, 150, 50])
    frequencies = np.bincount(train) / len(train)
    expected = simulated(classification_metrics, metric, lambda rng: rng.choice(3, len(test), p=frequencies), test)
    assert classification_chance(train, test, 3, metric) == pytest.approx(expected, abs=0.01)


def test_macro_f1_chance_is_one_over_k_when_splits_share_the_class_balance():
    labels = np.repeat([0, 1, 2, 3, 4], [50, 20, 10, 10, 10])
    assert classification_chance(labels, labels, 5, "macro_f1") == pytest.approx(1 / 5)
    assert classification_chance([0, 1], [0, 1, 1, 0], 2, "auc") == 0.5


def test_multilabel_chance_matches_random_indicator_predictions():
    rng = np.random.default_rng(1)
    train = (rng.random((200, 3)) < [0.5, 0.2, 0.05]).astype(int)
    test = (rng.random((400, 3)) < [0.5, 0.2, 0.05]).astype(int)
    rates = train.mean(axis=0)
    expected = simulated(multilabel_metrics, "macro_f1", lambda r: (r.random(test.shape) < rates).astype(int), test)
    assert multilabel_chance(train, test, "macro_f1") == pytest.approx(expected, abs=0.01)


def test_no_chance_level_for_masks_and_boxes_and_clear_errors():
    assert chance_level("segmentation", "dice", [0], [0], 2) is None
    assert chance_level("detection", "map50", [0], [0], 2) is None
    with pytest.raises(ValueError, match="no chance level"):
        classification_chance([0, 1], [0, 1], 2, "dice")
    with pytest.raises(ValueError, match="test label 3 is not a class index of a 3-class task"):
        classification_chance([0, 1, 2], [0, 3], 3, "macro_f1")
    with pytest.raises(ValueError, match="non-empty"):
        classification_chance([], [0, 1], 2, "macro_f1")
