"""The shared detection decoder (FPN P3-P7 + FCOS towers) and the per-task FCOS head with its targets and loss."""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks_umedpt import UMedPTConvNormAct, resize_to
from .losses_umedpt import elementwise_generalized_iou, sigmoid_focal_loss


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
            # predictions, box decoding and losses in float32: under bf16 autocast exp() and GIoU lose too much
            logits.append(self.class_logits(cls_x).float().flatten(2).transpose(1, 2))
            raw = self.scales[level] * self.box_regression(box_x).float()
            level_stride = math.sqrt(stride_x * stride_y)
            distances.append((torch.exp(raw.clamp(max=10.0)) * level_stride).flatten(2).transpose(1, 2))
            centerness.append(self.centerness(box_x).float().flatten(1))
            ys = (torch.arange(height, device=cls_x.device, dtype=torch.float32) + 0.5) * stride_y
            xs = (torch.arange(width, device=cls_x.device, dtype=torch.float32) + 0.5) * stride_x
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
            strides.append(torch.full((height * width,), level_stride, device=cls_x.device))
        return {
            "logits": torch.cat(logits, dim=1),
            "distances": torch.cat(distances, dim=1),
            "centerness_logits": torch.cat(centerness, dim=1),
            "points": torch.cat(points),
            "strides": torch.cat(strides),
        }


def distances_to_boxes(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """(x, y) points and (l, t, r, b) distances -> absolute (x0, y0, x1, y1) boxes."""
    x, y = points[..., 0], points[..., 1]
    return torch.stack([x - distances[..., 0], y - distances[..., 1], x + distances[..., 2], y + distances[..., 3]], -1)


def normalised_cxcywh_to_xyxy(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Normalised (cx, cy, w, h) -> absolute (x0, y0, x1, y1) pixels for an image of (height, width)."""
    height, width = image_size
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1)


def xyxy_to_normalised_cxcywh(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Absolute (x0, y0, x1, y1) -> normalised (cx, cy, w, h), clipped to the image."""
    height, width = image_size
    x0, x1 = boxes[..., 0].clamp(0, width), boxes[..., 2].clamp(0, width)
    y0, y1 = boxes[..., 1].clamp(0, height), boxes[..., 3].clamp(0, height)
    return torch.stack([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height], -1)


def assign_fcos_targets(
    points: torch.Tensor, strides: torch.Tensor, gt_boxes: torch.Tensor, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FCOS assignment for one image. Returns the matched gt index per location (-1 = background) and the
    (l, t, r, b) regression targets (A, 4). A location is positive when it lies inside a box, within `radius` strides
    of its centre, and the box's largest distance fits the level's size range (4-8 strides, open-ended at the first and
    last level); ties go to the smallest box. A box that no location matches (smaller than a stride) gets the location
    nearest its centre on the finest level, so every box trains."""
    num_points = points.shape[0]
    matched = torch.full((num_points,), -1, dtype=torch.long, device=points.device)
    if gt_boxes.numel() == 0:
        return matched, torch.zeros(num_points, 4, device=points.device)
    x, y = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack([x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y], dim=-1)
    inside_box = ltrb.min(dim=-1).values > 0
    centre_x, centre_y = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2, (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
    reach = strides[:, None] * radius
    near_centre = ((x - centre_x).abs() < reach) & ((y - centre_y).abs() < reach)
    level_strides = torch.unique(strides)
    lower = torch.where(strides == level_strides.min(), torch.zeros_like(strides), strides * 4)
    upper = torch.where(strides == level_strides.max(), torch.full_like(strides, float("inf")), strides * 8)
    largest = ltrb.max(dim=-1).values
    in_range = (largest >= lower[:, None]) & (largest <= upper[:, None])
    candidates = inside_box & near_centre & in_range
    areas = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])).expand(num_points, -1)
    areas = torch.where(candidates, areas, torch.full_like(areas, float("inf")))
    best_area, best_gt = areas.min(dim=1)
    matched = torch.where(torch.isfinite(best_area), best_gt, matched)
    finest = strides == level_strides.min()
    for box_index in torch.nonzero(~candidates.any(dim=0)).flatten().tolist():
        distance = (x[:, 0] - centre_x[box_index]) ** 2 + (y[:, 0] - centre_y[box_index]) ** 2
        distance = torch.where(finest & (matched < 0), distance, torch.full_like(distance, float("inf")))
        if torch.isfinite(distance.min()):
            matched[distance.argmin()] = box_index
    targets = ltrb[torch.arange(num_points, device=points.device), matched.clamp(min=0)]
    return matched, targets.clamp(min=1e-3)


def fcos_loss(
    predictions: dict[str, torch.Tensor],
    labels: list[dict[str, torch.Tensor]],
    image_size: tuple[int, int],
    num_labels: int,
    radius: float,
    centerness_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Focal classification / ln(C) + GIoU + weight * centerness BCE, averaged over positive locations."""
    logits, distances = predictions["logits"], predictions["distances"]
    points, strides = predictions["points"], predictions["strides"]
    class_targets = torch.zeros_like(logits)
    positive_masks, regression_targets = [], []
    for index, target in enumerate(labels):
        gt_boxes = normalised_cxcywh_to_xyxy(target["boxes"].to(points), image_size)
        matched, ltrb = assign_fcos_targets(points, strides, gt_boxes, radius)
        positive = matched >= 0
        class_targets[index, positive, target["class_labels"].to(logits.device)[matched[positive]]] = 1.0
        positive_masks.append(positive)
        regression_targets.append(ltrb)
    positive = torch.stack(positive_masks)
    num_positive = max(int(positive.sum()), 1)
    focal = sigmoid_focal_loss(logits, class_targets).sum() / num_positive
    chance_scale = math.log(max(num_labels, 2))
    if positive.any():
        target_ltrb = torch.stack(regression_targets)[positive]
        point_xy = points.expand(len(labels), -1, -1)[positive]
        giou = elementwise_generalized_iou(
            distances_to_boxes(point_xy, distances[positive]), distances_to_boxes(point_xy, target_ltrb)
        )
        box_loss = (1.0 - giou).mean()
        left_right, top_bottom = target_ltrb[:, [0, 2]], target_ltrb[:, [1, 3]]
        centerness_target = torch.sqrt(
            (left_right.min(-1).values / left_right.max(-1).values)
            * (top_bottom.min(-1).values / top_bottom.max(-1).values)
        )
        centerness_loss = nn.functional.binary_cross_entropy_with_logits(
            predictions["centerness_logits"][positive], centerness_target
        )
    else:
        box_loss = distances.sum() * 0.0
        centerness_loss = predictions["centerness_logits"].sum() * 0.0
    parts = {"classification": focal / chance_scale, "box": box_loss, "centerness": centerness_loss}
    total = parts["classification"] + parts["box"] + centerness_weight * parts["centerness"]
    return total, {name: value.detach() for name, value in parts.items()}
