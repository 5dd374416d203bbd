from __future__ import annotations

import math

import numpy as np
import pytest

from umedpt_hf.evaluation.metrics import (
    average_precision,
    check_metric,
    classification_metrics,
    detection_metrics,
    multilabel_metrics,
    segmentation_metrics,
)


def test_classification_metrics_known_values():
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 0])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8], [0.55, 0.45]])
    m = classification_metrics(y_true, y_pred, scores)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    # F1 class 0: p=3/4 r=3/4 -> 0.75; class 1: p=1/2 r=1/2 -> 0.5
    assert m["macro_f1"] == pytest.approx(0.625)
    # positives scored 0.8, 0.45 vs negatives 0.1, 0.2, 0.3, 0.6: 7 of 8 pairs ordered
    assert m["auc"] == pytest.approx(7 / 8)


def test_auc_is_nan_when_a_class_is_missing_and_multiclass_works():
    m = classification_metrics([0, 0], [0, 0], np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert math.isnan(m["auc"])
    y = np.array([0, 1, 2, 0, 1, 2])
    m = classification_metrics(y, y, np.eye(3)[y])
    assert m["auc"] == pytest.approx(1.0) and m["macro_f1"] == pytest.approx(1.0)


def test_multilabel_metrics():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    m = multilabel_metrics(y, y, y.astype(float))
    assert m["accuracy"] == m["macro_f1"] == m["auc"] == pytest.approx(1.0)


def test_segmentation_dice_and_iou_hand_computed():
    target = np.zeros((4, 4), dtype=int)
    target[:2, :2] = 1  # 4 foreground pixels
    pred = np.zeros((4, 4), dtype=int)
    pred[:2, :3] = 1  # 6 predicted, 4 overlap
    m = segmentation_metrics(pred, target, num_classes=2)
    assert m["dice"] == pytest.approx(2 * 4 / (4 + 6))
    assert m["iou"] == pytest.approx(4 / 6)
    target[3, 3] = 255  # ignored pixel, predicted background: no change
    assert segmentation_metrics(pred, target, num_classes=2) == m
    with pytest.raises(ValueError, match="shape"):
        segmentation_metrics(pred[:2], target, num_classes=2)


def test_detection_map_perfect_and_with_a_confident_false_positive():
    target = [{"boxes": [[10, 10, 20, 20], [30, 30, 40, 40]], "labels": [0, 0]}]
    perfect = [{"boxes": [[10, 10, 20, 20], [30, 30, 40, 40]], "scores": [0.9, 0.8], "labels": [0, 0]}]
    assert detection_metrics(perfect, target)["map50"] == pytest.approx(1.0)
    # a false positive ranked first: precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> AP = 0.5 * 2/3 + 0.5 * 2/3
    with_fp = [{"boxes": [[50, 50, 60, 60], *perfect[0]["boxes"]], "scores": [0.95, 0.9, 0.8], "labels": [0, 0, 0]}]
    assert detection_metrics(with_fp, target)["map50"] == pytest.approx(2 / 3)
    # wrong class and a box with IoU < 0.5 give nothing
    wrong = [{"boxes": [[10, 10, 20, 20], [30, 30, 36, 36]], "scores": [0.9, 0.8], "labels": [1, 0]}]
    assert detection_metrics(wrong, target)["map50"] == pytest.approx(0.0)
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no ground-truth"):
        detection_metrics([{"boxes": [], "scores": [], "labels": []}], [{"boxes": [], "labels": []}])


def test_unknown_metric_or_type():
    with pytest.raises(ValueError, match="not defined for segmentation"):
        check_metric("segmentation", "auc")
    with pytest.raises(ValueError, match="unknown task type"):
        check_metric("regression", "auc")
