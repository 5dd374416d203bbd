"""Paired augmentation presets (albumentations): image, mask and boxes transformed together, as a pure function of
the seed given per example.

With a ``target_size`` the example is first resized ONCE from its full size to the size the processor will output
(area averaging for the image in its own dtype, nearest for the mask, boxes scaled), and the geometric transforms
then run at that small size: a 1024 px source costs one resize, not an affine warp of a million pixels.
Geometric transforms run on uint8 directly; 16-bit and HU images are warped as float32 shifted so that their
minimum fills the borders, and cast back. Intensity jitter only where it keeps the meaning of the values:
brightness/contrast on 8-bit images, a gamma jitter on MRI / X-ray / ultrasound intensities, none on CT (HU are
physical units).
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np

from .schema import IGNORE_INDEX, check_task_type

ROTATION_INVARIANT = {"microscopy", "histology", "fluorescence", "dermoscopy"}
GAMMA_MODALITIES = {"mri", "xray", "ultrasound", "mammography"}
CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)  # dtypes that cv2.resize keeps


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
            format="coco",
            label_fields=["category"],
            clip=True,
            filter_invalid_bboxes=True,
            min_visibility=0.3,
            check_each_transform=False,  # filter once after the last transform, not after each (cost per box)
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


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W[, C]) to (height, width) keeping the dtype: area averaging by an integer factor, then linear."""
    if image.shape[:2] == (height, width):
        return image
    dtype = image.dtype
    work = image if dtype in CV2_DTYPES else image.astype(np.float32)
    factor = min(work.shape[0] // height, work.shape[1] // width)
    if factor >= 2:  # integer-factor area reduction (OpenCV's fast path), then a short linear step
        reduced = (work.shape[1] // factor, work.shape[0] // factor)
        work = cv2.resize(work, reduced, interpolation=cv2.INTER_AREA)
    shrinking = height * width < work.shape[0] * work.shape[1]
    out = cv2.resize(work, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if out.ndim < image.ndim:
        out = out[..., None]
    if out.dtype != dtype:
        out = np.clip(np.rint(out), *_limits(dtype)).astype(dtype) if dtype.kind in "iu" else out.astype(dtype)
    return out


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-exact resize of a label map in any integer dtype (pixel centres aligned, values untouched)."""
    if mask.shape[:2] == (height, width):
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(np.int64), mask.shape[0] - 1)
    columns = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(np.int64), mask.shape[1] - 1)
    return mask[rows[:, None], columns[None, :]]


def _limits(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return info.min, info.max


class PairedAugmentation:
    """Apply a preset to one example: ``(image, mask, boxes, categories) -> same``, keeping the image dtype.

    ``target_size`` = (height, width, keep_aspect): resize once to the processor's content size first (see module).
    ``seed`` in a call makes that example's augmentation a function of the seed alone.
    """

    def __init__(
        self,
        task_type: str,
        modality: str | None = None,
        seed: int = 0,
        strength: float = 1.0,
        intensity: bool = True,
        target_size: tuple[int, int, bool] | None = None,
    ) -> None:
        self.task_type, self.modality, self.seed, self.strength = task_type, modality, seed, strength
        self.intensity, self.target_size = intensity, target_size
        self.geometric = build_augmentation(task_type, modality, seed, strength)
        self._intensity: dict[str, A.Compose | None] = {}

    def set_seed(self, seed: int) -> None:
        """Restart the random streams from ``seed``."""
        self.seed = int(seed)
        self.geometric.set_random_seed(self.seed)
        for transform in self._intensity.values():
            if transform is not None:
                transform.set_random_seed(self.seed + 1)

    def resize(
        self, image: np.ndarray, mask: np.ndarray | None, boxes: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Resize the example once to the target content size (boxes in COCO pixels scaled with it)."""
        if self.target_size is None:
            return image, mask, boxes
        from ..image_geometry_umedpt import content_size

        height, width = image.shape[:2]
        new_height, new_width = content_size(height, width, *self.target_size)
        image = resize_image(image, new_height, new_width)
        if mask is not None:
            mask = resize_mask(mask, new_height, new_width)
        if boxes is not None and len(boxes):
            scale = np.array([new_width / width, new_height / height] * 2, np.float32)
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * scale
        return image, mask, boxes

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        categories: np.ndarray | None = None,
        seed: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        if seed is not None:
            self.set_seed(seed)
        image, mask, boxes = self.resize(image, mask, boxes)
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
            work = np.clip(np.rint(work), *_limits(dtype)).astype(dtype)
        new_boxes = new_categories = None
        if self.task_type == "detection":
            new_boxes = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
            new_categories = np.asarray(out["category"], np.int64).reshape(-1)
        return work, out.get("mask") if mask is not None else None, new_boxes, new_categories
