"""The one input check of every UMedPT model: pixel values and the labels of each task type.

Shapes, dtypes and types are checked on the host for free. Values (NaN/inf pixels, labels out of range, boxes outside
the image) are reduced on the device to one small vector of flags that is read back once: one host synchronisation
per forward, whatever the task type. The error message (built only when a flag is set) names the task, the image and,
for boxes, the box."""

from __future__ import annotations

import torch
from transformers.image_transforms import center_to_corners_format

# problem types of single-task classification (transformers' names) and the UMedPT task types they correspond to
CLASSIFICATION_PROBLEMS = {
    "single_label_classification": "classification",
    "multi_label_classification": "multilabel",
    "regression": "regression",
}
BOX_TOLERANCE = 1e-4  # normalised boxes may overshoot [0, 1] by float rounding


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


def expected_labels(task_type: str, batch_size: int, num_labels: int, ignore_index: int) -> str:
    return {
        "classification": f"an integer tensor of shape ({batch_size},) with values in [0, {num_labels - 1}]",
        "multilabel": f"a tensor of shape ({batch_size}, {num_labels}) with values in [0, 1] (float, int or bool)",
        "regression": f"a float tensor of shape ({batch_size},) or ({batch_size}, {num_labels}) with finite values",
        "segmentation": f"an integer tensor of shape ({batch_size}, H, W) with values in [0, {num_labels - 1}] "
        f"or {ignore_index}",
        "detection": f"a list of {batch_size} dicts with 'class_labels' (integer tensor [N], values in "
        f"[0, {num_labels - 1}]) and 'boxes' (float tensor [N, 4], normalised cx, cy, w, h inside the image, w, h > 0)",
    }[task_type]


