"""Paired augmentation presets (albumentations): image, mask and boxes transformed together, seeded.

Geometric transforms run on uint8 or float32 arrays (16-bit and HU images are augmented in float32, shifted so their
minimum fills the borders, and cast back);
intensity jitter only where it keeps the meaning of the values: brightness/contrast on 8-bit images, a gamma jitter on
MRI / X-ray / ultrasound intensities, none on CT (HU are physical units).
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np

from .schema import IGNORE_INDEX, check_task_type

ROTATION_INVARIANT = {"microscopy", "histology", "fluorescence", "dermoscopy"}
GAMMA_MODALITIES = {"mri", "xray", "ultrasound", "mammography"}


def build_augmentation(task_type: str, modality: str | None = None, seed: int = 0, strength: float = 1.0) -> A.Compose:
    """The preset for a task type and modality; ``strength`` scales the affine ranges (0 = flips only)."""
    check_task_type(task_type)
    modality = (modality or "").lower()
    transforms: list[Any] = [A.HorizontalFlip(p=0.5)]
    if modality in ROTATION_INVARIANT:
        transforms += [A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    if strength > 0:
        transforms.append(
            A.Affine(
                scale=(1 - 0.1 * strength, 1 + 0.1 * strength),
                translate_percent=(-0.05 * strength, 0.05 * strength),
                rotate=(-10 * strength, 10 * strength),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
                p=0.7,
            )
        )
    bbox_params = None
    if task_type == "detection":
        bbox_params = A.BboxParams(
            format="coco", label_fields=["category"], clip=True, filter_invalid_bboxes=True, min_visibility=0.3
        )
    return A.Compose(transforms, bbox_params=bbox_params, seed=seed)


def intensity_augmentation(modality: str | None, dtype: np.dtype, seed: int = 0) -> A.Compose | None:
    """Intensity jitter that fits the data: None for CT and for data without a sensible rule."""
    modality = (modality or "").lower()
    if modality == "ct":
        return None
    if np.dtype(dtype) == np.uint8:
        return A.Compose([A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5)], seed=seed)
    if modality in GAMMA_MODALITIES:
        return A.Compose([A.RandomGamma(gamma_limit=(85, 115), p=0.5)], seed=seed)
    return None


class PairedAugmentation:
    """Apply a preset to one example: ``(image, mask, boxes, categories) -> same``, keeping the image dtype."""

    def __init__(
        self, task_type: str, modality: str | None = None, seed: int = 0, strength: float = 1.0, intensity: bool = True
    ) -> None:
        self.task_type, self.modality, self.seed, self.strength = task_type, modality, seed, strength
        self.intensity = intensity
        self.geometric = build_augmentation(task_type, modality, seed, strength)
        self._intensity: dict[str, A.Compose | None] = {}

    def set_seed(self, seed: int) -> None:
        """Restart the random streams (used once per DataLoader worker)."""
        self.seed = seed
        self.geometric.set_random_seed(seed)
        for transform in self._intensity.values():
            if transform is not None:
                transform.set_random_seed(seed + 1)

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        categories: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        dtype = image.dtype
        # non-8-bit images are shifted so that their minimum (air in CT, background) fills the borders of the affine
        offset = 0.0 if dtype == np.uint8 else float(image.min())
        work = image if dtype == np.uint8 else image.astype(np.float32) - offset
        key = str(dtype)
        if key not in self._intensity:
            self._intensity[key] = (
                intensity_augmentation(self.modality, dtype, self.seed + 1) if self.intensity else None
            )
        inputs: dict[str, Any] = {"image": work}
        if mask is not None:
            inputs["mask"] = mask
        if self.task_type == "detection":
            inputs["bboxes"] = np.zeros((0, 4), np.float32) if boxes is None else np.asarray(boxes, np.float32)
            inputs["category"] = np.zeros((0,), np.int64) if categories is None else np.asarray(categories, np.int64)
        out = self.geometric(**inputs)
        work = out["image"]
        intensity = self._intensity[key]
        if intensity is not None:
            work = intensity(image=np.clip(work, 0, None) if dtype != np.uint8 else work)["image"]
        if dtype != np.uint8:
            work = work + offset
        if np.issubdtype(dtype, np.integer) and work.dtype != dtype:
            info = np.iinfo(dtype)
            work = np.clip(np.rint(work), info.min, info.max).astype(dtype)
        new_boxes = new_categories = None
        if self.task_type == "detection":
            new_boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
            new_categories = np.asarray(out["category"], np.int64).reshape(-1)
        return work, out.get("mask") if mask is not None else None, new_boxes, new_categories
