"""The UMedPT encoder (`UMedPTModel`: any transformers backbone + the squeezer) and the base class of every UMedPT
model (weight init, saving with remote code)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.backbone_utils import load_backbone
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.utils.generic import can_return_tuple

from .blocks_umedpt import replace_batch_norm
from .configuration_umedpt import UMedPTConfig
from .detection_umedpt import UMedPTFCOSHead
from .outputs_umedpt import UMedPTModelOutput
from .validation_umedpt import validate_inputs

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
# the modules `save_pretrained` copies (with everything they import relatively) for remote-code loading
REMOTE_CODE_MODULES = ("modeling_umedpt.py", "configuration_umedpt.py")
# the parts of UMedPT checkpoints beyond the encoder: a model loading a checkpoint that has parts it lacks (the encoder
# from a multi-task or single-task checkpoint, a segmentation model from a multi-task one) leaves them behind
UMEDPT_PART_KEYS = [
    r"heads\.",
    r"pixel_decoder\.",
    r"detection_decoder\.",
    r"squeezer\.",
    r"^classifier\.",
    r"^segmentation_head\.",
    r"^detection_head\.",
]


class UMedPTSqueezer(nn.Module):
    """Global average pool of the deepest map -> (optional `projection` Linear C -> D) -> LayerNorm -> GELU: the image
    vector."""

    def __init__(self, channels: int, projection_dim: int | None = None) -> None:
        super().__init__()
        self.projection = nn.Linear(channels, projection_dim) if projection_dim else None
        self.norm = nn.LayerNorm(projection_dim or channels)
        self.activation = nn.GELU()

    def forward(self, deepest_map: torch.Tensor) -> torch.Tensor:
        pooled = deepest_map.mean(dim=(-2, -1))
        if self.projection is not None:
            pooled = self.projection(pooled)
        return self.activation(self.norm(pooled))


class UMedPTPreTrainedModel(PreTrainedModel):
    config_class = UMedPTConfig
    config: UMedPTConfig
    base_model_prefix = "umedpt"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _keys_to_ignore_on_load_unexpected = UMEDPT_PART_KEYS

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
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)) and module.weight is not None:
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, UMedPTFCOSHead):
            prior = self.config.fcos_prior_probability
            init.constant_(module.class_logits.bias, -math.log((1 - prior) / prior))
            init.ones_(module.scales)

    def _checked_encoding(
        self,
        task: str,
        task_type: str,
        num_labels: int,
        pixel_values: torch.Tensor,
        labels,
        output_hidden_states: bool | None,
        check_inputs: bool = True,
    ) -> tuple[UMedPTModelOutput, object]:
        """What every task model does first: the input check (returns the labels ready for the loss; the value
        checks cost one host read, skipped with `check_inputs=False`), then the encoder (`self.umedpt`)."""
        labels = validate_inputs(
            task,
            task_type,
            num_labels,
            pixel_values,
            labels,
            self.config.num_channels,
            self.config.segmentation_ignore_index,
            check_values=check_inputs,
        )
        encoded = self.umedpt(
            pixel_values, output_hidden_states=output_hidden_states, check_inputs=False, return_dict=True
        )
        return encoded, labels

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Save as usual, with an `auto_map` for every UMedPT Auto class and the modules that define them, so that
        `AutoModel.from_pretrained(dir, trust_remote_code=True)` works where `umedpt_hf` is not installed."""
        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            save_remote_code(save_directory)


def save_remote_code(save_directory: str | os.PathLike) -> list[Path]:
    """Copy `REMOTE_CODE_MODULES` and every module they import relatively into `save_directory`."""
    here = Path(__file__).resolve().parent
    sources = [here / name for name in REMOTE_CODE_MODULES]
    sources += [Path(path) for source in list(sources) for path in get_relative_import_files(source)]
    copied = []
    for source in dict.fromkeys(sources):
        destination = Path(save_directory) / source.name
        shutil.copyfile(source, destination)
        copied.append(destination)
    return copied


class UMedPTModel(UMedPTPreTrainedModel):
    """The UMedPT encoder: any transformers backbone (BatchNorm built as GroupNorm(1, C)) plus the squeezer. Its
    `pooler_output` is the image vector. `add_pooling_layer=False` builds it without the squeezer."""

    def __init__(self, config: UMedPTConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.backbone = load_backbone(config)
        if config.replace_batch_norm:
            replace_batch_norm(self.backbone)
        channels = self.backbone.channels[-1]
        self.squeezer = UMedPTSqueezer(channels, config.squeezer_projection_dim) if add_pooling_layer else None
        self.post_init()

    @property
    def channels(self) -> list[int]:
        """Channels of each feature map of the pyramid, shallowest first."""
        return list(self.backbone.channels)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        check_inputs: bool = True,
        **kwargs,
    ) -> UMedPTModelOutput:
        r"""
        check_inputs (`bool`, *optional*, defaults to `True`):
            Check that `pixel_values` are finite (one host read; shape, dtype and channels are always checked). The
            task models check their inputs once themselves and pass `False`.
        """
        validate_inputs(None, "", 0, pixel_values, None, self.config.num_channels, check_values=check_inputs)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        outputs = self.backbone(pixel_values, output_hidden_states=bool(output_hidden_states), return_dict=True)
        feature_maps = tuple(outputs.feature_maps)
        return UMedPTModelOutput(
            last_hidden_state=feature_maps[-1],
            pooler_output=self.squeezer(feature_maps[-1]) if self.squeezer is not None else None,
            feature_maps=feature_maps,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
        )

    @can_return_tuple
    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> UMedPTModelOutput:
        """The encoder's output as transformers' `get_image_features` returns it (a `ModelOutput` with
        `last_hidden_state` and `pooler_output`): `.pooler_output` is the (B, hidden_size) image vector, e.g. for
        linear probing of frozen features."""
        return self(pixel_values, return_dict=True, **kwargs)
