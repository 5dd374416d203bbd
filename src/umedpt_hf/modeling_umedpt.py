"""UMedPT models: the encoder (`UMedPTModel`), the multi-task model used for pretraining (`UMedPTForMultiTask`),
single-task models for transformers' tooling, and `UMedPTBackbone`.

This module is what a saved folder's `auto_map` names (remote code); the classes live in small modules next to it:
`encoder_umedpt` (encoder, squeezer, base class), `multitask_umedpt`, `single_task_umedpt`, `backbone_umedpt`,
`heads_umedpt`, `pixel_decoder_umedpt`, `detection_umedpt`, `losses_umedpt`, `validation_umedpt`, `outputs_umedpt`."""

from __future__ import annotations

from .backbone_umedpt import UMedPTBackbone
from .encoder_umedpt import AUTO_MAP, UMedPTModel, UMedPTPreTrainedModel, UMedPTSqueezer
from .multitask_umedpt import UMedPTForMultiTask
from .outputs_umedpt import UMedPTModelOutput, UMedPTObjectDetectionOutput
from .single_task_umedpt import UMedPTForImageClassification, UMedPTForObjectDetection, UMedPTForSemanticSegmentation

__all__ = [
    "AUTO_MAP",
    "UMedPTBackbone",
    "UMedPTForImageClassification",
    "UMedPTForMultiTask",
    "UMedPTForObjectDetection",
    "UMedPTForSemanticSegmentation",
    "UMedPTModel",
    "UMedPTModelOutput",
    "UMedPTObjectDetectionOutput",
    "UMedPTPreTrainedModel",
    "UMedPTSqueezer",
]
