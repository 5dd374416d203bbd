"""Few-shot evaluation: n labelled training examples per class, a linear probe or kNN on frozen features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .knn import train_knn
from .linear import train_linear_probe
from .probe import check_features, infer_num_classes


def few_shot_indices(labels: Sequence[int] | np.ndarray, shots: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of `shots` examples per class (all of a class that has fewer), seeded; nested over `shots`."""
    if shots < 1:
        raise ValueError(f"shots per class must be >= 1, got {shots}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"few-shot sampling needs non-empty 1-D class labels, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:shots] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def few_shot_evaluate(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    shots: Sequence[int] = (1, 2, 5, 10),
    seeds: int = 3,
    method: str = "linear",
    metric: str = "macro_f1",
    seed: int = 0,
) -> dict[int, list[float]]:
    """{shots: [test `metric` per seed]} for single-label classification (a probe with default C: no validation
    labels are assumed in the few-shot setting); the seeds are `seed`, ..., `seed + seeds - 1`."""
    if method not in ("linear", "knn"):
        raise ValueError(f"few-shot method must be 'linear' or 'knn', got {method!r}")
    train_x, train_y = check_features(train_x, train_y, "train")
    test_x, test_y = check_features(test_x, test_y, "test")
    num_classes = infer_num_classes(train_y, test_y)
    results: dict[int, list[float]] = {}
    for n in shots:
        results[int(n)] = []
        for job_seed in range(seed, seed + seeds):
            idx = few_shot_indices(train_y, n, job_seed)
            if method == "linear":
                probe = train_linear_probe(train_x[idx], train_y[idx], num_classes=num_classes, seed=job_seed)
            else:
                probe = train_knn(train_x[idx], train_y[idx], num_classes=num_classes)
            results[int(n)].append(probe.score(test_x, test_y)[metric])
    return results
