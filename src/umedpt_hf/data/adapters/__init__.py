"""Adapters that turn users' data into the canonical per-task schema (a `TaskDataset`)."""

from __future__ import annotations

from .coco import from_coco
from .generic import from_hf_dataset
from .imagefolder import from_image_folder
from .mask_folder import from_mask_folder
from .medmnist import from_medmnist_npz

__all__ = ["from_coco", "from_hf_dataset", "from_image_folder", "from_mask_folder", "from_medmnist_npz"]
