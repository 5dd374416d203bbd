"""Adapter: a folder of images and a folder of masks with matching file stems -> segmentation task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Image

from ..task import TaskDataset
from .generic import from_hf_dataset

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


def _pairs(images_dir: Path, masks_dir: Path) -> tuple[list[str], list[str]]:
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise FileNotFoundError(f"no images ({sorted(IMAGE_SUFFIXES)}) in {images_dir}")
    unmatched = sorted(set(images) ^ set(masks))
    if unmatched:
        raise ValueError(
            f"images in {images_dir} and masks in {masks_dir} do not pair up: unmatched stems {unmatched[:5]}"
        )
    stems = sorted(images)
    return [str(images[s]) for s in stems], [str(masks[s]) for s in stems]


def from_mask_folder(
    root: str | os.PathLike,
    labels: list[str],
    images: str = "images",
    masks: str = "masks",
    name: str | None = None,
    modality: str = "unknown",
    **kwargs: Any,
) -> TaskDataset:
    """Read ``root/[<split>/]images/*`` and ``root/[<split>/]masks/*`` (same stems; mask pixel = class index).

    ``labels`` names the mask values 0..C-1 (255 = ignore).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder {root} does not exist")
    split_dirs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and (p / images).is_dir()}
    if (root / images).is_dir():
        split_dirs = {"train": root}
    if not split_dirs:
        raise FileNotFoundError(f"no '{images}/' and '{masks}/' folders under {root}")
    features = Features({"image": Image(), "mask": Image()})
    splits = {}
    for split, folder in split_dirs.items():
        if not (folder / masks).is_dir():
            raise FileNotFoundError(f"{folder / images} has no sibling mask folder {folder / masks}")
        image_paths, mask_paths = _pairs(folder / images, folder / masks)
        splits[split] = Dataset.from_dict({"image": image_paths, "mask": mask_paths}, features=features)
    name = name or root.name
    return from_hf_dataset(DatasetDict(splits), "segmentation", labels=labels, modality=modality, name=name, **kwargs)
