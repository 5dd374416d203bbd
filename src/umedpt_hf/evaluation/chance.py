"""Chance level: the expected score of a prediction that does not look at the image.

The rule ("stratified random", scikit-learn's `DummyClassifier(strategy="stratified")`): every test example gets a
class drawn at random with the training split's class frequencies q (multi-label: each label positive with its
training rate q). Scores are computed from the expected confusion counts against the test frequencies p:
precision of class c = p_c, recall = q_c, so F1_c = 2 p_c q_c / (p_c + q_c); accuracy = sum_c p_c q_c; balanced
accuracy = mean q_c; AUC = 0.5. Macro-F1 averages over the classes that occur in the test split, as
`metrics.classification_metrics` does; with training frequencies equal to the test frequencies it is 1 / K for K
classes, whatever their balance (a constant prediction scores less: 2 p_k / ((1 + p_k) K)).
Segmentation and detection have no closed-form chance level here (None).
"""

from __future__ import annotations

import numpy as np

CHANCE_RULE = "stratified_random"


def _f1(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    total = p + q
    return np.divide(2 * p * q, total, out=np.zeros_like(total, dtype=float), where=total > 0)


def _frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes)[:num_classes] / len(labels)


def classification_chance(train_labels, test_labels, num_classes: int, metric: str) -> float:
    """Chance level of `metric` for single-label class indices (see the module docstring)."""
    train, test = np.asarray(train_labels, dtype=int), np.asarray(test_labels, dtype=int)
    if train.size == 0 or test.size == 0:
        raise ValueError("chance level needs non-empty training and test labels")
    for split, labels in (("train", train), ("test", test)):
        if labels.min() < 0 or labels.max() >= num_classes:
            bad = int(labels[(labels < 0) | (labels >= num_classes)][0])
            raise ValueError(f"{split} label {bad} is not a class index of a {num_classes}-class task")
    q, p = _frequencies(train, num_classes), _frequencies(test, num_classes)
    present = p > 0
    if metric == "macro_f1":
        return float(_f1(p, q)[present].mean())
    if metric == "accuracy":
        return float(np.sum(p * q))
    if metric == "balanced_accuracy":
        return float(q[present].mean())
    if metric == "auc":
        return 0.5
    raise ValueError(f"no chance level for classification metric {metric!r}")


def multilabel_chance(train_labels, test_labels, metric: str) -> float:
    """Chance level of `metric` for (N, C) indicator matrices, each label drawn independently with its training rate."""
    train, test = np.asarray(train_labels, dtype=float), np.asarray(test_labels, dtype=float)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1] or not len(train) or not len(test):
        raise ValueError(f"chance level needs (N, C) indicator matrices, got {train.shape} and {test.shape}")
    q, p = train.mean(axis=0), test.mean(axis=0)
    if metric == "macro_f1":
        return float(_f1(p, q).mean())
    if metric == "accuracy":  # every label right at once
        return float(np.prod(p * q + (1 - p) * (1 - q)))
    if metric in ("balanced_accuracy", "auc"):
        return 0.5
    raise ValueError(f"no chance level for multilabel metric {metric!r}")


def chance_level(task_type: str, metric: str, train_labels, test_labels, num_classes: int) -> float | None:
    """The chance level of one task's `metric`, or None for segmentation and detection."""
    if task_type == "classification":
        return classification_chance(train_labels, test_labels, num_classes, metric)
    if task_type == "multilabel":
        return multilabel_chance(train_labels, test_labels, metric)
    return None
