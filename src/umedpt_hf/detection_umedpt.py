"""The shared detection decoder (FPN P3-P7 + FCOS towers) and the per-task FCOS head with its targets and loss.
Target assignment and loss run on the device without reading values back to the host."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.image_transforms import center_to_corners_format, corners_to_center_format

from .blocks_umedpt import UMedPTConvNormAct, resize_to
from .losses_umedpt import elementwise_generalized_iou, focal_loss_at_prior, sigmoid_focal_loss


class UMedPTDetectionDecoder(nn.Module):
    """FPN over the (up to) three deepest maps plus `num_extra_levels` stride-2 levels, then two shared towers
    (classification and regression) of `tower_depth` conv-GroupNorm-GELU blocks applied to every level."""

    def __init__(self, in_channels: list[int], channels: int, num_extra_levels: int, tower_depth: int) -> None:
        super().__init__()
        used = in_channels[-3:]
        self.num_inputs = len(used)
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, kernel_size=1) for c in used)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, kernel_size=3, padding=1) for _ in used)
        self.extra = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1) for _ in range(num_extra_levels)
        )
        self.class_tower = nn.Sequential(*(UMedPTConvNormAct(channels, channels) for _ in range(tower_depth)))
        self.box_tower = nn.Sequential(*(UMedPTConvNormAct(channels, channels) for _ in range(tower_depth)))

    def forward(self, feature_maps: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        inputs = feature_maps[-self.num_inputs :]
        laterals = [conv(x) for conv, x in zip(self.lateral, inputs)]
        for i in range(len(laterals) - 2, -1, -1):
            laterals[i] = laterals[i] + resize_to(laterals[i + 1], laterals[i].shape[-2:])
        levels = [conv(x) for conv, x in zip(self.output, laterals)]
        # the stride-2 extra levels run in float32: on tiny maps (1x1 at P6/P7) CPU bf16 gives inf weight gradients
        device_type = levels[-1].device.type
        compute_dtype = torch.float32 if torch.is_autocast_enabled(device_type) else levels[-1].dtype
        with torch.autocast(device_type=device_type, enabled=False):
            hidden = levels[-1].to(compute_dtype)
            for i, conv in enumerate(self.extra):
                hidden = conv(hidden if i == 0 else nn.functional.gelu(hidden))
                levels.append(hidden.to(levels[0].dtype))
        return [self.class_tower(x) for x in levels], [self.box_tower(x) for x in levels]


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 -> float32; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


class UMedPTFCOSHead(nn.Module):
    """One detection task: class logits, (l, t, r, b) distances and centerness on every FPN location."""

    def __init__(self, channels: int, num_labels: int, num_levels: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.class_logits = nn.Conv2d(channels, num_labels, kernel_size=3, padding=1)
        self.box_regression = nn.Conv2d(channels, 4, kernel_size=3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, kernel_size=3, padding=1)
        self.scales = nn.Parameter(torch.ones(num_levels))
        for conv in (self.class_logits, self.box_regression, self.centerness):
            conv.is_prediction_layer = True

    def forward(
        self, class_features: list[torch.Tensor], box_features: list[torch.Tensor], image_size: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Return flattened predictions over all A locations: logits (B, A, C), distances (B, A, 4) in pixels,
        centerness logits (B, A), location points (A, 2) as (x, y) pixels and their strides (A,)."""
        logits, distances, centerness, points, strides = [], [], [], [], []
        for level, (cls_x, box_x) in enumerate(zip(class_features, box_features)):
            height, width = cls_x.shape[-2:]
            stride_y, stride_x = image_size[0] / height, image_size[1] / width
            # predictions, box decoding and losses in at least float32: under bf16 autocast exp() and GIoU lose too much
            logits.append(at_least_float32(self.class_logits(cls_x)).flatten(2).transpose(1, 2))
            raw = self.scales[level] * at_least_float32(self.box_regression(box_x))
            level_stride = math.sqrt(stride_x * stride_y)
            distances.append((torch.exp(raw.clamp(max=10.0)) * level_stride).flatten(2).transpose(1, 2))
            centerness.append(at_least_float32(self.centerness(box_x)).flatten(1))
            grid = {"device": cls_x.device, "dtype": raw.dtype}
            ys = (torch.arange(height, **grid) + 0.5) * stride_y
            xs = (torch.arange(width, **grid) + 0.5) * stride_x
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
            strides.append(torch.full((height * width,), level_stride, **grid))
        return {
            "logits": torch.cat(logits, dim=1),
            "distances": torch.cat(distances, dim=1),
            "centerness_logits": torch.cat(centerness, dim=1),
            "points": torch.cat(points),
            "strides": torch.cat(strides),
        }


