"""Linear probe on frozen features: scikit-learn logistic regression, C chosen on the validation split."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from threadpoolctl import threadpool_limits

from .probe import FittedProbe, check_features, infer_num_classes

# inverse regularisation strengths tried; ties are broken towards C = 1 (the middle of the grid)
DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


FEATURE_NORMS = ("standard", "l2")


def feature_scaler(feature_norm: str):
    """The scaler before the logistic regression. "standard": z-scores with the training subset's statistics (the
    default); "l2": each vector scaled to unit length (needs no statistics)."""
    if feature_norm == "standard":
        return StandardScaler()
    if feature_norm == "l2":
        return Normalizer(norm="l2")
    raise ValueError(f"unknown feature_norm {feature_norm!r}; expected one of {', '.join(FEATURE_NORMS)}")


def _fit(x: np.ndarray, y: np.ndarray, C: float, multilabel: bool, max_iter: int, seed: int, feature_norm="standard"):
    logistic = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    estimator = make_pipeline(feature_scaler(feature_norm), OneVsRestClassifier(logistic) if multilabel else logistic)
    with warnings.catch_warnings(), threadpool_limits(1):  # small problems: BLAS threads only add contention
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # OneVsRest: a label without positives in a tiny subset
        estimator.fit(x, y)
    return estimator


def train_linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray | None = None,
    val_y: np.ndarray | None = None,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    metric: str = "macro_f1",
    multilabel: bool = False,
    num_classes: int | None = None,
    max_iter: int = 1000,
    seed: int = 0,
    feature_norm: str = "standard",
) -> FittedProbe:
    """Fit logistic regression on normalised features (`feature_norm`: "l2" unit vectors, or "standard" z-scores)
    for each C in `Cs`, keep the best on (val_x, val_y) by `metric`.

    Without a validation split, C = 1. Returns a `FittedProbe`; `probe.params["C"]` is the chosen C.
    """
    train_x, train_y = check_features(train_x, train_y, "train", multilabel)
    if not multilabel and len(np.unique(train_y)) < 2:
        raise ValueError("the linear probe needs at least two classes in the training subset")
    num_classes = num_classes or infer_num_classes(train_y, val_y, multilabel=multilabel)
    if not Cs:
        raise ValueError("Cs is empty")
    if val_x is None or val_y is None:
        candidates = [1.0]
    else:
        val_x, val_y = check_features(val_x, val_y, "validation", multilabel)
        candidates = sorted(Cs, key=lambda c: abs(math.log10(c)))
    best: FittedProbe | None = None
    for C in candidates:
        estimator = _fit(train_x, train_y, C, multilabel, max_iter, seed, feature_norm)
        probe = FittedProbe(estimator, num_classes, multilabel, {"C": C, "feature_norm": feature_norm})
        if len(candidates) == 1:
            return probe
        probe.validation_score = probe.score(val_x, val_y, only=metric)[metric]
        score = -math.inf if math.isnan(probe.validation_score) else probe.validation_score
        if best is None or score > (best.validation_score if not math.isnan(best.validation_score) else -math.inf):
            best = probe
    return best
