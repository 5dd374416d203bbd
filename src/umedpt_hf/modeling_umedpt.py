"""UMedPT models: the encoder (`UMedPTModel`), the multi-task model used for pretraining (`UMedPTForMultiTask`),
single-task models for transformers' tooling, and `UMedPTBackbone`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.backbone_utils import BackboneMixin, load_backbone
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import BackboneOutput, ImageClassifierOutput, SemanticSegmenterOutput
from transformers.utils import ModelOutput

from .configuration_umedpt import UMedPTConfig
from .detection_umedpt import (
    UMedPTDetectionDecoder,
    UMedPTFCOSHead,
    distances_to_boxes,
    fcos_loss,
    xyxy_to_normalised_cxcywh,
)
from .heads_umedpt import (
    UMedPTClassificationHead,
    UMedPTSegmentationHead,
    build_task_head,
    check_pixel_values,
    check_task_labels,
    detection_num_levels,
)
from .losses_umedpt import classification_loss, multilabel_loss, segmentation_loss
from .pixel_decoder_umedpt import UMedPTPixelDecoder

# every Auto class a saved UMedPT folder answers to, with the package installed or through remote code
AUTO_MAP = {
    "AutoConfig": "configuration_umedpt.UMedPTConfig",
    "AutoModel": "modeling_umedpt.UMedPTModel",
    "AutoModelForPreTraining": "modeling_umedpt.UMedPTForMultiTask",
    "AutoModelForImageClassification": "modeling_umedpt.UMedPTForImageClassification",
    "AutoModelForSemanticSegmentation": "modeling_umedpt.UMedPTForSemanticSegmentation",
    "AutoModelForObjectDetection": "modeling_umedpt.UMedPTForObjectDetection",
    "AutoBackbone": "modeling_umedpt.UMedPTBackbone",
}


@dataclass
class UMedPTModelOutput(ModelOutput):
    """
    Output of `UMedPTModel`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, channels, height, width)`): the deepest map.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, channels)`): the image vector from the squeezer.
        feature_maps (`tuple(torch.FloatTensor)`): the pyramid, shallowest first, each `(batch_size, C_i, H_i, W_i)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    feature_maps: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class UMedPTObjectDetectionOutput(ModelOutput):
    """
    Output of a UMedPT detection task (FCOS over all FPN locations A).

    Args:
        loss (`torch.FloatTensor`, *optional*): focal / ln C + GIoU + weight * centerness, when labels are given.
        loss_dict (`dict[str, torch.FloatTensor]`, *optional*): the detached parts of the loss.
        logits (`torch.FloatTensor` of shape `(batch_size, A, num_labels)`): class logits (sigmoid).
        pred_boxes (`torch.FloatTensor` of shape `(batch_size, A, 4)`): boxes as normalised (cx, cy, w, h).
        centerness_logits (`torch.FloatTensor` of shape `(batch_size, A)`): centerness logits (sigmoid).
    """

    loss: torch.FloatTensor | None = None
    loss_dict: dict | None = None
    logits: torch.FloatTensor | None = None
    pred_boxes: torch.FloatTensor | None = None
    centerness_logits: torch.FloatTensor | None = None


class UMedPTSqueezer(nn.Module):
    """Global average pool of the deepest map -> LayerNorm -> GELU: the image vector."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.activation = nn.GELU()

    def forward(self, deepest_map: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(deepest_map.mean(dim=(-2, -1))))


class UMedPTPreTrainedModel(PreTrainedModel):
    config_class = UMedPTConfig
    config: UMedPTConfig
    base_model_prefix = "umedpt"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d) and getattr(module, "is_prediction_layer", False):
            init.normal_(module.weight, mean=0.0, std=0.01)  # small logits at start: task losses begin near 1
            init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, UMedPTFCOSHead):
            prior = self.config.fcos_prior_probability
            init.constant_(module.class_logits.bias, -math.log((1 - prior) / prior))
            init.ones_(module.scales)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Save as usual, with an `auto_map` for every UMedPT Auto class and the modules that define them, so that
        `AutoModel.from_pretrained(dir, trust_remote_code=True)` works where `umedpt_hf` is not installed."""
        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            custom_object_save(self, save_directory)
            custom_object_save(self.config, save_directory)

    def _check_inputs(self, pixel_values: torch.Tensor) -> None:
        check_pixel_values(pixel_values, self.config.num_channels)


class UMedPTModel(UMedPTPreTrainedModel):
    """The UMedPT encoder: any transformers backbone plus the squeezer. Its `pooler_output` is the image vector."""

    # loading the encoder from a multi-task checkpoint leaves its decoders and heads behind, as intended
    _keys_to_ignore_on_load_unexpected = [r"heads\.", r"pixel_decoder\.", r"detection_decoder\."]

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.backbone = load_backbone(config)
        self.squeezer = UMedPTSqueezer(self.backbone.channels[-1])
        self.post_init()

    @property
    def channels(self) -> list[int]:
        """Channels of each feature map of the pyramid, shallowest first."""
        return list(self.backbone.channels)

    def forward(self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs) -> UMedPTModelOutput:
        self._check_inputs(pixel_values)
        feature_maps = tuple(self.backbone(pixel_values).feature_maps)
        output = UMedPTModelOutput(
            last_hidden_state=feature_maps[-1], pooler_output=self.squeezer(feature_maps[-1]), feature_maps=feature_maps
        )
        return output if return_dict is not False else output.to_tuple()

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The image vector (B, hidden_size), e.g. for linear probing of frozen features."""
        return self.forward(pixel_values).pooler_output


class UMedPTForMultiTask(UMedPTPreTrainedModel):
    """UMedPT for multi-task (pre)training: the encoder, the shared pixel and detection decoders, one head per task.
    `forward(pixel_values, task=name, labels=None)` runs only the blocks that task needs."""

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        channels = self.umedpt.channels
        self.pixel_decoder = UMedPTPixelDecoder(channels, config.pixel_decoder_channels, config.pixel_embedding_dim)
        self.detection_decoder = UMedPTDetectionDecoder(
            channels, config.fpn_channels, config.fpn_num_extra_levels, config.detection_tower_depth
        )
        self.heads = nn.ModuleDict({name: build_task_head(spec, config) for name, spec in config.tasks.items()})
        self.post_init()

    @property
    def task_names(self) -> list[str]:
        return list(self.config.tasks)

    def add_task(self, name: str, spec: dict) -> None:
        """Add a task with a freshly initialised head (e.g. a new downstream task on a pretrained model)."""
        self.config.add_task(name, spec)
        reference = next(self.parameters())
        head = build_task_head(self.config.tasks[name], self.config).to(device=reference.device, dtype=reference.dtype)
        head.apply(self._init_weights)
        self.heads[name] = head

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.umedpt.get_image_features(pixel_values)

    def _task_spec(self, task: str | None) -> tuple[str, dict]:
        if task is None and len(self.config.tasks) == 1:
            task = next(iter(self.config.tasks))
        if task not in self.config.tasks:
            known = ", ".join(self.config.tasks) or "none"
            raise ValueError(f"Unknown task {task!r}; this model has the tasks: {known}.")
        return task, self.config.tasks[task]

    def forward(
        self,
        pixel_values: torch.Tensor,
        task: str | None = None,
        labels=None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | SemanticSegmenterOutput | UMedPTObjectDetectionOutput:
        task, spec = self._task_spec(task)
        self._check_inputs(pixel_values)
        if labels is not None:
            check_task_labels(task, spec, labels, pixel_values, self.config.segmentation_ignore_index)
        encoded = self.umedpt(pixel_values)
        head = self.heads[task]
        if spec["type"] in ("classification", "multilabel"):
            return classification_output(head(encoded.pooler_output), labels, spec["type"] == "multilabel")
        if spec["type"] == "segmentation":
            logits = head(self.pixel_decoder(encoded.feature_maps, pixel_values.shape[-2:]))
            return segmentation_output(logits, labels, self.config.segmentation_ignore_index)
        return detection_output(
            self.detection_decoder(encoded.feature_maps), head, labels, pixel_values.shape[-2:], self.config
        )


def classification_output(logits: torch.Tensor, labels, multilabel: bool) -> ImageClassifierOutput:
    loss = None
    if labels is not None:
        loss = multilabel_loss(logits, labels) if multilabel else classification_loss(logits, labels)
    return ImageClassifierOutput(loss=loss, logits=logits)


def segmentation_output(logits: torch.Tensor, labels, ignore_index: int) -> SemanticSegmenterOutput:
    loss = segmentation_loss(logits, labels, ignore_index) if labels is not None else None
    return SemanticSegmenterOutput(loss=loss, logits=logits)


def detection_output(
    tower_features: tuple[list[torch.Tensor], list[torch.Tensor]],
    head: UMedPTFCOSHead,
    labels,
    image_size: tuple[int, int],
    config: UMedPTConfig,
) -> UMedPTObjectDetectionOutput:
    image_size = tuple(int(side) for side in image_size)
    predictions = head(*tower_features, image_size=image_size)
    loss = loss_dict = None
    if labels is not None:
        loss, loss_dict = fcos_loss(
            predictions,
            labels,
            image_size,
            head.num_labels,
            config.fcos_center_sampling_radius,
            config.centerness_loss_weight,
        )
    boxes = distances_to_boxes(predictions["points"], predictions["distances"])
    return UMedPTObjectDetectionOutput(
        loss=loss,
        loss_dict=loss_dict,
        logits=predictions["logits"],
        pred_boxes=xyxy_to_normalised_cxcywh(boxes, image_size),
        centerness_logits=predictions["centerness_logits"],
    )


class UMedPTForImageClassification(UMedPTPreTrainedModel):
    """UMedPT encoder + one linear head, for `Trainer` and the image-classification pipeline. Labels come from
    `config.id2label`; `config.problem_type="multi_label_classification"` switches to the sigmoid head.
    Loading a UMedPT checkpoint reuses its encoder and starts a fresh head."""

    _keys_to_ignore_on_load_unexpected = [r"heads\.", r"pixel_decoder\.", r"detection_decoder\."]

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        self.classifier = UMedPTClassificationHead(config.hidden_size, config.num_labels, config.classifier_dropout)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels=None, return_dict: bool | None = None, **kwargs):
        multilabel = self.config.problem_type == "multi_label_classification"
        if labels is not None:
            spec = {"type": "multilabel" if multilabel else "classification", "labels": list(self.config.id2label)}
            check_task_labels("classifier", spec, labels, pixel_values, self.config.segmentation_ignore_index)
        logits = self.classifier(self.umedpt(pixel_values).pooler_output)
        return classification_output(logits, labels, multilabel)


class UMedPTForSemanticSegmentation(UMedPTPreTrainedModel):
    """UMedPT encoder + the shared pixel decoder + one segmentation head (`config.id2label` includes background)."""

    _keys_to_ignore_on_load_unexpected = [r"heads\.", r"detection_decoder\."]

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        self.pixel_decoder = UMedPTPixelDecoder(
            self.umedpt.channels, config.pixel_decoder_channels, config.pixel_embedding_dim
        )
        self.segmentation_head = UMedPTSegmentationHead(config.pixel_embedding_dim, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels=None, return_dict: bool | None = None, **kwargs):
        ignore_index = self.config.segmentation_ignore_index
        if labels is not None:
            spec = {"type": "segmentation", "labels": list(self.config.id2label)}
            check_task_labels("segmentation", spec, labels, pixel_values, ignore_index)
        feature_maps = self.umedpt(pixel_values).feature_maps
        logits = self.segmentation_head(self.pixel_decoder(feature_maps, pixel_values.shape[-2:]))
        return segmentation_output(logits, labels, ignore_index)


class UMedPTForObjectDetection(UMedPTPreTrainedModel):
    """UMedPT encoder + the shared FPN/FCOS decoder + one FCOS head (`config.id2label` holds the object classes)."""

    _keys_to_ignore_on_load_unexpected = [r"heads\.", r"pixel_decoder\."]

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        self.detection_decoder = UMedPTDetectionDecoder(
            self.umedpt.channels, config.fpn_channels, config.fpn_num_extra_levels, config.detection_tower_depth
        )
        self.detection_head = UMedPTFCOSHead(config.fpn_channels, config.num_labels, detection_num_levels(config))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels=None, return_dict: bool | None = None, **kwargs):
        if labels is not None:
            spec = {"type": "detection", "labels": list(self.config.id2label)}
            check_task_labels("detection", spec, labels, pixel_values, self.config.segmentation_ignore_index)
        tower_features = self.detection_decoder(self.umedpt(pixel_values).feature_maps)
        return detection_output(tower_features, self.detection_head, labels, pixel_values.shape[-2:], self.config)


class UMedPTBackbone(BackboneMixin, UMedPTPreTrainedModel):
    """UMedPT's encoder as a transformers backbone, so that other transformers models (e.g. UperNet, DETR-style
    detectors) can be built on it. Returns the pyramid as `feature_maps`."""

    _keys_to_ignore_on_load_unexpected = [r"heads\.", r"pixel_decoder\.", r"detection_decoder\."]

    has_attentions = False

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        self.umedpt = UMedPTModel(config)
        self.post_init()

    def _init_transformers_backbone(self) -> None:
        self.stage_names = list(self.config.backbone_config.stage_names)
        self.num_features = None

    @property
    def out_features(self) -> list[str]:
        return list(self.config.backbone_config.out_features)

    @property
    def out_indices(self) -> list[int]:
        return list(self.config.backbone_config.out_indices)

    @property
    def channels(self) -> list[int]:
        return self.umedpt.channels

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput:
        feature_maps = self.umedpt(pixel_values).feature_maps
        output = BackboneOutput(feature_maps=feature_maps)
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "UMedPTBackbone",
    "UMedPTForImageClassification",
    "UMedPTForMultiTask",
    "UMedPTForObjectDetection",
    "UMedPTForSemanticSegmentation",
    "UMedPTModel",
    "UMedPTModelOutput",
    "UMedPTObjectDetectionOutput",
    "UMedPTPreTrainedModel",
]
