"""`TaskCollator`: raw canonical examples of one task -> model inputs through the `UMedPTImageProcessor`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.image_transforms import corners_to_center_format

from ..task_preprocessing_umedpt import processor_modality, task_preprocessing_from_spec
from .augment import PairedAugmentation
from .decode import decode_cell
from .schema import LABEL_COLUMNS, check_task_type

AUGMENT_KEY = "__augment_key__"  # set by `loaders.KeyedDataset`: a stable key of the example for its augmentation


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


def mask_to_array(mask: Any) -> np.ndarray:
    """A decoded mask as an integer array with its values kept (16-bit masks stay 16-bit; nothing wraps)."""
    array = np.asarray(mask)
    if array.dtype.kind not in "iub":
        raise ValueError(f"a segmentation mask must hold integer class indices, got dtype {array.dtype}")
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.itemsize > 2 and array.size and array.min() >= 0 and array.max() <= np.iinfo(np.uint16).max:
        return array.astype(np.uint16)
    return array


def coco_to_normalised_cxcywh(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """COCO (x, y, w, h) pixel boxes -> (cx, cy, w, h) normalised by the image size (corners clipped to the image)."""
    xywh = np.asarray(boxes, np.float32).reshape(-1, 4)
    corners = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    corners = np.clip(corners, 0, np.array([width, height, width, height], np.float32))
    normalised = corners / np.array([width, height, width, height], np.float32)
    return corners_to_center_format(normalised).astype(np.float32)


def processor_geometry(processor: Any) -> tuple[int, int, bool] | None:
    """(height, width, keep_aspect) that the processor resizes to, or None when it does not resize."""
    size = getattr(processor, "size", None)
    if not getattr(processor, "do_resize", False) or size is None:
        return None
    height, width = (size.get("height"), size.get("width")) if isinstance(size, dict) else (size.height, size.width)
    if not height or not width:
        return None
    return int(height), int(width), bool(getattr(processor, "do_pad", False))


def example_seed(seed: int, *key: int) -> int:
    """A 31-bit seed from the collator's seed and an example's key (a pure function)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *key]).generate_state(1)[0]) & 0x7FFFFFFF


class TaskCollator:
    """Collate a list of canonical examples of one task into ``{"pixel_values", "labels"}`` in the model's formats.

    classification: labels LongTensor (B,); multilabel: FloatTensor (B, C); segmentation: LongTensor (B, H, W), 255 =
    ignore; detection: list of {"class_labels": LongTensor[N], "boxes": FloatTensor[N, 4] normalised (cx, cy, w, h)}.
    With ``augment=True`` the paired preset of the task type and modality is applied to the raw arrays first, after
    one resize to the processor's output size. Augmentation is a pure function of the seed: each example is seeded
    from ``seed`` and its key (`AUGMENT_KEY`, set by `make_task_dataloader`, so any number of workers gives the same
    batches), or, for examples without a key, from ``seed``, the number of batches collated since `set_seed` and its
    place in the batch.
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
        # the task's preprocessing by the one rule the exported processor records (`task_preprocessing_from_spec`);
        # a processor made by `for_task` carries it already, and it must be this task's
        self.preprocessing = task_preprocessing_from_spec(self.spec, window=window)
        self.bound_task = getattr(processor, "task", None)
        if self.bound_task is not None:
            recorded = {k: v for k, v in processor.task_preprocessing[self.bound_task].items() if k != "size"}
            if recorded != self.preprocessing:
                raise ValueError(
                    f"the processor is bound to task {self.bound_task!r} with preprocessing {recorded}, but this "
                    f"task's spec gives {self.preprocessing}"
                )
        self.seed = int(seed)
        self._calls = 0
        self.augmentation = None
        if augment:
            geometry = processor_geometry(processor)
            self.augmentation = PairedAugmentation(self.task_type, self.modality, self.seed, target_size=geometry)

    def set_seed(self, seed: int) -> None:
        """Restart the augmentation from ``seed``: what follows depends on ``seed`` and the examples only."""
        self.seed, self._calls = int(seed), 0

    def _seeds(self, examples: list[dict[str, Any]]) -> list[int]:
        keys = [example.get(AUGMENT_KEY) for example in examples]
        if all(key is not None for key in keys):
            return [example_seed(self.seed, 0, int(key)) for key in keys]
        call, self._calls = self._calls, self._calls + 1
        return [example_seed(self.seed, 1, call, index) for index in range(len(examples))]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if not examples:
            raise ValueError("TaskCollator got an empty batch")
        column = LABEL_COLUMNS[self.task_type]
        seeds = self._seeds(examples) if self.augmentation is not None else [None] * len(examples)
        images, masks, boxes, categories, targets = [], [], [], [], []
        for index, (example, seed) in enumerate(zip(examples, seeds)):
            if "image" not in example or column not in example:
                raise ValueError(f"example {index} lacks 'image' or {column!r} (keys: {sorted(example)})")
            image = image_to_array(decode_cell(example["image"]))
            mask = box = category = None
            if self.task_type == "segmentation":
                mask = mask_to_array(decode_cell(example[column]))
            elif self.task_type == "detection":
                box = np.asarray(example[column]["bbox"], np.float32).reshape(-1, 4)
                category = np.asarray(example[column]["category"], np.int64).reshape(-1)
            if self.augmentation is not None:
                image, mask, box, category = self.augmentation(image, mask, box, category, seed=seed)
            images.append(image)
            if self.task_type == "segmentation":
                masks.append(mask)
            elif self.task_type == "detection":
                height, width = image.shape[:2]
                boxes.append(coco_to_normalised_cxcywh(box, width, height))
                categories.append(category)
            else:
                targets.append(example[column])
        encoded = self._encode(images, masks or None, boxes or None, categories or None)
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

    def _encode(self, images: list, masks: list | None, boxes: list | None, categories: list | None) -> Any:
        """The one call of the image processor: the task's recorded preprocessing and its targets."""
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if self.bound_task is None:
            kwargs.update(self.preprocessing)
        if masks is not None:
            kwargs["segmentation_maps"] = masks
        if boxes is not None:
            kwargs["boxes"], kwargs["box_labels"] = boxes, categories
        return self.processor(images, **kwargs)
