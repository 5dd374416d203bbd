"""Detection boxes that reach past the image: clipped only where the user asks (``clip_boxes=True``), with a count."""

from __future__ import annotations

import warnings

import numpy as np
from datasets import DatasetDict, Image

from ..validate_rows import CHUNK_ROWS, image_sizes


def _sizes(part) -> np.ndarray:
    raw = part.select_columns(["image"]).cast_column("image", Image(decode=False)).with_format("arrow")
    chunks = [
        image_sizes(raw[start : start + CHUNK_ROWS].column("image"), start) for start in range(0, len(part), CHUNK_ROWS)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.int64)


def _clipper(sizes: np.ndarray, counts: dict[str, int]):
    def clip(objects: dict, index: int) -> dict:
        boxes = np.asarray(objects["bbox"], np.float64).reshape(-1, 4)
        width, height = sizes[index]
        corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        limited = np.clip(corners, 0, [width, height, width, height])
        changed = ~np.isclose(limited, corners).all(axis=1)
        keep = (limited[:, 2] > limited[:, 0]) & (limited[:, 3] > limited[:, 1])
        counts["clipped"] += int((changed & keep).sum())
        counts["dropped"] += int((~keep).sum())
        xywh = np.concatenate([limited[:, :2], limited[:, 2:] - limited[:, :2]], axis=1)[keep]
        categories = [category for category, kept in zip(objects["category"], keep) if kept]
        return {"objects": {"bbox": xywh.astype(np.float32).tolist(), "category": categories}}

    return clip


def clip_boxes_to_images(data: DatasetDict, task: str) -> DatasetDict:
    """Clip COCO (x, y, w, h) boxes to their image; boxes left with no area are dropped. Warns with the counts."""
    counts = {"clipped": 0, "dropped": 0}
    out = {}
    for split, part in data.items():
        clip = _clipper(_sizes(part), counts)
        out[split] = part.map(clip, input_columns=["objects"], with_indices=True, desc=f"clipping boxes ({split})")
    if counts["clipped"] or counts["dropped"]:
        warnings.warn(
            f"task {task!r}: clip_boxes clipped {counts['clipped']} boxes to their image and dropped "
            f"{counts['dropped']} with no area left inside it",
            stacklevel=3,
        )
    return DatasetDict(out)