def build_detection_decoder(channels: list[int], config) -> UMedPTDetectionDecoder:
    """The shared detection decoder of a UMedPT config over an encoder pyramid with `channels`."""
    return UMedPTDetectionDecoder(
        channels, config.fpn_channels, config.fpn_num_extra_levels, config.detection_tower_depth
    )


def distances_to_boxes(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """(x, y) points and (l, t, r, b) distances -> absolute (x0, y0, x1, y1) boxes."""
    x, y = points[..., 0], points[..., 1]
    return torch.stack([x - distances[..., 0], y - distances[..., 1], x + distances[..., 2], y + distances[..., 3]], -1)


def scale_boxes(boxes: torch.Tensor, x_scale: float, y_scale: float) -> torch.Tensor:
    """Multiply the x coordinates of (x0, y0, x1, y1) boxes by `x_scale` and the y coordinates by `y_scale` (Python
    numbers: no tensor is copied to the device)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0 * x_scale, y0 * y_scale, x1 * x_scale, y1 * y_scale], dim=-1)


def normalised_cxcywh_to_xyxy(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Normalised (cx, cy, w, h) -> absolute (x0, y0, x1, y1) pixels for an image of (height, width)."""
    height, width = image_size
    return scale_boxes(center_to_corners_format(boxes), width, height)


def xyxy_to_normalised_cxcywh(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Absolute (x0, y0, x1, y1) -> normalised (cx, cy, w, h), clipped to the image."""
    height, width = image_size
    return corners_to_center_format(scale_boxes(boxes, 1 / width, 1 / height).clamp(0, 1))


def assign_fcos_targets(
    points: torch.Tensor, strides: torch.Tensor, gt_boxes: torch.Tensor, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FCOS assignment for one image. Returns the matched gt index per location (-1 = background) and the
    (l, t, r, b) regression targets (A, 4). A location is positive when it lies inside a box, within `radius` strides
    of its centre, and the box's largest distance fits the level's size range (4-8 strides, open-ended at the first and
    last level); ties go to the smallest box. A box that no location matches (smaller than a stride) gets the nearest
    finest-level location that no other box claims (if two such boxes want the same location, the smaller gets it)."""
    num_points = points.shape[0]
    if gt_boxes.shape[0] == 0:
        background = torch.full((num_points,), -1, dtype=torch.long, device=points.device)
        return background, points.new_full((num_points, 4), 1e-3)
    x, y = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack([x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y], dim=-1)
    inside_box = ltrb.min(dim=-1).values > 0
    centre_x, centre_y = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2, (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
    reach = strides[:, None] * radius
    near_centre = ((x - centre_x).abs() < reach) & ((y - centre_y).abs() < reach)
    finest, coarsest = strides == strides.min(), strides == strides.max()
    lower = torch.where(finest, torch.zeros_like(strides), strides * 4)
    upper = torch.where(coarsest, torch.full_like(strides, float("inf")), strides * 8)
    largest = ltrb.max(dim=-1).values
    candidates = inside_box & near_centre & (largest >= lower[:, None]) & (largest <= upper[:, None])
    # boxes without a candidate: the nearest finest-level location that no regular candidate claims
    claimed = candidates.any(dim=1, keepdim=True)
    distance = (x - centre_x) ** 2 + (y - centre_y) ** 2
    distance = distance.masked_fill(~finest[:, None] | claimed, float("inf"))
    nearest = distance.min(dim=0)
    wanted = ~candidates.any(dim=0) & torch.isfinite(nearest.values)
    fallback = torch.zeros_like(candidates).scatter_(0, nearest.indices[None], wanted[None])
    candidates = candidates | fallback
    areas = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])).expand(num_points, -1)
    best_area, best_gt = torch.where(candidates, areas, torch.full_like(areas, float("inf"))).min(dim=1)
    matched = torch.where(torch.isfinite(best_area), best_gt, torch.full_like(best_gt, -1))
    targets = ltrb[torch.arange(num_points, device=points.device), matched.clamp(min=0)]
    return matched, targets.clamp(min=1e-3)


