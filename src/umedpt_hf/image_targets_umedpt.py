"""Checks of the targets that travel with an image: segmentation maps and boxes. Nothing is cast or clipped quietly.

Imports only numpy and its siblings (copied next to saved weights for remote-code loading).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .image_transforms_umedpt import SUPPORTED_KINDS, to_numpy

BOX_TOLERANCE = 1e-4  # normalised units: corners this far outside [0, 1] count as on the border


def _where(index: int, task: str | None) -> str:
    return f"image {index}" + (f" of task {task!r}" if task else "")


def _listed(values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit].tolist())
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def check_mask(
    mask: np.ndarray,
    image_hw: tuple[int, int],
    *,
    num_labels: int | None = None,
    ignore_value: int = 255,
    index: int = 0,
    task: str | None = None,
) -> np.ndarray:
    """Validate a label map against its image and return it as an (H, W) integer array with its values unchanged.

    16-bit (and wider) label maps keep their values. Negative labels, fractions, NaN and, when `num_labels` is given,
    labels outside 0 .. num_labels - 1 other than `ignore_value` are errors that name the values.
    """
    where = _where(index, task)
    if mask.dtype.kind == "b":
        mask = mask.astype(np.uint8)
    if mask.dtype.kind not in SUPPORTED_KINDS:
        raise TypeError(
            f"Unsupported segmentation map dtype {mask.dtype} ({where}): use an integer (or bool) label map."
        )
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]):
        mask = mask[0] if mask.shape[0] == 1 else mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(
            f"A segmentation map must be (H, W) (or with one channel), got shape {tuple(mask.shape)} ({where})."
        )
    if tuple(mask.shape) != tuple(image_hw):
        raise ValueError(
            f"Segmentation map shape {tuple(mask.shape)} differs from its image's (H, W) {tuple(image_hw)} ({where})."
        )
    if mask.dtype.kind == "f":
        if not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask)):
            raise ValueError(
                f"A float segmentation map must hold whole class indices, no NaN, inf or fractions ({where})."
            )
        mask = mask.astype(np.int64)
    low, high = int(mask.min()), int(mask.max())
    if low < 0:
        bad = np.unique(mask[mask < 0])
        raise ValueError(
            f"Segmentation map of {where} holds negative label(s) {_listed(bad)}; use {ignore_value} for 'ignore'."
        )
    if num_labels is not None and high >= num_labels:
        values = np.unique(mask[mask >= num_labels])
        bad = values[values != ignore_value]
        if bad.size:
            raise ValueError(
                f"Segmentation map of {where} holds label value(s) {_listed(bad)} beyond the {num_labels} classes "
                f"(0 .. {num_labels - 1}, and {ignore_value} = ignore)."
            )
    return mask


def _as_float_array(items: Any, what: str) -> np.ndarray:
    array = to_numpy(items, what=what) if not isinstance(items, (list, tuple)) else items
    try:
        return np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be numbers: {error}") from None


def check_boxes(
    boxes: Any,
    labels: Any,
    index: int,
    *,
    num_labels: int | None = None,
    clip: bool = False,
    task: str | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate one image's normalised (cx, cy, w, h) boxes and their class labels -> (boxes, labels, clipped).

    A box of zero (or negative) width or height, or one reaching outside the image, is an error naming the box;
    with `clip=True` boxes partly outside are clipped to the image instead and counted (`clipped`); a box wholly
    outside stays an error.
    """
    where = _where(index, task)
    boxes = _as_float_array(boxes, "boxes")
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"Boxes of {where} must be an (N, 4) array of (cx, cy, w, h), got {boxes.shape}.")
    if not np.isfinite(boxes).all():
        bad = np.nonzero(~np.isfinite(boxes).all(axis=1))[0]
        raise ValueError(f"Boxes {_listed(bad)} of {where} contain NaN or infinite values.")
    empty = np.nonzero((boxes[:, 2:] <= 0).any(axis=1))[0]
    if empty.size:
        raise ValueError(
            f"Box {empty[0]} of {where} has zero or negative width or height (cx, cy, w, h = "
            f"{tuple(round(v, 6) for v in boxes[empty[0]].tolist())}); {empty.size} such box(es)."
        )
    corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
    outside = np.nonzero(((corners < -BOX_TOLERANCE) | (corners > 1 + BOX_TOLERANCE)).any(axis=1))[0]
    clipped = 0
    if outside.size and not clip:
        first = corners[outside[0]]
        raise ValueError(
            f"Box {outside[0]} of {where} reaches outside the image (corners x0, y0, x1, y1 = "
            f"{tuple(round(v, 4) for v in first.tolist())}; boxes are normalised (cx, cy, w, h) and every corner must "
            f"lie in [0, 1]); {outside.size} such box(es). Pass clip_boxes=True to clip them to the image."
        )
    if outside.size:
        corners = np.clip(corners, 0.0, 1.0)
        gone = np.nonzero((corners[:, 2:] - corners[:, :2] <= 0).any(axis=1))[0]
        if gone.size:
            raise ValueError(f"Box {gone[0]} of {where} lies wholly outside the image: clipping leaves nothing.")
        boxes = np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], axis=1)
        clipped = int(outside.size)
    labels = check_box_labels(labels, boxes.shape[0], where, num_labels)
    return boxes.astype(np.float32), labels, clipped


def check_box_labels(labels: Any, count: int, where: str, num_labels: int | None) -> np.ndarray:
    """Class indices of `count` boxes: whole, non-negative and (given `num_labels`) below the number of classes."""
    if labels is None:
        raise ValueError("box_labels are required with boxes: one class index per box.")
    labels = _as_float_array(labels, "box_labels").reshape(-1)
    if labels.size and (not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels))):
        raise ValueError(f"box_labels of {where} must be whole class indices.")
    if labels.shape[0] != count:
        raise ValueError(f"{where.capitalize()} has {count} boxes but {labels.shape[0]} box labels.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"box_labels of {where} must be non-negative, got {_listed(np.unique(labels[labels < 0]))}.")
    if num_labels is not None and labels.size and labels.max() >= num_labels:
        bad = np.unique(labels[labels >= num_labels]).astype(np.int64)
        raise ValueError(f"box_labels of {where} hold class(es) {_listed(bad)} beyond the {num_labels} classes.")
    return labels.astype(np.int64)
