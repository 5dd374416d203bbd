"""k-nearest-neighbour classification on frozen features: cosine distance, k = 11, distance-weighted votes."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from .probe import FittedProbe, check_features, infer_num_classes

DEFAULT_K = 11


def train_knn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    *,
    k: int = DEFAULT_K,
    multilabel: bool = False,
    num_classes: int | None = None,
) -> FittedProbe:
    """A cosine kNN classifier; k is capped at the number of training examples (a 1 % subset may hold fewer than 11).

    Votes are weighted by inverse distance so that a subset with one example per class is not decided by a tie.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train_x, train_y = check_features(train_x, train_y, "train", multilabel)
    num_classes = num_classes or infer_num_classes(train_y, multilabel=multilabel)
    estimator = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), metric="cosine", weights="distance")
    with threadpool_limits(1):  # as the linear probe: results independent of the BLAS thread count
        estimator.fit(train_x, train_y)
    return FittedProbe(estimator, num_classes, multilabel, {"k": estimator.n_neighbors})