def fcos_loss(
    predictions: dict[str, torch.Tensor],
    labels: list[dict[str, torch.Tensor]],
    image_size: tuple[int, int],
    radius: float,
    centerness_weight: float,
    prior_probability: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The FCOS loss as a weighted mean of three terms, each divided by its value at the prior, so that a fresh head
    scores about 1 whatever the number of classes, boxes or locations:

    - focal classification loss / the focal loss with every probability at `prior_probability` (the head's initial
      class bias), for the same positive and negative counts;
    - 1 - GIoU over positive locations / the same for the prior boxes (a fresh head predicts exp(0) = 1 stride on
      each side of its location), floored at 0.1 per location;
    - centerness binary cross-entropy / ln 2 (a fresh centerness logit is 0: probability 1/2).

    Total = (focal + GIoU + w * centerness) / (1 + 1 + w); only the focal term when the batch has no box."""
    logits, distances = predictions["logits"], predictions["distances"]
    points, strides = predictions["points"], predictions["strides"]
    matched, targets, classes = [], [], []
    for target in labels:
        gt_boxes = normalised_cxcywh_to_xyxy(target["boxes"].to(points), image_size)
        image_matched, image_targets = assign_fcos_targets(points, strides, gt_boxes, radius)
        image_classes = target["class_labels"].to(device=logits.device, dtype=torch.long)
        if image_classes.numel() == 0:
            image_classes = torch.zeros(1, dtype=torch.long, device=logits.device)
        matched.append(image_matched)
        targets.append(image_targets)
        classes.append(image_classes[image_matched.clamp(min=0)])
    positive = torch.stack(matched) >= 0
    weights = positive.to(logits.dtype)
    num_positive = weights.sum()
    class_targets = torch.zeros_like(logits).scatter_(-1, torch.stack(classes)[..., None], weights[..., None])
    focal = sigmoid_focal_loss(logits, class_targets).sum()
    focal_term = focal / focal_loss_at_prior(prior_probability, num_positive, logits.numel())

    target_boxes = distances_to_boxes(points, torch.stack(targets))
    giou_loss = 1.0 - elementwise_generalized_iou(distances_to_boxes(points, distances), target_boxes)
    prior_loss = 1.0 - elementwise_generalized_iou(
        distances_to_boxes(points, strides[:, None].expand(-1, 4)), target_boxes
    )
    box_term = (giou_loss * weights).sum() / (prior_loss * weights).sum().clamp(min=0.1 * num_positive.clamp(min=1))

    target_ltrb = torch.stack(targets)
    left_right, top_bottom = target_ltrb[..., [0, 2]], target_ltrb[..., [1, 3]]
    centerness_target = torch.sqrt(
        (left_right.min(-1).values / left_right.max(-1).values)
        * (top_bottom.min(-1).values / top_bottom.max(-1).values)
    )
    centerness = nn.functional.binary_cross_entropy_with_logits(
        predictions["centerness_logits"], centerness_target, reduction="none"
    )
    centerness_term = (centerness * weights).sum() / num_positive.clamp(min=1) / math.log(2.0)

    has_boxes = (num_positive > 0).to(logits.dtype)
    total = (focal_term + has_boxes * (box_term + centerness_weight * centerness_term)) / (
        1.0 + has_boxes * (1.0 + centerness_weight)
    )
    parts = {"classification": focal_term, "box": box_term, "centerness": centerness_term}
    return total, {name: value.detach() for name, value in parts.items()}
