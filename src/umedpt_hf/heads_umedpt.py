"""Per-task heads of UMedPT and the outputs (with losses) they return."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import ImageClassifierOutput, SemanticSegmenterOutput

from .detection_umedpt import UMedPTFCOSHead, distances_to_boxes, fcos_loss, xyxy_to_normalised_cxcywh
from .losses_umedpt import classification_loss, multilabel_loss, regression_loss, segmentation_loss
from .outputs_umedpt import UMedPTObjectDetectionOutput


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


def detection_num_levels(config) -> int:
    """FPN levels: up to three backbone maps plus the extra stride-2 levels."""
    return min(3, len(config.backbone_config.out_features)) + config.fpn_num_extra_levels


def build_head(task_type: str, num_labels: int, config) -> nn.Module:
    """The head of one task of `task_type` ("classification", "multilabel", "regression", "segmentation" or
    "detection") with `num_labels` outputs."""
    if task_type in ("classification", "multilabel", "regression"):
        return UMedPTClassificationHead(config.hidden_size, num_labels, config.classifier_dropout)
    if task_type == "segmentation":
        return UMedPTSegmentationHead(config.pixel_embedding_dim, num_labels)
    return UMedPTFCOSHead(config.fpn_channels, num_labels, num_levels=detection_num_levels(config))


def build_task_head(spec: dict, config) -> nn.Module:
    """The head for one `config.tasks` entry."""
    return build_head(spec["type"], len(spec["labels"]), config)


def classification_output(logits: torch.Tensor, labels, task_type: str, hidden_states=None) -> ImageClassifierOutput:
    """Logits and, with labels, the loss of `task_type`: "classification" (CE / ln C), "multilabel" (BCE / ln 2) or
    "regression" (MSE)."""
    loss = None
    if labels is not None:
        loss_function = {
            "classification": classification_loss,
            "multilabel": multilabel_loss,
            "regression": regression_loss,
        }[task_type]
        loss = loss_function(logits, labels)
    return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)


def segmentation_output(logits: torch.Tensor, labels, ignore_index: int, hidden_states=None) -> SemanticSegmenterOutput:
    loss = segmentation_loss(logits, labels, ignore_index) if labels is not None else None
    return SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=hidden_states)


def detection_output(
    tower_features: tuple[list[torch.Tensor], list[torch.Tensor]],
    head: UMedPTFCOSHead,
    labels,
    image_size: tuple[int, int],
    config,
    hidden_states=None,
) -> UMedPTObjectDetectionOutput:
    image_size = tuple(int(side) for side in image_size)
    predictions = head(*tower_features, image_size=image_size)
    loss = loss_dict = None
    if labels is not None:
        loss, loss_dict = fcos_loss(
            predictions,
            labels,
            image_size,
            config.fcos_center_sampling_radius,
            config.centerness_loss_weight,
            config.fcos_prior_probability,
        )
    boxes = distances_to_boxes(predictions["points"], predictions["distances"])
    return UMedPTObjectDetectionOutput(
        loss=loss,
        loss_dict=loss_dict,
        logits=predictions["logits"],
        pred_boxes=xyxy_to_normalised_cxcywh(boxes, image_size),
        centerness_logits=predictions["centerness_logits"],
        hidden_states=hidden_states,
    )


def task_output(
    task_type: str,
    head: nn.Module,
    encoded,
    labels,
    image_size: tuple[int, int],
    config,
    pixel_decoder: nn.Module | None = None,
    detection_decoder: nn.Module | None = None,
):
    """Run the blocks one task needs on the encoder's output (`UMedPTModelOutput`) and return its output: the image
    vector for classification types, the pixel decoder for segmentation, the detection decoder for detection."""
    hidden_states = encoded.hidden_states
    if task_type in ("classification", "multilabel", "regression"):
        return classification_output(head(encoded.pooler_output), labels, task_type, hidden_states)
    if task_type == "segmentation":
        logits = head(pixel_decoder(encoded.feature_maps, image_size))
        return segmentation_output(logits, labels, config.segmentation_ignore_index, hidden_states)
    tower_features = detection_decoder(encoded.feature_maps)
    return detection_output(tower_features, head, labels, image_size, config, hidden_states)
