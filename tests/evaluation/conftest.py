"""Fixtures of the evaluation tests: a tiny saved UMedPT checkpoint and a tiny task database on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
from umedpt_hf.presets import tiny_config

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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny UMedPTForMultiTask (one pretraining task) saved with save_pretrained, with its image processor."""
    import torch

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_umedpt")
    config = tiny_config(tasks={"pretrain": {"type": "classification", "labels": ["a", "b"], "modality": "xray"}})
    UMedPTForMultiTask(config).save_pretrained(directory)
    UMedPTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_database(tmp_path_factory) -> Path:
    """A task database as `umedpt data build` writes it: tasks.json + one DatasetDict per task."""
    root = tmp_path_factory.mktemp("tiny_database")
    splits = bar_splits()
    splits.save_to_disk(str(root / "bars"))
    entry = {
        "name": "bars",
        **SPEC,
        "splits": {name: len(part) for name, part in splits.items()},
        "source": "synthetic bars (tests)",
        "licence": "CC0",
    }
    entry["path"] = "bars"  # relative to the database root, as `umedpt data build` writes it
    (root / "tasks.json").write_text(json.dumps({"tasks": [entry]}, indent=2))
    return root
