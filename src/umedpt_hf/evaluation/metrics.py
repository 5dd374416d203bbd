"""Task metrics: classification and multi-label, segmentation Dice / IoU (scikit-learn), detection mAP@0.5.

A leaf module (numpy, scikit-learn and torch only; no other umedpt_hf module), so that pretraining's validation and the
evaluation protocol score with the same code. Every function takes plain values: numpy arrays, lists or torch tensors
(any device or dtype, with or without gradients; see `to_numpy`), and returns a dict of Python floats.

- `classification_metrics(y_true, y_pred, y_score=None)`: accuracy, balanced accuracy, macro-F1, one-vs-rest AUC.
- `multilabel_metrics(y_true, y_pred, y_score=None)`: the same on (N, C) indicator matrices.
- `segmentation_metrics(pred, target, num_classes)`: macro Dice and IoU from label maps (255 = ignored).
- `detection_metrics(predictions, targets)`: mAP@0.5 from per-image xyxy boxes, scores and labels.

`evaluate.load(...)` fetches metric scripts from the Hub and fails offline, so classification and segmentation scores
come from `sklearn.metrics`. No installed library computes detection mAP (no pycocotools / torchmetrics), so
`detection_metrics` is a small documented implementation of the Pascal-VOC all-point interpolated average precision.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

__all__ = [
    "DEFAULT_METRIC",
    "METRICS_BY_TYPE",
    "TASK_TYPES",
    "average_precision",
    "classification_metrics",
    "default_metric",
    "detection_metrics",
    "multilabel_metrics",
    "score",
    "segmentation_metrics",
    "to_numpy",
]

TASK_TYPES = ("classification", "multilabel", "segmentation", "detection")

# the score each task type is compared on by default (as in the paper: F1, Dice, mAP)
DEFAULT_METRIC = {
    "classification": "macro_f1",
    "multilabel": "macro_f1",
    "segmentation": "dice",
    "detection": "map50",
}

METRICS_BY_TYPE = {
    "classification": ("accuracy", "balanced_accuracy", "macro_f1", "auc"),
    "multilabel": ("accuracy", "balanced_accuracy", "macro_f1", "auc"),
    "segmentation": ("dice", "iou"),
    "detection": ("map50",),
}


def default_metric(task_type: str) -> str:
    """The metric the data-scarcity protocol reports for a task type."""
    check_task_type(task_type)
    return DEFAULT_METRIC[task_type]


def check_task_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


def check_metric(task_type: str, metric: str) -> None:
    check_task_type(task_type)
    if metric not in METRICS_BY_TYPE[task_type]:
        raise ValueError(
            f"metric {metric!r} is not defined for {task_type} tasks; "
            f"choose one of {', '.join(METRICS_BY_TYPE[task_type])}"
        )


def to_numpy(values: Any, dtype: Any = None) -> np.ndarray:
    """`values` as a numpy array: a torch tensor is detached and moved to the CPU (bf16 / fp16 become float32)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.is_floating_point() and values.dtype not in (torch.float32, torch.float64):
            values = values.float()
        values = values.numpy()
    return np.asarray(values, dtype=dtype)


def _safe_auc(y_true: np.ndarray, y_score: np.ndarray, **kwargs) -> float:
    """ROC AUC, or NaN where it is undefined (a class absent from the test labels)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return float(skm.roc_auc_score(y_true, y_score, **kwargs))
    except ValueError:
        return math.nan


def classification_metrics(
    y_true: Sequence[int] | np.ndarray | torch.Tensor,
    y_pred: Sequence[int] | np.ndarray | torch.Tensor,
    y_score: np.ndarray | torch.Tensor | None = None,
    num_classes: int | None = None,
    only: str | None = None,
) -> dict[str, float]:
    """Single-label scores from class indices (N,): accuracy, balanced accuracy, macro-F1 (mean over the classes that
    occur in `y_true`) and, with class probabilities `y_score` (N, C), one-vs-rest macro AUC (NaN without them or
    where it is undefined). `only` computes just that one of the first three (the probes' validation loop)."""
    y_true = to_numpy(y_true)
    y_pred = to_numpy(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("cannot score an empty test set")
    if num_classes is None:
        num_classes = int(max(y_true.max(), y_pred.max())) + 1 if y_score is None else y_score.shape[1]
    labels = np.arange(num_classes)
    scores = {
        "accuracy": lambda: float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": lambda: float(skm.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": lambda: float(
            skm.f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0)
        ),
    }
    if only in scores:
        return {only: scores[only]()}
    result = {name: fn() for name, fn in scores.items()}
    result["auc"] = math.nan
    if y_score is not None:
        y_score = to_numpy(y_score, dtype=np.float64)
        if y_score.shape != (len(y_true), num_classes):
            raise ValueError(f"y_score must have shape ({len(y_true)}, {num_classes}), got {y_score.shape}")
        if num_classes == 2:
            result["auc"] = _safe_auc(y_true, y_score[:, 1])
        else:
            result["auc"] = _safe_auc(y_true, y_score, multi_class="ovr", average="macro", labels=labels)
    return result


def multilabel_metrics(
    y_true: np.ndarray | torch.Tensor,
    y_pred: np.ndarray | torch.Tensor,
    y_score: np.ndarray | torch.Tensor | None = None,
) -> dict[str, float]:
    """Multi-label scores on binary indicator matrices (N, C) (`y_pred` thresholded, e.g. `sigmoid(logits) >= 0.5`):
    subset accuracy, mean per-label balanced accuracy, macro-F1 over all C labels (a label with no positive in
    either matrix counts 0) and, with probabilities `y_score` (N, C), macro AUC over the labels that have both
    outcomes in `y_true`."""
    y_true = to_numpy(y_true).astype(int)
    y_pred = to_numpy(y_pred).astype(int)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(f"multilabel targets must be (N, C) indicator matrices of equal shape, got {y_true.shape}")
    if y_true.shape[0] == 0:
        raise ValueError("cannot score an empty test set")
    balanced = [
        skm.balanced_accuracy_score(y_true[:, c], y_pred[:, c])
        for c in range(y_true.shape[1])
        if len(np.unique(y_true[:, c])) == 2
    ]
    result = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean(balanced)) if balanced else math.nan,
        "macro_f1": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "auc": math.nan,
    }
    if y_score is not None:
        scored = [c for c in range(y_true.shape[1]) if len(np.unique(y_true[:, c])) == 2]
        if scored:
            result["auc"] = _safe_auc(y_true[:, scored], to_numpy(y_score)[:, scored], average="macro")
    return result


