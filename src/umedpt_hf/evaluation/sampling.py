"""Seeded, stratified label fractions: the training subsets of the data-scarcity protocol.

For a given seed the subsets are nested (the 1 % subset lies inside the 5 % one, and so on), so that a curve over
fractions measures more labels rather than different examples. Every class present in the split keeps at least one
example, so the smallest fraction of a small held-out task may be exactly one labelled example per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def check_fraction(fraction: float) -> float:
    """A label fraction must be a number in (0, 1]."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"label fraction {fraction!r} is not a number") from None
    if not math.isfinite(value) or value <= 0 or value > 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction!r}")
    return value


def check_fractions(fractions: Sequence[float]) -> list[float]:
    """Validate, deduplicate and sort fractions."""
    if len(fractions) == 0:
        raise ValueError("no label fractions given")
    return sorted({check_fraction(f) for f in fractions})


def fraction_key(fraction: float) -> str:
    """The JSON key of a fraction: shortest decimal string, e.g. 0.01 -> "0.01", 1 -> "1.0"."""
    return repr(float(check_fraction(fraction)))


def _class_targets(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Examples to keep per class: round(fraction * count), at least one for each present class."""
    return np.where(counts > 0, np.maximum(1, np.round(fraction * counts).astype(int)), 0)


def stratified_subset(labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified `fraction` of single-label examples: >= 1 per present class, nested over
    fractions for a fixed seed."""
    fraction = check_fraction(fraction)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"single-label labels must be 1-D, got shape {labels.shape}; use multilabel_subset")
    if labels.size == 0:
        raise ValueError("cannot sample from an empty split")
    if fraction == 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = _class_targets(counts, fraction)
    chosen = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        chosen.append(rng.permutation(members)[: keep[c]])
    return np.sort(np.concatenate(chosen))


def multilabel_subset(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of `fraction` of multi-label examples (indicator matrix (N, C)) with at least one positive example for
    every label that has one in the split; otherwise in seeded random order, nested over fractions."""
    fraction = check_fraction(fraction)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"multi-label labels must be an (N, C) indicator matrix, got shape {labels.shape}")
    if labels.shape[0] == 0:
        raise ValueError("cannot sample from an empty split")
    if fraction == 1.0:
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    required: list[int] = []
    for c in range(labels.shape[1]):
        positives = order[labels[order, c] > 0]
        if len(positives) and not np.any(labels[required, c] > 0):
            required.append(int(positives[0]))
    target = max(len(required), round(fraction * len(labels)), 1)
    taken = set(required)
    rest = [int(i) for i in order if int(i) not in taken]
    return np.sort(np.array(required + rest[: target - len(required)], dtype=int))


def random_subset(num_examples: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a seeded random `fraction` of examples (at least one), nested over fractions: for tasks whose
    examples have no single class (segmentation, detection)."""
    fraction = check_fraction(fraction)
    if num_examples <= 0:
        raise ValueError("cannot sample from an empty split")
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.sort(order[: max(1, round(fraction * num_examples))])


def subset_for_task(task_type: str, labels, fraction: float, seed: int = 0) -> np.ndarray:
    """The protocol's training subset for one task type: stratified for classes, random otherwise."""
    if task_type == "classification":
        return stratified_subset(labels, fraction, seed)
    if task_type == "multilabel":
        return multilabel_subset(labels, fraction, seed)
    return random_subset(len(labels), fraction, seed)
