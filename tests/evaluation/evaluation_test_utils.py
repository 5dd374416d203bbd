"""Synthetic bar images shared by the evaluation tests (a uniquely named module: conftest names collide)."""

from __future__ import annotations

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

IMAGE_SIDE = 32
CLASS_NAMES = ["top", "middle", "bottom"]
SPEC = {"type": "classification", "labels": CLASS_NAMES, "modality": "xray"}


def bar_images(count: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """Noisy grey images with a bright horizontal bar at the top, middle or bottom: the class."""
    rng = np.random.default_rng(seed)
    labels = [i % len(CLASS_NAMES) for i in range(count)]
    images = []
    for label in labels:
        image = rng.normal(60, 25, (IMAGE_SIDE, IMAGE_SIDE))
        row = 4 + label * 10 + int(rng.integers(-1, 2))
        image[row : row + 6] += 140
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images, labels


def bar_dataset(count: int, seed: int) -> Dataset:
    images, labels = bar_images(count, seed)
    features = Features({"image": Image(), "label": ClassLabel(names=CLASS_NAMES)})
    return Dataset.from_dict({"image": images, "label": labels}, features=features)


def bar_splits(train: int = 48, validation: int = 24, test: int = 24) -> DatasetDict:
    return DatasetDict(
        {"train": bar_dataset(train, 0), "validation": bar_dataset(validation, 1), "test": bar_dataset(test, 2)}
    )
