"""Canonical per-task schema on HF `datasets`: one `Features` per task type.

Every task dataset has an ``image`` column (``datasets.Image()``; uint8, uint16 and int16 HU are kept exactly) and one
label column whose name and type depend on the task type:

| type | column | feature |
|---|---|---|
| classification | ``label`` | ``ClassLabel(names=labels)`` |
| multilabel | ``labels`` | ``List(Value("float32"))`` multi-hot of length ``len(labels)`` |
| segmentation | ``mask`` | ``Image()`` (PNG, one class index per pixel, 255 = ignore) |
| detection | ``objects`` | ``{"bbox": List(List(float32, length=4)), "category": List(ClassLabel)}`` |

Detection boxes are COCO (x, y, w, h) in absolute pixels; an image may have zero boxes.

Optional provenance columns (``source`` and ``region`` = ``[z0, z1, y0, y1, x0, x1]`` half-open voxel box in the
source image) let tests check that splits are spatially disjoint; other columns are allowed and ignored.
"""

from __future__ import annotations

from typing import Any

from datasets import ClassLabel, Features, Image, List, Value

TASK_TYPES = ("classification", "multilabel", "segmentation", "detection")
LABEL_COLUMNS = {"classification": "label", "multilabel": "labels", "segmentation": "mask", "detection": "objects"}
SPLITS = ("train", "validation", "test")
IGNORE_INDEX = 255
PROVENANCE_FEATURES = {"source": Value("string"), "region": List(Value("int64"), length=6)}


def check_task_type(task_type: str) -> str:
    """Return ``task_type`` or raise a ValueError listing the known types."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {TASK_TYPES}")
    return task_type


def label_feature(task_type: str, labels: list[str]) -> Any:
    """The feature of the label column for ``task_type`` with class names ``labels``."""
    check_task_type(task_type)
    if not labels:
        raise ValueError(f"a {task_type} task needs at least one class name in `labels`")
    if task_type == "classification":
        return ClassLabel(names=list(labels))
    if task_type == "multilabel":
        return List(Value("float32"))
    if task_type == "segmentation":
        return Image()
    return {"bbox": List(List(Value("float32"), length=4)), "category": List(ClassLabel(names=list(labels)))}


def task_features(task_type: str, labels: list[str], provenance: bool = False) -> Features:
    """`Features` of a canonical task dataset (image + label column, plus provenance columns if asked)."""
    features = {"image": Image(), LABEL_COLUMNS[check_task_type(task_type)]: label_feature(task_type, labels)}
    if provenance:
        features.update(PROVENANCE_FEATURES)
    return Features(features)


def make_spec(task_type: str, labels: list[str], modality: str) -> dict[str, Any]:
    """A task entry as used in ``UMedPTConfig.tasks``: ``{"type", "labels", "modality"}``."""
    check_task_type(task_type)
    return {"type": task_type, "labels": [str(label) for label in labels], "modality": str(modality)}
