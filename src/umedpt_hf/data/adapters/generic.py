"""Generic adapter: any `datasets.Dataset` / `DatasetDict`, a Hub name or a saved dataset folder + a column mapping.

This is the one code path through which every task reaches training, the built ``umedpt-mini`` database included.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Image,
    List,
    Value,
    disable_caching,
    enable_caching,
    is_caching_enabled,
    load_dataset,
    load_from_disk,
)

from ..schema import LABEL_COLUMNS, check_task_type, label_feature, make_spec
from ..task import TaskDataset
from ..validate import TaskSchemaError, validate_task_dataset
from .boxes import clip_boxes_to_images
from .splits import normalise_splits


def _load(data: Any, **load_kwargs: Any) -> DatasetDict:
    if isinstance(data, DatasetDict):
        return data
    if isinstance(data, Dataset):
        return DatasetDict({"train": data})
    if isinstance(data, dict):
        return DatasetDict(data)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if os.path.isdir(path) and (
            os.path.exists(os.path.join(path, "dataset_dict.json")) or os.path.exists(os.path.join(path, "state.json"))
        ):
            loaded = load_from_disk(path)
        else:
            loaded = load_dataset(path, **load_kwargs)
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
    raise TypeError(f"expected a Dataset, DatasetDict, dict of splits, Hub name or folder; got {type(data).__name__}")


def _infer_labels(data: DatasetDict, task_type: str, column: str) -> list[str] | None:
    feature = next(iter(data.values())).features.get(column)
    if task_type == "classification":
        if isinstance(feature, ClassLabel):
            return list(feature.names)
        values = sorted({value for part in data.values() for value in part[column]}, key=lambda v: (str(type(v)), v))
        return [str(value) for value in values]
    if task_type == "detection" and isinstance(feature, dict):
        category = feature.get("category")
        if isinstance(category, List) and isinstance(category.feature, ClassLabel):
            return list(category.feature.names)
    return None


def _to_class_index(data: DatasetDict, column: str, labels: list[str]) -> DatasetDict:
    feature = next(iter(data.values())).features[column]
    if isinstance(feature, ClassLabel):
        if list(feature.names) != labels:
            mapping = {i: labels.index(name) for i, name in enumerate(feature.names) if name in labels}
            missing = [name for name in feature.names if name not in labels]
            if missing:
                raise ValueError(f"column {column!r}: class names {missing} are not in labels {labels}")
            data = data.map(lambda ex: {column: mapping[ex[column]]}, features=None)
    else:
        lookup = {str(name): i for i, name in enumerate(labels)}

        def index(value: Any) -> int:
            integer = isinstance(value, int) and not isinstance(value, bool)
            if integer and str(value) not in lookup and 0 <= value < len(labels):
                return int(value)
            if str(value) not in lookup:
                raise ValueError(f"column {column!r}: value {value!r} is not a class of {labels}")
            return lookup[str(value)]

        data = data.map(lambda ex: {column: index(ex[column])})
    return _cast(data, column, ClassLabel(names=labels))


def _cast(data: DatasetDict, column: str, feature: Any) -> DatasetDict:
    """Cast ``column`` unless every split already has exactly that feature (casting rewrites the Arrow table)."""
    if all(part.features[column] == feature for part in data.values()):
        return data
    return data.cast_column(column, feature)


def _xyxy_to_xywh(objects: dict[str, Any]) -> dict[str, Any]:
    boxes = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in objects["bbox"]]
    return {**objects, "bbox": boxes}


def from_hf_dataset(
    data: Any,
    task_type: str,
    labels: list[str] | None = None,
    modality: str = "unknown",
    name: str = "task",
    column_mapping: dict[str, str] | None = None,
    bbox_format: str = "coco",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    validate_rows: int | None = None,
    clip_boxes: bool = False,
    **load_kwargs: Any,
) -> TaskDataset:
    """Turn ``data`` into a canonical `TaskDataset`.

    Args:
        data: a `Dataset`, `DatasetDict`, dict of splits, a Hub dataset name (`load_dataset`, extra kwargs go there)
            or a folder written by `save_to_disk`.
        task_type: "classification", "multilabel", "segmentation" or "detection".
        labels: class names; inferred from a ClassLabel (or the sorted values) for classification / detection.
        column_mapping: ``{their_column: canonical_column}``, e.g. ``{"img": "image", "fine_label": "label"}``;
            detection sub-fields may be given as ``{"boxes": "objects.bbox", "classes": "objects.category"}``.
        bbox_format: "coco" (x, y, w, h pixels) or "xyxy" (x0, y0, x1, y1 pixels).
        clip_boxes: clip detection boxes that reach past their image (and drop those left with no area), with a
            warning that counts them; by default such boxes are an error.
        validate_rows: rows checked per split (None: every row).

    Intermediate results of `datasets` go to a temporary folder, never next to the user's data.
    """
    check_task_type(task_type)
    data = _load(data, **load_kwargs)
    with no_cache_files():
        return _adapt(data, task_type, labels, modality, name, column_mapping, bbox_format, validation_fraction,
                      test_fraction, seed, validate_rows, clip_boxes)  # fmt: skip


@contextlib.contextmanager
def no_cache_files() -> Iterator[None]:
    """Let `datasets` write map / cast results to a temporary folder instead of the dataset's own folder."""
    enabled = is_caching_enabled()
    disable_caching()
    try:
        yield
    finally:
        if enabled:
            enable_caching()


