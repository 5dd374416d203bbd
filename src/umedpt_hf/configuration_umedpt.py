"""UMedPT model configuration."""

from __future__ import annotations

import re
from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

TASK_NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]+")
TASK_TYPES = ("classification", "multilabel", "segmentation", "detection")
# the fewest class names a task of each type needs (segmentation and classification need >= 2 classes)
MIN_LABELS = {"classification": 2, "multilabel": 1, "segmentation": 2, "detection": 1}

# Swin-V2-T with torchvision's swin_v2_t window geometry: transformers fixes each stage's window and shift from
# `image_size` at construction, so 256 (= patch 4 * 2^3 * window 8) makes them equal torchvision's for square inputs
# of 160-256 px (multiples of 32), 224 included; this is also microsoft/swinv2-tiny-patch4-window8-256's config
SWINV2_TINY_DEFAULTS = {
    "image_size": 256,
    "window_size": 8,
    "pretrained_window_sizes": [0, 0, 0, 0],
    "layer_norm_eps": 1e-5,
    "qkv_bias": True,
    "out_features": ["stage1", "stage2", "stage3", "stage4"],
}


def validate_task_spec(name: str, spec: Any) -> dict[str, Any]:
    """Check one entry of `UMedPTConfig.tasks` and return it normalised (type, labels, modality)."""
    if not isinstance(name, str) or not TASK_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"Task name {name!r} is invalid: use letters, digits, '_' and '-' only.")
    if not isinstance(spec, dict):
        raise ValueError(f"Task {name!r}: the spec must be a dict with 'type' and 'labels', got {type(spec).__name__}.")
    task_type = spec.get("type")
    if task_type not in TASK_TYPES:
        raise ValueError(f"Task {name!r}: unknown type {task_type!r}; expected one of {', '.join(TASK_TYPES)}.")
    labels = spec.get("labels")
    if not isinstance(labels, (list, tuple)) or len(labels) == 0:
        raise ValueError(f"Task {name!r}: 'labels' must be a non-empty list of class names.")
    labels = [str(label) for label in labels]
    if len(labels) < MIN_LABELS[task_type]:
        raise ValueError(
            f"Task {name!r}: a {task_type} task needs at least {MIN_LABELS[task_type]} labels, got {len(labels)}."
        )
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"Task {name!r}: duplicate label names {duplicates}.")
    unknown_keys = set(spec) - {"type", "labels", "modality"}
    if unknown_keys:
        raise ValueError(f"Task {name!r}: unknown keys {sorted(unknown_keys)}; allowed: type, labels, modality.")
    return {"type": task_type, "labels": labels, "modality": str(spec.get("modality", "unspecified"))}


