"""Post-processing of UMedPT outputs: pure-torch NMS, FCOS detection decoding, label maps, class names.

Imports only torch, transformers and its siblings (copied next to saved weights for remote-code loading).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers.image_transforms import center_to_corners_format
from transformers.loss.loss_for_object_detection import box_iou

from .image_geometry_umedpt import content_size

try:
    from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
except ImportError:  # transformers releases before it: the same fields on a BatchFeature
    from transformers.image_processing_base import BatchFeature as SemanticSegmentationPostProcessorOutput


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression on (N, 4) xyxy boxes; returns kept indices by decreasing score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    boxes = boxes[order].float()
    iou = box_iou(boxes, boxes)[0].nan_to_num(0.0)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-wise NMS: boxes of different classes never suppress each other (coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offsets = classes.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets, scores, iou_threshold)


def decode_detections(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    centerness_logits: torch.Tensor | None,
    threshold: float,
    target_sizes: Sequence[Sequence[int]] | torch.Tensor | None,
    content_fractions: Sequence[tuple[float, float]] | None = None,
    iou_threshold: float = 0.6,
    pre_nms_top_k: int = 1000,
    max_detections: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """FCOS outputs -> per-image {"scores", "labels", "boxes"} with absolute (x1, y1, x2, y2) boxes.

    scores = sqrt(sigmoid(class logit) * sigmoid(centerness)); boxes are normalised (cx, cy, w, h) on the padded
    canvas, and `content_fractions` (h, w) is the share of the canvas the image occupies (1, 1 without padding).
    """
    if logits.ndim != 3 or pred_boxes.shape[:2] != logits.shape[:2] or pred_boxes.shape[-1] != 4:
        raise ValueError(
            "Expected logits (B, A, C) and pred_boxes (B, A, 4), "
            f"got {tuple(logits.shape)} and {tuple(pred_boxes.shape)}."
        )
    batch = logits.shape[0]
    if target_sizes is not None and len(target_sizes) != batch:
        raise ValueError(f"Got {len(target_sizes)} target sizes for a batch of {batch}.")
    logits, pred_boxes = logits.detach(), pred_boxes.detach()
    probs = logits.float().sigmoid()
    if centerness_logits is not None:
        probs = (probs * centerness_logits.detach().float().sigmoid()[..., None]).sqrt()
    num_classes = probs.shape[-1]
    results = []
    for index in range(batch):
        scores = probs[index].flatten()
        candidates = (scores > threshold).nonzero().squeeze(1)
        scores = scores[candidates]
        if scores.numel() > pre_nms_top_k:
            scores, top = scores.topk(pre_nms_top_k)
            candidates = candidates[top]
        anchors, labels = candidates // num_classes, candidates % num_classes
        boxes = pred_boxes[index, anchors].float()
        if content_fractions is not None:
            frac_h, frac_w = content_fractions[index]
            boxes = boxes / torch.tensor([frac_w, frac_h, frac_w, frac_h], dtype=boxes.dtype, device=boxes.device)
        boxes = center_to_corners_format(boxes).clamp(0.0, 1.0)
        if target_sizes is not None:
            height, width = (float(v) for v in target_sizes[index])
            boxes = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
        keep = batched_nms(boxes, scores, labels, iou_threshold)[:max_detections]
        results.append({"scores": scores[keep], "labels": labels[keep], "boxes": boxes[keep]})
    return results


def semantic_label_maps(
    logits: torch.Tensor,
    target_sizes: Sequence[Sequence[int]] | torch.Tensor | None,
    content_fractions: Sequence[tuple[float, float]] | None = None,
    return_scores: bool = False,
) -> list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]:
    """(B, C, h, w) logits -> per-image (H, W) LongTensor label maps (padding cropped, then upsampled, then argmax).

    With `return_scores`, each item is a `SemanticSegmentationPostProcessorOutput` with `segmentation` (H, W) and
    `segmentation_scores` (C, H, W): the logits at the target size, as transformers' segmentation processors return.
    """
    if logits.ndim != 4:
        raise ValueError(f"Expected segmentation logits (B, C, H, W), got shape {tuple(logits.shape)}.")
    if target_sizes is not None and len(target_sizes) != len(logits):
        raise ValueError(f"Got {len(target_sizes)} target sizes for a batch of {len(logits)}.")
    logits = logits.detach()
    results = []
    for index in range(len(logits)):
        item = logits[index : index + 1].float()
        if content_fractions is not None:
            frac_h, frac_w = content_fractions[index]
            h, w = item.shape[-2:]
            item = item[..., : max(1, round(h * frac_h)), : max(1, round(w * frac_w))]
        if target_sizes is not None:
            size = tuple(int(v) for v in target_sizes[index])
            item = F.interpolate(item, size=size, mode="bilinear", align_corners=False)
        label_map = item[0].argmax(dim=0)
        if return_scores:
            data = {"segmentation": label_map, "segmentation_scores": item[0]}
            results.append(SemanticSegmentationPostProcessorOutput(data=data))
        else:
            results.append(label_map)
    return results


def classification_scores(
    logits: torch.Tensor,
    label_names: Sequence[str] | dict[int, str] | None = None,
    multilabel: bool = False,
    threshold: float = 0.5,
    top_k: int | None = None,
) -> list[list[dict[str, Any]]]:
    """(B, C) logits -> per image a list of {"label", "score"} sorted by score (multilabel: sigmoid >= threshold)."""
    if logits.ndim != 2:
        raise ValueError(f"Expected classification logits (B, C), got shape {tuple(logits.shape)}.")
    num_classes = logits.shape[-1]
    if label_names is None:
        names = [str(i) for i in range(num_classes)]
    elif isinstance(label_names, dict):
        names = [str(label_names.get(i, label_names.get(str(i), i))) for i in range(num_classes)]
    else:
        names = [str(n) for n in label_names]
    if len(names) != num_classes:
        raise ValueError(f"Got {len(names)} class names for {num_classes} logits.")
    logits = logits.detach().float()
    probs = logits.sigmoid() if multilabel else logits.softmax(dim=-1)
    results = []
    for row in probs:
        order = row.argsort(descending=True).tolist()
        entries = [{"label": names[i], "label_id": i, "score": float(row[i])} for i in order]
        if multilabel:
            entries = [e for e in entries if e["score"] >= threshold]
        results.append(entries[:top_k] if top_k is not None else entries)
    return results


class UMedPTPostProcessingMixin:
    """The post-processing methods of `UMedPTImageProcessor`: model outputs -> label maps, boxes, ranked classes.

    Uses the processor's geometry (`do_pad`, `size`, also those of a recorded `task`) to undo padding.
    """

    def _content_fractions(self, target_sizes: Any, task: str | None = None) -> list[tuple[float, float]] | None:
        settings = self._settings(task, {})[0]
        if not settings["do_pad"] or target_sizes is None:
            return None
        canvas = (settings["size"].height, settings["size"].width)
        fractions = []
        for height, width in (tuple(int(v) for v in size) for size in target_sizes):
            content = content_size(height, width, *canvas, keep_aspect=True)
            fractions.append((content[0] / canvas[0], content[1] / canvas[1]))
        return fractions

    def post_process_semantic_segmentation(
        self, outputs: Any, target_sizes: Any = None, return_segmentation_scores: bool = False, task: str | None = None
    ) -> list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]:
        """Segmentation logits -> per-image (H, W) LongTensor label maps at `target_sizes` (height, width).

        With `return_segmentation_scores`, each item is a `SemanticSegmentationPostProcessorOutput` holding
        `segmentation` and `segmentation_scores` (the logits at that size, (C, H, W)). With `do_pad` (of the processor
        or of `task`), the padded border is cropped first, assuming `target_sizes` are the original image sizes.
        """
        fractions = self._content_fractions(target_sizes, task)
        return semantic_label_maps(_get(outputs, "logits"), target_sizes, fractions, return_segmentation_scores)

    def post_process_object_detection(
        self,
        outputs: Any,
        threshold: float = 0.5,
        target_sizes: Any = None,
        iou_threshold: float = 0.6,
        max_detections: int = 100,
        task: str | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """FCOS outputs -> per image {"scores", "labels", "boxes"}; boxes absolute (x1, y1, x2, y2) in `target_sizes`.

        scores = sqrt(sigmoid(logits) * sigmoid(centerness_logits)); kept above `threshold`, top-k, class-wise NMS at
        `iou_threshold`. Without `target_sizes` the boxes stay normalised to [0, 1].
        """
        return decode_detections(
            _get(outputs, "logits"),
            _get(outputs, "pred_boxes"),
            _get(outputs, "centerness_logits", required=False),
            threshold=threshold,
            target_sizes=target_sizes,
            content_fractions=self._content_fractions(target_sizes, task),
            iou_threshold=iou_threshold,
            max_detections=max_detections,
        )

    def post_process_image_classification(
        self,
        outputs: Any,
        label_names: Sequence[str] | dict[int, str] | None = None,
        multilabel: bool = False,
        threshold: float = 0.5,
        top_k: int | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Logits -> per image [{"label", "label_id", "score"}, ...] by decreasing score (softmax, or sigmoid and
        `threshold` for multi-label). `label_names`: e.g. `config.tasks[task]["labels"]` or `config.id2label`."""
        logits = outputs if isinstance(outputs, torch.Tensor) else _get(outputs, "logits")
        return classification_scores(logits, label_names, multilabel=multilabel, threshold=threshold, top_k=top_k)


def _get(outputs: Any, name: str, required: bool = True) -> Any:
    value = outputs.get(name) if isinstance(outputs, dict) else getattr(outputs, name, None)
    if value is None and required:
        raise ValueError(f"The model outputs have no `{name}`.")
    return value
