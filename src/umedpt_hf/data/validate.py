"""Check that a dataset follows the canonical task schema; errors name the task, split, row and column."""

from __future__ import annotations

from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Image, List, Value

from .schema import LABEL_COLUMNS, check_task_type
from .validate_rows import RowError, check_rows


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


def _check_rows(dataset: Dataset, spec: dict[str, Any], task: str, split: str | None, max_rows: int | None) -> None:
    if max_rows == 0:
        return
    try:
        check_rows(dataset, spec["type"], len(spec["labels"]), limit=max_rows)
    except RowError as error:
        where = f"task {task!r}" + (f", split {split!r}" if split else "") + f", row {error.row}"
        raise TaskSchemaError(f"{where}, column {error.column!r}: {error.problem}") from None


def validate_task_dataset(
    dataset: Dataset | DatasetDict, spec: dict[str, Any], task: str = "task", max_rows: int | None = None
) -> None:
    """Raise `TaskSchemaError` (a ValueError) naming the task, split, row and column if ``dataset`` breaks the schema.

    Checks the spec, the features and every row of each split (vectorised, see `validate_rows`); ``max_rows``
    limits the rows checked per split (0 = features only), for quick looks at huge datasets.
    """
    validate_spec(spec, task)
    if isinstance(dataset, DatasetDict):
        if not dataset:
            raise TaskSchemaError(f"task {task!r}: the DatasetDict has no splits")
        if "train" in dataset and len(dataset["train"]) == 0:
            raise TaskSchemaError(f"task {task!r}, split 'train': is empty (no examples to train on)")
        for split, part in dataset.items():
            _check_features(part, spec, task, split)
            _check_rows(part, spec, task, split, max_rows)
    elif isinstance(dataset, Dataset):
        _check_features(dataset, spec, task, None)
        _check_rows(dataset, spec, task, None, max_rows)
    else:
        raise TypeError(f"task {task!r}: expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")
