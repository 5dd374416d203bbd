"""Per-task heads of UMedPT and the checks of their labels."""

from __future__ import annotations

import torch
from torch import nn

from .detection_umedpt import UMedPTFCOSHead


class UMedPTClassificationHead(nn.Module):
    """Dropout + one linear layer on the image vector (multi-label tasks read it through a sigmoid)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, image_vector: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(image_vector))


class UMedPTSegmentationHead(nn.Module):
    """A 3x3 convolution from the per-pixel embedding to class logits."""

    def __init__(self, embedding_dim: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(embedding_dim, num_labels, kernel_size=3, padding=1)
        self.classifier.is_prediction_layer = True

    def forward(self, pixel_embedding: torch.Tensor) -> torch.Tensor:
        return self.classifier(pixel_embedding)


def build_task_head(spec: dict, config) -> nn.Module:
    """The head for one `config.tasks` entry."""
    num_labels = len(spec["labels"])
    if spec["type"] in ("classification", "multilabel"):
        return UMedPTClassificationHead(config.hidden_size, num_labels, config.classifier_dropout)
    if spec["type"] == "segmentation":
        return UMedPTSegmentationHead(config.pixel_embedding_dim, num_labels)
    return UMedPTFCOSHead(config.fpn_channels, num_labels, num_levels=detection_num_levels(config))


def detection_num_levels(config) -> int:
    """FPN levels: up to three backbone maps plus the extra stride-2 levels."""
    return min(3, len(config.backbone_config.out_features)) + config.fpn_num_extra_levels


def check_pixel_values(pixel_values: torch.Tensor, num_channels: int) -> None:
    """Raise a clear error unless `pixel_values` is a float (B, C, H, W) tensor with the model's channel count."""
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}.")
    if pixel_values.ndim != 4:
        raise ValueError(
            f"pixel_values must have shape (batch, channels, height, width), got {tuple(pixel_values.shape)}."
        )
    if pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values has {pixel_values.shape[1]} channels but the model expects {num_channels} "
            "(use UMedPTImageProcessor with the model's num_channels)."
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values must be a floating point tensor, got {pixel_values.dtype}.")


def check_task_labels(task: str, spec: dict, labels, pixel_values: torch.Tensor, ignore_index: int) -> None:
    """Raise a ValueError that says what was expected when `labels` do not fit the task type."""
    batch_size, num_labels, task_type = pixel_values.shape[0], len(spec["labels"]), spec["type"]
    expected = {
        "classification": f"a LongTensor of shape ({batch_size},) with values in [0, {num_labels - 1}]",
        "multilabel": f"a float tensor of shape ({batch_size}, {num_labels}) with values in [0, 1]",
        "segmentation": f"a LongTensor of shape ({batch_size}, H, W) with values in [0, {num_labels - 1}] "
        f"or {ignore_index}",
        "detection": f"a list of {batch_size} dicts with 'class_labels' (LongTensor [N], values in "
        f"[0, {num_labels - 1}]) and 'boxes' (FloatTensor [N, 4], normalised cx, cy, w, h)",
    }[task_type]

    def fail(problem: str) -> None:
        raise ValueError(f"Task {task!r} ({task_type}): {problem}; expected {expected}.")

    if task_type == "detection":
        if not isinstance(labels, (list, tuple)) or len(labels) != batch_size:
            fail(f"got {type(labels).__name__} of length {len(labels) if hasattr(labels, '__len__') else '?'}")
        for target in labels:
            if not isinstance(target, dict) or not {"class_labels", "boxes"} <= set(target):
                fail("a target is not a dict with 'class_labels' and 'boxes'")
            boxes, classes = target["boxes"], target["class_labels"]
            if not isinstance(boxes, torch.Tensor) or not isinstance(classes, torch.Tensor):
                fail("'boxes' and 'class_labels' must be tensors")
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or classes.shape != (boxes.shape[0],):
                fail(f"got boxes {tuple(boxes.shape)} and class_labels {tuple(classes.shape)}")
            if classes.is_floating_point() or (classes.numel() and (classes.min() < 0 or classes.max() >= num_labels)):
                fail("class_labels out of range or not integers")
            if boxes.numel() and (not torch.isfinite(boxes).all() or boxes.min() < 0 or boxes.max() > 1):
                fail("boxes are not finite and normalised to [0, 1]")
        return
    if not isinstance(labels, torch.Tensor):
        fail(f"got {type(labels).__name__}")
    if task_type == "multilabel":
        if labels.shape != (batch_size, num_labels) or not torch.isfinite(labels).all():
            fail(f"got shape {tuple(labels.shape)}")
        return
    if labels.is_floating_point():
        fail(f"got dtype {labels.dtype}")
    valid = labels[labels != ignore_index] if task_type == "segmentation" else labels
    if valid.numel() and (valid.min() < 0 or valid.max() >= num_labels):
        fail(f"got values in [{int(valid.min())}, {int(valid.max())}]")
    if task_type == "classification" and labels.shape != (batch_size,):
        fail(f"got shape {tuple(labels.shape)}")
    if task_type == "segmentation" and (labels.ndim != 3 or labels.shape[0] != batch_size):
        fail(f"got shape {tuple(labels.shape)}")