def segmentation_metrics(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore_index: int = 255,
    include_background: bool = False,
) -> dict[str, float]:
    """Macro Dice (= pixel F1) and IoU (= Jaccard) over the classes, from label maps of equal shape (any shape, e.g.
    (B, H, W) predictions `logits.argmax(1)` against (B, H, W) targets): every pixel of the batch counts at once.

    Pixels labelled `ignore_index` are left out. Background (class 0) is left out of the mean unless
    `include_background` (or there is only one class). Classes absent from both prediction and target are skipped.
    """
    pred = to_numpy(pred)
    target = to_numpy(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} label maps differ in shape")
    keep = target.reshape(-1) != ignore_index
    p = pred.reshape(-1)[keep]
    t = target.reshape(-1)[keep]
    if t.size == 0:
        raise ValueError("every target pixel is ignore_index: nothing to score")
    first = 0 if include_background or num_classes == 1 else 1
    present = np.union1d(np.unique(p), np.unique(t))
    labels = [c for c in range(first, num_classes) if c in present]
    if not labels:  # no foreground anywhere and none predicted: perfect agreement
        return {"dice": 1.0, "iou": 1.0}
    return {
        "dice": float(skm.f1_score(t, p, labels=labels, average="macro", zero_division=0)),
        "iou": float(skm.jaccard_score(t, p, labels=labels, average="macro", zero_division=0)),
    }


def _iou_xyxy(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box against (M, 4) boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Pascal-VOC (2010+) all-point interpolated AP: area under the precision envelope of the PR curve."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def detection_metrics(
    predictions: Sequence[dict], targets: Sequence[dict], iou_threshold: float = 0.5
) -> dict[str, float]:
    """mAP at one IoU threshold (default 0.5), mean over the classes that have ground-truth boxes.

    predictions: per image {"boxes": (N, 4) xyxy, "scores": (N,), "labels": (N,)} (as `post_process_object_detection`
    returns); targets: per image {"boxes": (M, 4) xyxy, "labels": (M,)} in the same coordinates (convert normalised
    (cx, cy, w, h) training targets with `transformers.image_transforms.center_to_corners_format`). Detections are
    matched greedily by descending score to the unmatched ground-truth box of the same class with the highest IoU.
    A class with ground truth but no detection scores 0; predictions of classes without ground truth are ignored.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} target images")
    as_np = lambda x, shape: to_numpy(x, dtype=np.float64).reshape(shape)  # noqa: E731
    classes = sorted({int(c) for t in targets for c in to_numpy(t["labels"]).reshape(-1)})
    if not classes:
        raise ValueError("no ground-truth boxes in the targets: mAP is undefined")
    aps = []
    for c in classes:
        gt = {}
        num_gt = 0
        dets = []
        for i, (pred, tgt) in enumerate(zip(predictions, targets)):
            t_labels = to_numpy(tgt["labels"]).reshape(-1)
            gt[i] = as_np(tgt["boxes"], (-1, 4))[t_labels == c]
            num_gt += len(gt[i])
            p_labels = to_numpy(pred["labels"]).reshape(-1)
            p_boxes = as_np(pred["boxes"], (-1, 4))[p_labels == c]
            p_scores = as_np(pred["scores"], (-1,))[p_labels == c]
            dets.extend((float(s), i, b) for s, b in zip(p_scores, p_boxes))
        dets.sort(key=lambda d: -d[0])
        matched = {i: np.zeros(len(b), dtype=bool) for i, b in gt.items()}
        tp = np.zeros(len(dets))
        for k, (_, i, box) in enumerate(dets):
            if len(gt[i]) == 0:
                continue
            ious = _iou_xyxy(box, gt[i])
            ious[matched[i]] = -1.0
            j = int(np.argmax(ious))
            if ious[j] >= iou_threshold:
                tp[k] = 1
                matched[i][j] = True
        if len(dets) == 0:
            aps.append(0.0)
            continue
        ctp = np.cumsum(tp)
        recall = ctp / num_gt
        precision = ctp / np.arange(1, len(dets) + 1)
        aps.append(average_precision(recall, precision))
    return {"map50" if iou_threshold == 0.5 else f"map{round(iou_threshold * 100)}": float(np.mean(aps))}


def score(task_type: str, metric: str, **kwargs) -> float:
    """One metric of one task type, from the keyword arguments of the matching `*_metrics` function."""
    check_metric(task_type, metric)
    fn = {
        "classification": classification_metrics,
        "multilabel": multilabel_metrics,
        "segmentation": segmentation_metrics,
        "detection": detection_metrics,
    }[task_type]
    return fn(**kwargs)[metric]
