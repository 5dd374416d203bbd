"""Row checks over a whole split, vectorised with Arrow and numpy: every row, not a sample of rows.

Label columns are checked as flat arrays (class indices in range, multi-hot values in {0, 1}, boxes finite, of
positive size and inside their image); image headers are read without decoding pixels (sizes, readable files);
segmentation masks are decoded one by one (their values are the labels) and checked against the label set.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from PIL import Image as PILImage

from .schema import IGNORE_INDEX, LABEL_COLUMNS

CHUNK_ROWS = 2048
BOX_TOLERANCE = 1e-2  # pixels: float32 rounding of boxes computed on the image grid


class RowError(ValueError):
    """A row breaks the schema: ``row`` (index in the split), ``column`` and the problem."""

    def __init__(self, row: int, column: str, problem: str) -> None:
        super().__init__(problem)
        self.row, self.column, self.problem = row, column, problem


def _chunks(dataset: Dataset, columns: list[str], limit: int | None) -> Iterator[tuple[int, pa.Table]]:
    total = len(dataset) if limit is None else min(limit, len(dataset))
    arrow = dataset.select_columns(columns).with_format("arrow")
    for start in range(0, total, CHUNK_ROWS):
        yield start, arrow[start : min(start + CHUNK_ROWS, total)]


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _open_image(value: dict[str, Any] | None) -> PILImage.Image | None:
    """The lazily opened image of one ``datasets.Image`` cell (header read, pixels not decoded)."""
    if value is None or (value.get("bytes") is None and value.get("path") is None):
        return None
    source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
    return PILImage.open(source)


def image_sizes(column: pa.ChunkedArray | pa.Array, start: int, name: str = "image") -> np.ndarray:
    """(N, 2) array of (width, height) of an Image column chunk; RowError for a missing or unreadable image."""
    sizes = np.zeros((len(column), 2), np.int64)
    for offset, value in enumerate(column.to_pylist()):
        try:
            image = _open_image(value)
        except (OSError, ValueError) as error:
            raise RowError(start + offset, name, f"cannot read the image: {error}") from None
        if image is None:
            raise RowError(start + offset, name, "has no image")
        sizes[offset] = image.size
    return sizes


def _check_class_indices(values: pa.Array, num_classes: int, start: int, column: str) -> None:
    if values.null_count:
        raise RowError(start + _first(np.asarray(values.is_null())), column, "has no label (null)")
    array = np.asarray(values.to_numpy(zero_copy_only=False))
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        row = _first(bad)
        raise RowError(start + row, column, f"class index {array[row]} outside 0..{num_classes - 1}")


def _check_classification(table: pa.Table, sizes: np.ndarray, num_classes: int, start: int) -> None:
    _check_class_indices(table.column("label").combine_chunks(), num_classes, start, "label")


def _check_multilabel(table: pa.Table, sizes: np.ndarray, num_classes: int, start: int) -> None:
    column = table.column("labels").combine_chunks()
    if column.null_count:
        raise RowError(start + _first(np.asarray(column.is_null())), "labels", "has no multi-hot vector (null)")
    lengths = np.asarray(pc.list_value_length(column))
    if (lengths != num_classes).any():
        row = _first(lengths != num_classes)
        raise RowError(start + row, "labels", f"multi-hot vector of length {num_classes} expected, got {lengths[row]}")
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, num_classes)
    bad = ~((values == 0) | (values == 1))
    if bad.any():
        row = _first(bad.any(axis=1))
        raise RowError(start + row, "labels", f"values must be 0 or 1, got {values[row].tolist()}")


def _check_segmentation(table: pa.Table, sizes: np.ndarray, num_classes: int, start: int) -> None:
    for offset, value in enumerate(table.column("mask").to_pylist()):
        row = start + offset
        try:
            mask = _open_image(value)
            if mask is None:
                raise RowError(row, "mask", "has no mask")
            array = np.asarray(mask)
        except (OSError, ValueError) as error:
            raise RowError(row, "mask", f"cannot read the mask: {error}") from None
        if array.ndim != 2 or array.dtype.kind not in "ui":
            raise RowError(
                row,
                "mask",
                f"must be one channel of integer class indices, got {array.dtype} {array.shape} (PIL mode {mask.mode})",
            )
        if tuple(mask.size) != tuple(sizes[offset]):
            raise RowError(row, "mask", f"mask size {mask.size} differs from image size {tuple(sizes[offset])}")
        bad = (array >= num_classes) & (array != IGNORE_INDEX)
        if bad.any():
            values = np.unique(array[bad])
            raise RowError(
                row,
                "mask",
                f"mask values {values[:8].tolist()} outside the {num_classes} classes 0..{num_classes - 1} "
                f"({int(bad.sum())} pixels; {IGNORE_INDEX} = ignore)",
            )


def _check_detection(table: pa.Table, sizes: np.ndarray, num_classes: int, start: int) -> None:
    objects = table.column("objects").combine_chunks()
    if objects.null_count:
        raise RowError(start + _first(np.asarray(objects.is_null())), "objects", "has no objects (null)")
    boxes, categories = objects.field("bbox"), objects.field("category")
    box_counts = np.asarray(pc.list_value_length(boxes).fill_null(0))
    category_counts = np.asarray(pc.list_value_length(categories).fill_null(0))
    if (box_counts != category_counts).any():
        row = _first(box_counts != category_counts)
        raise RowError(start + row, "objects", f"{box_counts[row]} boxes but {category_counts[row]} categories")
    flat_categories = categories.flatten()
    if len(flat_categories):
        parents = np.asarray(categories.value_parent_indices())
        try:
            _check_class_indices(flat_categories, num_classes, 0, "objects.category")
        except RowError as error:
            raise RowError(start + int(parents[error.row]), error.column, error.problem) from None
    inner = boxes.flatten()
    if not len(inner):
        return
    parents = np.asarray(boxes.value_parent_indices())
    lengths = np.asarray(pc.list_value_length(inner).fill_null(0))
    if (lengths != 4).any():
        row = int(parents[_first(lengths != 4)])
        raise RowError(start + row, "objects.bbox", "every box needs 4 numbers (COCO x, y, w, h)")
    xywh = np.asarray(inner.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4)
    sizes = sizes[parents].astype(np.float64)
    problems: list[tuple[np.ndarray, Callable[[int], str]]] = [
        (~np.isfinite(xywh).all(axis=1), lambda i: f"box {xywh[i].tolist()} is not finite"),
        ((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0), lambda i: f"box {xywh[i].tolist()} must have w, h > 0 (COCO xywh)"),
        (
            (xywh[:, 0] < -BOX_TOLERANCE)
            | (xywh[:, 1] < -BOX_TOLERANCE)
            | (xywh[:, 0] + xywh[:, 2] > sizes[:, 0] + BOX_TOLERANCE)
            | (xywh[:, 1] + xywh[:, 3] > sizes[:, 1] + BOX_TOLERANCE),
            lambda i: f"box {xywh[i].tolist()} (xywh pixels) outside the {sizes[i, 0]:.0f}x{sizes[i, 1]:.0f} image",
        ),
    ]
    for bad, describe in problems:
        if bad.any():
            index = _first(bad)
            raise RowError(start + int(parents[index]), "objects.bbox", describe(index))


CHECKS = {
    "classification": _check_classification,
    "multilabel": _check_multilabel,
    "segmentation": _check_segmentation,
    "detection": _check_detection,
}


def check_rows(dataset: Dataset, task_type: str, num_classes: int, limit: int | None = None) -> None:
    """Check every row (or the first ``limit``) of one split; raises `RowError` for the first broken row."""
    columns = ["image", LABEL_COLUMNS[task_type]]
    for start, table in _chunks(dataset, columns, limit):
        sizes = image_sizes(table.column("image"), start)  # every image's header: present and readable
        CHECKS[task_type](table, sizes, num_classes, start)
