"""The data-scarcity protocol: train on stratified fractions of the training labels x seeds, score on the test split.

`probe_scarcity_curve` is the core on frozen features (arrays); `run_data_scarcity` extracts features of each task
with each encoder (or fine-tunes, `method="finetune"`) and returns results in the schema of `report.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .knn import DEFAULT_K, train_knn
from .linear import train_linear_probe
from .metrics import check_metric, default_metric
from .probe import check_features, infer_num_classes
from .sampling import check_fractions, fraction_key, subset_for_task

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
DEFAULT_SEEDS = 3
METHODS = ("linear", "knn", "finetune")
PROBE_TASK_TYPES = ("classification", "multilabel")


@dataclass
class SplitFeatures:
    """Frozen features and labels of one task's train / validation / test splits (validation may be None)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None


def check_method(method: str, task_type: str) -> None:
    """The method must exist and handle the task type."""
    if method not in METHODS:
        raise ValueError(f"unknown evaluation method {method!r}; expected one of {', '.join(METHODS)}")
    if method in ("linear", "knn") and task_type not in PROBE_TASK_TYPES:
        raise ValueError(
            f"method {method!r} works on image-level labels (classification, multilabel), not on {task_type} tasks; "
            "use method 'finetune' for segmentation"
        )


def probe_scarcity_curve(
    features: SplitFeatures,
    *,
    task_type: str = "classification",
    method: str = "linear",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: int = DEFAULT_SEEDS,
    metric: str | None = None,
    scale_validation: bool = True,
    k: int = DEFAULT_K,
    num_classes: int | None = None,
    progress: bool = False,
) -> dict[str, list[float]]:
    """{fraction key: [test `metric` per seed]} of a linear probe or kNN trained on stratified label fractions.

    With `scale_validation` (the default) the validation split used to choose C is subsampled with the same fraction
    and seed as the training split, so that "1 % of the labels" counts every label the probe sees; otherwise the full
    validation split is used.
    """
    check_method(method, task_type)
    if method == "finetune":
        raise ValueError("probe_scarcity_curve works on frozen features; fine-tuning goes through run_data_scarcity")
    metric = metric or default_metric(task_type)
    check_metric(task_type, metric)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    fractions = check_fractions(fractions)
    multilabel = task_type == "multilabel"
    train_x, train_y = check_features(features.train_x, features.train_y, "train", multilabel)
    test_x, test_y = check_features(features.test_x, features.test_y, "test", multilabel)
    has_val = features.val_x is not None and features.val_y is not None and len(features.val_y) > 0
    if has_val:
        val_x, val_y = check_features(features.val_x, features.val_y, "validation", multilabel)
    num_classes = num_classes or infer_num_classes(train_y, test_y, multilabel=multilabel)
    curve: dict[str, list[float]] = {}
    jobs = [(f, s) for f in fractions for s in range(seeds)]
    for fraction, seed in tqdm(jobs, desc=f"{method} probe", disable=not progress, leave=False):
        idx = subset_for_task(task_type, train_y, fraction, seed)
        if method == "knn":
            probe = train_knn(train_x[idx], train_y[idx], k=k, multilabel=multilabel, num_classes=num_classes)
        else:
            vx = vy = None
            if has_val:
                vidx = subset_for_task(task_type, val_y, fraction, seed) if scale_validation else slice(None)
                vx, vy = val_x[vidx], val_y[vidx]
            probe = train_linear_probe(
                train_x[idx], train_y[idx], vx, vy,
                metric=metric, multilabel=multilabel, num_classes=num_classes, seed=seed,
            )  # fmt: skip
        curve.setdefault(fraction_key(fraction), []).append(float(probe.score(test_x, test_y)[metric]))
    return curve
