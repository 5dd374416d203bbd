"""Check that a dataset follows the canonical task schema; errors name the task and the column."""

from __future__ import annotations

import math
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Image, List, Value

from .schema import LABEL_COLUMNS, check_task_type


class TaskSchemaError(ValueError):
    """A task dataset does not follow the canonical schema."""


def _fail(task: str, column: str, problem: str, split: str | None = None) -> None:
    where = f"task {task!r}" + (f", split {split!r}" if split else "") + f", column {column!r}"
    raise TaskSchemaError(f"{where}: {problem}")


def validate_spec(spec: dict[str, Any], task: str) -> None:
    """Check a task spec ``{"type", "labels", "modality"}``."""
    if not isinstance(spec, dict):
        raise TaskSchemaError(f"task {task!r}: spec must be a dict, got {type(spec).__name__}")
    try:
        check_task_type(spec.get("type", ""))
    except ValueError as error:
        raise TaskSchemaError(f"task {task!r}: {error}") from None
    labels = spec.get("labels")
    if not labels or not all(isinstance(label, str) for label in labels):
        raise TaskSchemaError(f"task {task!r}: spec 'labels' must be a non-empty list of class names")
    if len(set(labels)) != len(labels):
        raise TaskSchemaError(f"task {task!r}: spec 'labels' has duplicate class names")
    if not isinstance(spec.get("modality", ""), str):
        raise TaskSchemaError(f"task {task!r}: spec 'modality' must be a string")


def _check_features(dataset: Dataset, spec: dict[str, Any], task: str, split: str | None) -> None:
    task_type, labels = spec["type"], spec["labels"]
    features = dataset.features
    if "image" not in features:
        _fail(task, "image", f"missing (columns: {sorted(features)})", split)
    if not isinstance(features["image"], Image):
        _fail(task, "image", f"must be datasets.Image(), got {features['image']!r}", split)
    column = LABEL_COLUMNS[task_type]
    if column not in features:
        _fail(task, column, f"missing for a {task_type} task (columns: {sorted(features)})", split)
    feature = features[column]
    if task_type == "classification":
        if not isinstance(feature, ClassLabel):
            _fail(task, column, f"must be ClassLabel, got {feature!r}", split)
        if list(feature.names) != list(labels):
            _fail(task, column, f"class names {feature.names} differ from spec labels {labels}", split)
    elif task_type == "multilabel":
        if not (isinstance(feature, List) and isinstance(feature.feature, Value)):
            _fail(task, column, f"must be List(Value('float32')) multi-hot, got {feature!r}", split)
    elif task_type == "segmentation":
        if not isinstance(feature, Image):
            _fail(task, column, f"must be datasets.Image() (PNG mask), got {feature!r}", split)
    else:
        if not isinstance(feature, dict) or set(feature) < {"bbox", "category"}:
            _fail(
                task,
                column,
                f"must be {{'bbox': List(List(float32, length=4)), 'category': List(ClassLabel)}}, got {feature!r}",
                split,
            )
        category = feature["category"]
        inner = category.feature if isinstance(category, List) else None
        if not isinstance(inner, ClassLabel):
            _fail(task, f"{column}.category", f"must be List(ClassLabel), got {category!r}", split)
        if list(inner.names) != list(labels):
            _fail(task, f"{column}.category", f"class names {inner.names} differ from spec labels {labels}", split)


def _check_rows(dataset: Dataset, spec: dict[str, Any], task: str, split: str | None, max_rows: int) -> None:
    task_type, num_classes = spec["type"], len(spec["labels"])
    column = LABEL_COLUMNS[task_type]
    for index in range(min(max_rows, len(dataset))):
        row = dataset[index]
        image = row["image"]
        if image is None:
            _fail(task, "image", f"row {index} has no image", split)
        value = row[column]
        if task_type == "multilabel":
            if value is None or len(value) != num_classes:
                _fail(
                    task, column, f"row {index}: multi-hot vector of length {num_classes} expected, got {value}", split
                )
            if any(not math.isfinite(v) or v < 0 or v > 1 for v in value):
                _fail(task, column, f"row {index}: values must be in [0, 1], got {value}", split)
        elif task_type == "segmentation":
            if value is None:
                _fail(task, column, f"row {index} has no mask", split)
            if value.size != image.size:
                _fail(task, column, f"row {index}: mask size {value.size} differs from image size {image.size}", split)
            import numpy as np

            classes = np.unique(np.asarray(value))
            bad = [int(c) for c in classes if c >= num_classes and c != 255]
            if bad:
                _fail(
                    task, column, f"row {index}: class indices {bad} outside 0..{num_classes - 1} (255 = ignore)", split
                )
        elif task_type == "detection":
            boxes, categories = value["bbox"], value["category"]
            if len(boxes) != len(categories):
                _fail(task, column, f"row {index}: {len(boxes)} boxes but {len(categories)} categories", split)
            width, height = image.size
            for box in boxes:
                x, y, w, h = box
                if not all(math.isfinite(v) for v in box) or w <= 0 or h <= 0:
                    _fail(
                        task, f"{column}.bbox", f"row {index}: box {box} must be finite COCO xywh with w, h > 0", split
                    )
                if x < -0.5 or y < -0.5 or x + w > width + 0.5 or y + h > height + 0.5:
                    _fail(
                        task,
                        f"{column}.bbox",
                        f"row {index}: box {box} (xywh pixels) outside the {width}x{height} image",
                        split,
                    )


def validate_task_dataset(
    dataset: Dataset | DatasetDict, spec: dict[str, Any], task: str = "task", max_rows: int = 8
) -> None:
    """Raise `TaskSchemaError` (a ValueError) naming the task and column if ``dataset`` breaks the schema.

    Checks the spec, the features, and decodes the first ``max_rows`` rows of each split (0 = features only).
    """
    validate_spec(spec, task)
    if isinstance(dataset, DatasetDict):
        if not dataset:
            raise TaskSchemaError(f"task {task!r}: the DatasetDict has no splits")
        for split, part in dataset.items():
            _check_features(part, spec, task, split)
            _check_rows(part, spec, task, split, max_rows)
    elif isinstance(dataset, Dataset):
        _check_features(dataset, spec, task, None)
        _check_rows(dataset, spec, task, None, max_rows)
    else:
        raise TypeError(f"task {task!r}: expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")
