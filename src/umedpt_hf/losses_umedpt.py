"""Task losses of UMedPT, each normalised to about 1 at chance level so that no task type dominates the shared
weights. None of them reads a value back to the host (no synchronisation with an accelerator)."""

from __future__ import annotations

import math

import torch
from torch import nn


def chance_scale(num_labels: int) -> float:
    """ln C, the cross-entropy of a uniform guess over C classes (ln 2 for C < 2, where cross-entropy is 0 anyway)."""
    return math.log(max(num_labels, 2))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy / ln C."""
    return nn.functional.cross_entropy(logits, labels) / chance_scale(logits.shape[-1])


def multilabel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy (mean over labels) / ln 2."""
    return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)) / math.log(2.0)


def regression_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error, as transformers computes it for `problem_type="regression"` (not normalised: it has no
    chance level)."""
    if logits.shape[-1] == 1:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.reshape(logits.shape[:-1]).to(logits.dtype))
    return nn.functional.mse_loss(logits, labels.to(logits.dtype))


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Per-pixel cross-entropy / ln C, ignoring `ignore_index` (0 when every pixel is ignored); logits are resized to
    the label size first."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    total = nn.functional.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    counted = (labels != ignore_index).sum().clamp(min=1)
    return total / counted / chance_scale(logits.shape[1])


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise focal loss (Lin et al. 2017) on sigmoid logits; the caller reduces."""
    probabilities = logits.sigmoid()
    cross_entropy = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probabilities * targets + (1 - probabilities) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * cross_entropy * (1 - p_t) ** gamma


def focal_loss_at_prior(
    prior: float, num_positive: torch.Tensor, num_elements: int, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """The summed `sigmoid_focal_loss` when every probability equals `prior`: `num_positive` target-1 elements and the
    rest target-0 (what a fresh FCOS head, whose class bias is set to the prior, predicts)."""
    positive_term = alpha * -math.log(prior) * (1 - prior) ** gamma
    negative_term = (1 - alpha) * -math.log(1 - prior) * prior**gamma
    return num_positive * positive_term + (num_elements - num_positive) * negative_term


def elementwise_generalized_iou(boxes: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matched pairs of (x0, y0, x1, y1) boxes, shape (..., 4) each -> (...)."""
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    other_area = (other[..., 2] - other[..., 0]).clamp(min=0) * (other[..., 3] - other[..., 1]).clamp(min=0)
    top_left = torch.maximum(boxes[..., :2], other[..., :2])
    bottom_right = torch.minimum(boxes[..., 2:], other[..., 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = area + other_area - intersection
    iou = intersection / union.clamp(min=1e-6)
    hull = (torch.maximum(boxes[..., 2:], other[..., 2:]) - torch.minimum(boxes[..., :2], other[..., :2])).clamp(min=0)
    hull_area = hull.prod(dim=-1).clamp(min=1e-6)
    return iou - (hull_area - union) / hull_area