class LabelCheck:
    """Checks the labels of one batch; `fail` raises the task's error message."""

    def __init__(self, task: str, task_type: str, num_labels: int, batch_size: int, ignore_index: int) -> None:
        self.task, self.task_type, self.num_labels = task, task_type, num_labels
        self.batch_size, self.ignore_index = batch_size, ignore_index
        self.expected = expected_labels(task_type, batch_size, num_labels, ignore_index)

    def fail(self, problem: str) -> None:
        raise ValueError(f"Task {self.task!r} ({self.task_type}): {problem}; expected {self.expected}.")

    def class_indices(self, labels, name: str = "labels") -> torch.Tensor:
        if not isinstance(labels, torch.Tensor):
            self.fail(f"{name} is a {type(labels).__name__}, not a tensor")
        if labels.dtype == torch.bool:
            self.fail(f"{name} has dtype torch.bool, which holds no class indices (convert with .long())")
        if labels.is_floating_point() or labels.is_complex():
            self.fail(f"{name} has dtype {labels.dtype}")
        return labels.long()

    def out_of_range(self, labels: torch.Tensor) -> torch.Tensor:
        outside = (labels < 0) | (labels >= self.num_labels)
        if self.task_type == "segmentation":
            outside &= labels != self.ignore_index
        return outside

    def tensor_labels(self, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels of a tensor task type, normalised, and the per-element flag of bad values."""
        batch_size, num_labels = self.batch_size, self.num_labels
        if self.task_type in ("multilabel", "regression"):
            if not isinstance(labels, torch.Tensor):
                self.fail(f"labels is a {type(labels).__name__}, not a tensor")
            allowed = {(batch_size, num_labels)} | ({(batch_size,)} if self.task_type == "regression" else set())
            if tuple(labels.shape) not in allowed:
                self.fail(f"got shape {tuple(labels.shape)}")
            if self.task_type == "regression":
                if labels.dtype == torch.bool:
                    self.fail("labels has dtype torch.bool")
                return labels.float() if not labels.is_floating_point() else labels, ~torch.isfinite(labels)
            values = labels.float() if not labels.is_floating_point() else labels
            return values, ~((values >= 0) & (values <= 1))  # NaN fails both comparisons
        labels = self.class_indices(labels)
        wanted = (batch_size,) if self.task_type == "classification" else None
        if (wanted and tuple(labels.shape) != wanted) or (
            not wanted and (labels.ndim != 3 or len(labels) != batch_size)
        ):
            self.fail(f"got shape {tuple(labels.shape)}")
        return labels, self.out_of_range(labels)

    def detection_labels(self, labels) -> tuple[list[dict], dict[str, torch.Tensor]]:
        """Detection targets, normalised, and flags per box of each problem (boxes of all images concatenated)."""
        if not isinstance(labels, (list, tuple)) or len(labels) != self.batch_size:
            size = len(labels) if hasattr(labels, "__len__") else "?"
            self.fail(f"got {type(labels).__name__} of length {size}")
        targets = []
        for index, target in enumerate(labels):
            if not isinstance(target, dict) or not {"class_labels", "boxes"} <= set(target):
                self.fail(f"target {index} is not a dict with 'class_labels' and 'boxes'")
            classes = self.class_indices(target["class_labels"], f"class_labels of image {index}")
            boxes = target["boxes"]
            if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point():
                self.fail(f"boxes of image {index} must be a float tensor")
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or classes.shape != (boxes.shape[0],):
                self.fail(f"image {index} has boxes {tuple(boxes.shape)} and class_labels {tuple(classes.shape)}")
            targets.append({**target, "class_labels": classes, "boxes": boxes})
        boxes = torch.cat([target["boxes"] for target in targets]) if targets else torch.zeros(0, 4)
        classes = torch.cat([target["class_labels"] for target in targets]) if targets else torch.zeros(0)
        corners = center_to_corners_format(boxes)
        flags = {
            "a class label out of range": self.out_of_range(classes),
            "a box with NaN or infinite values": ~torch.isfinite(boxes).all(dim=1),
            "a box that is not normalised to the image ([0, 1])": ~(
                (corners >= -BOX_TOLERANCE) & (corners <= 1 + BOX_TOLERANCE)
            ).all(dim=1),
            "a box whose width or height is not positive": ~(boxes[:, 2:] > 0).all(dim=1),
        }
        return targets, flags

    def describe_box(self, targets: list[dict], flags: torch.Tensor) -> str:
        position = int(torch.nonzero(flags)[0])
        for index, target in enumerate(targets):
            if position < len(target["boxes"]):
                box = [round(float(v), 4) for v in target["boxes"][position]]
                label = int(target["class_labels"][position])
                return f"image {index}, box {position}: class {label}, (cx, cy, w, h) = {box}"
            position -= len(target["boxes"])
        return "?"


def read_flags(flags: dict[str, torch.Tensor]) -> dict[str, bool]:
    """Whether each flag tensor has a True entry, read with one transfer per device (none for CPU tensors)."""
    found = {}
    for device in {flag.device for flag in flags.values()}:
        names = [name for name, flag in flags.items() if flag.device == device]
        found.update(zip(names, torch.stack([flags[name].any() for name in names]).tolist()))
    return found


def validate_inputs(
    task: str | None,
    task_type: str,
    num_labels: int,
    pixel_values: torch.Tensor,
    labels,
    num_channels: int,
    ignore_index: int = 255,
    check_values: bool = True,
):
    """Check `pixel_values` and (if given) `labels` of one task; return the labels ready for the loss (integer class
    indices as int64, multi-label targets as float). Raises TypeError/ValueError naming the task and what was expected.
    `task_type` is a UMedPT task type or "regression"; `task` None checks pixel values alone (the encoder).
    `check_values=False` keeps the free checks (types, shapes, dtypes) and skips the values and their host read."""
    check_pixel_values(pixel_values, num_channels)
    flags = {}
    if check_values:
        flags["pixel_values contain NaN or infinite values"] = ~torch.isfinite(pixel_values).flatten(1).all(dim=1)
    targets = None
    if labels is not None:
        check = LabelCheck(task, task_type, num_labels, pixel_values.shape[0], ignore_index)
        if task_type == "detection":
            targets, box_flags = check.detection_labels(labels)
            flags.update(box_flags)
            labels = targets
        else:
            labels, bad_values = check.tensor_labels(labels)
            flags["labels out of range"] = bad_values.reshape(-1)
    if not check_values:
        return labels
    found = read_flags(flags)
    for problem, flag in flags.items():
        if not found[problem]:
            continue
        if problem.startswith("pixel_values"):
            prefix = f"Task {task!r}: " if task else ""
            raise ValueError(f"{prefix}{problem} (image {int(torch.nonzero(flag)[0])}).")
        if targets is not None:
            check.fail(f"{problem} ({check.describe_box(targets, flag)})")
        position = int(torch.nonzero(flag)[0])
        row = position // max(1, labels.numel() // max(1, len(labels)))
        check.fail(f"image {row} has the label value {labels.reshape(-1)[position].item()}")
    return labels
