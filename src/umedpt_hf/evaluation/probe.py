"""What the linear probe and kNN share: a fitted classifier that gives class probabilities, and its scoring."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .features import check_finite
from .metrics import classification_metrics, multilabel_metrics


def check_features(x: np.ndarray, y: np.ndarray, split: str, multilabel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features as float (N, D) without NaN, labels as int (N,) or an (N, C) indicator matrix; clear errors else."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{split} features must be a 2-D (examples, dim) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"the {split} split is empty")
    if len(y) != x.shape[0]:
        raise ValueError(f"{split}: {x.shape[0]} feature rows but {len(y)} labels")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{split} features must be numeric, got dtype {x.dtype}")
    check_finite(x, f"{split} features")
    if multilabel and y.ndim != 2:
        raise ValueError(f"{split}: multi-label targets must be an (N, C) indicator matrix, got shape {y.shape}")
    if not multilabel and y.ndim != 1:
        raise ValueError(f"{split}: class labels must be 1-D, got shape {y.shape}")
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


@dataclass
class FittedProbe:
    """A fitted scikit-learn estimator on frozen features; `predict_proba` always returns (N, num_classes)."""

    estimator: Any
    num_classes: int
    multilabel: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    validation_score: float | None = None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        with threadpool_limits(1):  # one BLAS thread: the same numbers whatever the machine's thread count
            proba = self.estimator.predict_proba(x)
        if self.multilabel:
            if isinstance(proba, list):  # per-label (N, 2) arrays from multi-output estimators
                proba = np.stack([p[:, -1] if p.shape[1] > 1 else np.zeros(len(x)) for p in proba], axis=1)
            return np.asarray(proba, dtype=np.float64)
        out = np.zeros((len(x), self.num_classes))
        out[:, np.asarray(self.estimator.classes_, dtype=int)] = proba
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        proba = self.predict_proba(x)
        return (proba >= 0.5).astype(int) if self.multilabel else proba.argmax(axis=1)

    def score(self, x: np.ndarray, y: np.ndarray, only: str | None = None) -> dict[str, float]:
        """All classification metrics on (x, y) (`only`: just that one where it can be computed alone)."""
        x, y = check_features(x, y, "test", self.multilabel)
        proba = self.predict_proba(x)
        if self.multilabel:
            return multilabel_metrics(y, (proba >= 0.5).astype(int), proba)
        return classification_metrics(y, proba.argmax(axis=1), proba, num_classes=self.num_classes, only=only)


def infer_num_classes(*label_arrays: np.ndarray, multilabel: bool = False) -> int:
    """Number of classes seen in any of the label arrays."""
    arrays = [np.asarray(a) for a in label_arrays if a is not None]
    if multilabel:
        return int(arrays[0].shape[1])
    return int(max(int(a.max()) for a in arrays if a.size)) + 1
