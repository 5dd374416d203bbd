"""Output dataclasses of the UMedPT models (transformers `ModelOutput`s)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class UMedPTModelOutput(ModelOutput):
    """
    Output of `UMedPTModel` (and of `get_image_features`, as transformers' `BaseModelOutputWithPooling`).

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, channels, height, width)`): the deepest map.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`): the image vector from the squeezer
            (`None` for models built without it, such as the segmentation and detection models).
        feature_maps (`tuple(torch.FloatTensor)`): the pyramid, shallowest first, each `(batch_size, C_i, H_i, W_i)`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the backbone's hidden states (embeddings, then each
            stage), returned when `output_hidden_states=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    feature_maps: tuple[torch.FloatTensor, ...] | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class UMedPTObjectDetectionOutput(ModelOutput):
    """
    Output of a UMedPT detection task (FCOS over all FPN locations A).

    Args:
        loss (`torch.FloatTensor`, *optional*): the detection loss when labels are given: the mean of the focal,
            GIoU and (weighted) centerness terms, each divided by its value at the prior (about 1 for a fresh head).
        loss_dict (`dict[str, torch.FloatTensor]`, *optional*): the detached normalised terms.
        logits (`torch.FloatTensor` of shape `(batch_size, A, num_labels)`): class logits (sigmoid).
        pred_boxes (`torch.FloatTensor` of shape `(batch_size, A, 4)`): boxes as normalised (cx, cy, w, h).
        centerness_logits (`torch.FloatTensor` of shape `(batch_size, A)`): centerness logits (sigmoid).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the backbone's hidden states, returned when
            `output_hidden_states=True`.
    """

    loss: torch.FloatTensor | None = None
    loss_dict: dict | None = None
    logits: torch.FloatTensor | None = None
    pred_boxes: torch.FloatTensor | None = None
    centerness_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


__all__ = ["UMedPTModelOutput", "UMedPTObjectDetectionOutput"]
