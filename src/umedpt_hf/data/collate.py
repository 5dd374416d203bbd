"""`TaskCollator`: raw canonical examples of one task -> model inputs through the `UMedPTImageProcessor`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .augment import PairedAugmentation
from .schema import LABEL_COLUMNS, check_task_type


def image_to_array(image: Any) -> np.ndarray:
    """A decoded ``datasets.Image`` (PIL) or array as numpy, keeping uint16 and int16 HU (PIL mode "I" -> int16)."""
    array = np.asarray(image)
    if array.dtype == np.int32 and array.size and array.min() >= -32768 and array.max() <= 32767:
        array = array.astype(np.int16)
    if array.dtype.kind not in "uif" or array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("=")) if array.dtype.kind in "uif" else array.astype(np.float32)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    return np.ascontiguousarray(array)


def processor_modality(modality: str | None) -> str | None:
    """The processor's modality name, or None (automatic rule) for "mixed", "unknown" and other names it lacks."""
    from ..image_transforms_umedpt import MODALITY_INTENSITY

    return modality if modality in MODALITY_INTENSITY else None


class TaskCollator:
    """Collate a list of canonical examples of one task into ``{"pixel_values", "labels"}`` in the model's formats.

    classification: labels LongTensor (B,); multilabel: FloatTensor (B, C); segmentation: LongTensor (B, H, W), 255 =
    ignore; detection: list of {"class_labels": LongTensor[N], "boxes": FloatTensor[N, 4] normalised (cx, cy, w, h)}.
    With ``augment=True`` the paired preset of the task type and modality is applied to the raw arrays first
    (deterministic under ``seed``; each DataLoader worker reseeds with ``seed + worker id``).
    """

    def __init__(
        self, spec: dict[str, Any], processor: Any, augment: bool = False, seed: int = 0, window: Any = None
    ) -> None:
        self.spec = dict(spec)
        self.task_type = check_task_type(self.spec["type"])
        self.num_classes = len(self.spec["labels"])
        self.processor = processor
        self.window = window if window is not None else self.spec.get("window")
        self.modality = processor_modality(self.spec.get("modality"))
        self.seed = seed
        self.augmentation = PairedAugmentation(self.task_type, self.modality, seed) if augment else None
        self._worker_seeded: int | None = None

    def set_seed(self, seed: int) -> None:
        """Restart the augmentation's random stream from ``seed`` (workers then use ``seed + 1 + worker id``)."""
        self.seed = int(seed)
        info = torch.utils.data.get_worker_info()  # an explicit seed holds in a worker too (no per-worker reseed)
        self._worker_seeded = info.id if info is not None else None
        if self.augmentation is not None:
            self.augmentation.set_seed(self.seed)

    def _reseed_for_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if self.augmentation is not None and info is not None and self._worker_seeded != info.id:
            self.augmentation.set_seed(self.seed + 1 + info.id)
            self._worker_seeded = info.id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if not examples:
            raise ValueError("TaskCollator got an empty batch")
        self._reseed_for_worker()
        column = LABEL_COLUMNS[self.task_type]
        images, masks, boxes, categories, targets = [], [], [], [], []
        for index, example in enumerate(examples):
            if "image" not in example or column not in example:
                raise ValueError(f"example {index} lacks 'image' or {column!r} (keys: {sorted(example)})")
            image = image_to_array(example["image"])
            mask = box = category = None
            if self.task_type == "segmentation":
                mask = np.asarray(example[column]).astype(np.uint8)
            elif self.task_type == "detection":
                objects = example[column]
                box = np.asarray(objects["bbox"], np.float32).reshape(-1, 4)
                category = np.asarray(objects["category"], np.int64).reshape(-1)
            if self.augmentation is not None:
                image, mask, box, category = self.augmentation(image, mask, box, category)
            images.append(image)
            if self.task_type == "segmentation":
                masks.append(mask)
            elif self.task_type == "detection":
                height, width = image.shape[:2]
                boxes.append(coco_to_normalised_cxcywh(box, width, height))
                categories.append(category)
            else:
                targets.append(example[column])
        kwargs: dict[str, Any] = {"modality": self.modality, "return_tensors": "pt"}
        if self.window is not None:
            kwargs["window"] = self.window
        if self.task_type == "segmentation":
            kwargs["segmentation_maps"] = masks
        elif self.task_type == "detection":
            kwargs["boxes"], kwargs["box_labels"] = boxes, categories
        encoded = self.processor(images, **kwargs)
        batch = {"pixel_values": encoded["pixel_values"]}
        if self.task_type == "classification":
            batch["labels"] = torch.as_tensor(targets, dtype=torch.long)
        elif self.task_type == "multilabel":
            labels = torch.as_tensor(np.asarray(targets, dtype=np.float32))
            if labels.ndim != 2 or labels.shape[1] != self.num_classes:
                raise ValueError(f"multilabel targets must be (B, {self.num_classes}), got {tuple(labels.shape)}")
            batch["labels"] = labels
        elif self.task_type == "segmentation":
            batch["labels"] = encoded["labels"].long()
        else:
            batch["labels"] = [
                {"class_labels": target["class_labels"].long(), "boxes": target["boxes"].float()}
                for target in encoded["labels"]
            ]
        return batch


def coco_to_normalised_cxcywh(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """COCO (x, y, w, h) pixel boxes -> (cx, cy, w, h) normalised by the image size, clipped to [0, 1]."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    out = np.stack([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height], axis=1)
    return out.astype(np.float32)