class UMedPTConfig(PreTrainedConfig):
    r"""
    Configuration of a UMedPT model: a transformers backbone (the encoder), a squeezer that pools its deepest map into
    the image vector, a shared U-Net-style pixel decoder, a shared FPN + FCOS detection decoder, and one head per task.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of any transformers backbone (`AutoBackbone`). Defaults to Swin-V2-T (`Swinv2Config(window_size=8)`,
            27.6 M parameters, maps at strides 4/8/16/32 with 96/192/384/768 channels). When only the last stage is
            requested, all stages are used (the decoders need the pyramid).
        tasks (`dict[str, dict]`, *optional*):
            `name -> {"type": "classification" | "multilabel" | "segmentation" | "detection", "labels": [class names],
            "modality": free text}`. Segmentation labels include the background class; detection labels do not.
        num_channels (`int`, *optional*):
            Input channel policy: 3 (grey images replicated to RGB, the default) or 1 (a grayscale stem). When given,
            it overrides `backbone_config.num_channels`; afterwards it always mirrors the backbone.
        pixel_decoder_channels (`list[int]`, *optional*, defaults to `[256, 128, 64, 32]`):
            Channels of the U-Net decoder stages, from the deepest map to the shallowest (one entry per feature map;
            the last entry is reused when the backbone has more maps).
        pixel_embedding_dim (`int`, *optional*, defaults to 16):
            Channels of the full-resolution per-pixel embedding the segmentation heads read.
        fpn_channels (`int`, *optional*, defaults to 128):
            Channels of the FPN levels P3-P7 and of the FCOS towers.
        fpn_num_extra_levels (`int`, *optional*, defaults to 2):
            Levels added above the deepest map by stride-2 convolutions (P6, P7).
        detection_tower_depth (`int`, *optional*, defaults to 4):
            Convolutions in each shared FCOS tower (classification and regression).
        fcos_center_sampling_radius (`float`, *optional*, defaults to 1.5):
            FCOS centre sampling radius in units of the level stride.
        fcos_prior_probability (`float`, *optional*, defaults to 0.01):
            Initial foreground probability of the detection class logits.
        centerness_loss_weight (`float`, *optional*, defaults to 0.2):
            Weight of the centerness term in the detection loss.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout before each classification head.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal init of linear heads.
        segmentation_ignore_index (`int`, *optional*, defaults to 255):
            Label value ignored by the segmentation loss.

    Example:

    ```python
    >>> from umedpt_hf import UMedPTConfig, UMedPTForMultiTask

    >>> config = UMedPTConfig(tasks={"chest": {"type": "classification", "labels": ["normal", "effusion"]}})
    >>> model = UMedPTForMultiTask(config)
    ```"""

    model_type = "umedpt"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(
            config_class=AutoConfig, model_type="swinv2", init_kwargs=SWINV2_TINY_DEFAULTS
        ),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    tasks: dict | None = None
    num_channels: int | None = None
    pixel_decoder_channels: list[int] | None = None
    pixel_embedding_dim: int = 16
    fpn_channels: int = 128
    fpn_num_extra_levels: int = 2
    detection_tower_depth: int = 4
    fcos_center_sampling_radius: float = 1.5
    fcos_prior_probability: float = 0.01
    centerness_loss_weight: float = 0.2
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02
    segmentation_ignore_index: int = 255

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.tasks = {name: validate_task_spec(name, spec) for name, spec in (self.tasks or {}).items()}
        if self.pixel_decoder_channels is None:
            self.pixel_decoder_channels = [256, 128, 64, 32]
        self.pixel_decoder_channels = [int(channels) for channels in self.pixel_decoder_channels]
        self._use_all_backbone_stages()
        if self.num_channels is not None:
            if self.num_channels not in (1, 3):
                raise ValueError(f"num_channels must be 1 (grayscale) or 3 (RGB), got {self.num_channels}.")
            self.backbone_config.num_channels = self.num_channels
        self.num_channels = int(getattr(self.backbone_config, "num_channels", 3))

    def _use_all_backbone_stages(self) -> None:
        """Request every stage of the backbone (the decoders need the pyramid), unless the user chose several."""
        stage_names = getattr(self.backbone_config, "stage_names", None)
        out_features = getattr(self.backbone_config, "out_features", None)
        if not stage_names or (out_features and len(out_features) > 1):
            return
        stages = [name for name in stage_names if name != "stem"][-4:]
        if hasattr(self.backbone_config, "set_output_features_output_indices"):
            self.backbone_config.set_output_features_output_indices(out_features=stages, out_indices=None)
        else:
            self.backbone_config.out_features = stages

    @property
    def hidden_size(self) -> int:
        """Size of the image vector (`pooler_output`): the channels of the backbone's deepest map."""
        backbone = self.backbone_config
        hidden_sizes = getattr(backbone, "hidden_sizes", None)
        if hidden_sizes:
            return int(hidden_sizes[-1])
        return int(backbone.hidden_size)

    def add_task(self, name: str, spec: dict[str, Any]) -> None:
        """Validate and register a new task (the model's `add_task` also builds its head)."""
        if name in self.tasks:
            raise ValueError(f"Task {name!r} already exists; pick another name.")
        self.tasks[name] = validate_task_spec(name, spec)


__all__ = ["TASK_TYPES", "UMedPTConfig", "validate_task_spec"]