def _adapt(
    data: DatasetDict,
    task_type: str,
    labels: list[str] | None,
    modality: str,
    name: str,
    column_mapping: dict[str, str] | None,
    bbox_format: str,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    validate_rows: int | None,
    clip_boxes: bool,
) -> TaskDataset:
    column = LABEL_COLUMNS[task_type]
    mapping = dict(column_mapping or {})
    nested = {src: dst.split(".", 1)[1] for src, dst in mapping.items() if dst.startswith("objects.")}
    flat = {src: dst for src, dst in mapping.items() if src not in nested and src != dst}
    if flat:
        data = data.rename_columns(flat)
    if nested:
        sources = list(nested)

        def pack(example: dict[str, Any]) -> dict[str, Any]:
            return {"objects": {nested[src]: example[src] for src in sources}}

        data = data.map(pack, remove_columns=sources)
    data = normalise_splits(data, validation_fraction, test_fraction, seed)
    columns = next(iter(data.values())).column_names
    for required in ("image", column):
        if required not in columns:
            raise TaskSchemaError(
                f"task {name!r}, column {required!r}: missing for a {task_type} task (columns: {columns}); "
                f"pass column_mapping={{'<your column>': {required!r}}}"
            )
    labels = list(labels) if labels is not None else _infer_labels(data, task_type, column)
    if not labels:
        raise TaskSchemaError(f"task {name!r}, column {column!r}: cannot infer class names; pass labels=[...]")
    labels = [str(label) for label in labels]
    if not isinstance(next(iter(data.values())).features["image"], Image):
        data = data.cast_column("image", Image())
    if task_type == "classification":
        data = _to_class_index(data, column, labels)
    elif task_type == "multilabel":
        data = _cast(data, column, List(Value("float32")))
    elif task_type == "segmentation":
        if not isinstance(next(iter(data.values())).features[column], Image):
            data = data.cast_column(column, Image())
    else:
        if bbox_format == "xyxy":
            data = data.map(lambda ex: {column: _xyxy_to_xywh(ex[column])})
        elif bbox_format != "coco":
            raise ValueError(f"bbox_format must be 'coco' or 'xyxy', got {bbox_format!r}")
        data = _cast(data, column, label_feature("detection", labels))
        if clip_boxes:
            data = clip_boxes_to_images(data, name)
    spec = make_spec(task_type, labels, modality)
    validate_task_dataset(data, spec, name, max_rows=validate_rows)
    return TaskDataset(name=name, spec=spec, splits=data)
