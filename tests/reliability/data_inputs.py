"""Writers of (bad) data inputs for the data reliability cases: saved datasets, image / mask folders, COCO, npz."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from umedpt_hf.data import task_features


def grey(size: int = 16, seed: int = 0, dtype: Any = np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, (size, size)).astype(dtype)


def rows(task_type: str, count: int = 6, size: int = 16) -> dict[str, list]:
    """Valid rows of a task type with labels ["a", "b", "c"]; cases break one late row."""
    images = [grey(size, seed) for seed in range(count)]
    if task_type == "classification":
        return {"image": images, "label": [i % 3 for i in range(count)]}
    if task_type == "multilabel":
        return {"image": images, "labels": [[1.0, 0.0, float(i % 2)] for i in range(count)]}
    if task_type == "segmentation":
        return {"image": images, "mask": [np.full((size, size), i % 3, np.uint8) for i in range(count)]}
    objects = [{"bbox": [[1.0, 2.0, 4.0, 5.0]], "category": [i % 3]} for i in range(count)]
    return {"image": images, "objects": objects}


def dataset(task_type: str, data: dict[str, list], features: Features | None = None) -> Dataset:
    return Dataset.from_dict(data, features=features or task_features(task_type, ["a", "b", "c"]))


def with_row(task_type: str, row: int, column: str, value: Any, features: Features | None = None) -> Dataset:
    data = rows(task_type)
    data[column][row] = value
    return dataset(task_type, data, features)


def sixteen_bit_masks(value: int, row: int = 4) -> Dataset:
    data = rows("segmentation")
    data["mask"] = [mask.astype(np.uint16) for mask in data["mask"]]
    data["mask"][row] = np.full((16, 16), value, np.uint16)
    return dataset("segmentation", data)


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path)
    return path


def image_folder(root: Path, classes: list[str], per_class: int = 3) -> Path:
    for label in classes:
        for index in range(per_class):
            save_png(root / label / f"{index}.png", grey(seed=index))
    return root


def mask_folder(root: Path, count: int = 3, bad_value: int | None = None, drop_mask: bool = False) -> Path:
    for index in range(count):
        save_png(root / "images" / f"case{index}.png", grey(seed=index))
        mask = np.full((16, 16), index % 2, np.uint8)
        if bad_value is not None and index == count - 1:
            mask[3, 3] = bad_value
        if not (drop_mask and index == count - 1):
            save_png(root / "masks" / f"case{index}.png", mask)
    return root


def coco_file(root: Path, annotation: dict | None = None, content: Any = None, image: bool = True) -> Path:
    """A COCO file with two 16 px images; ``annotation`` replaces the second annotation."""
    if image:
        for index in range(2):
            save_png(root / f"img{index}.png", grey(seed=index))
    annotations = [
        {"id": 1, "image_id": 0, "category_id": 7, "bbox": [1, 1, 5, 5]},
        annotation if annotation is not None else {"id": 2, "image_id": 1, "category_id": 7, "bbox": [2, 2, 4, 4]},
    ]
    coco = content if content is not None else {
        "images": [{"id": i, "file_name": f"img{i}.png", "width": 16, "height": 16} for i in range(2)],
        "annotations": annotations,
        "categories": [{"id": 7, "name": "cell"}],
    }  # fmt: skip
    path = root / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def medmnist_file(root: Path, shape: tuple[int, ...] = (4, 8, 8), drop: str | None = None) -> Path:
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros(shape, np.uint8)
        arrays[f"{split}_labels"] = (np.arange(shape[0]) % 2).reshape(-1, 1)
    arrays.pop(drop, None)
    path = root / "tiny_mnist.npz"
    root.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def tasks_file(root: Path, content: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.json").write_text(json.dumps(content))
    return root


PLAIN_FEATURES = {
    "int32": Features({"image": Image(), "label": Value("int32")}),
    "bool": Features({"image": Image(), "label": Value("bool")}),
    "image_only": Features({"image": Image()}),
    "multilabel": Features({"image": Image(), "labels": List(Value("float32"))}),
    "class3": Features({"image": Image(), "label": ClassLabel(names=["a", "b", "c"])}),
}
