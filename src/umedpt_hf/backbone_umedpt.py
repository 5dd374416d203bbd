"""`UMedPTBackbone`: the UMedPT encoder as a transformers backbone (for UperNet, DETR-style detectors, ...)."""

from __future__ import annotations

import torch
from transformers.backbone_utils import BackboneMixin
from transformers.modeling_outputs import BackboneOutput
from transformers.utils.generic import can_return_tuple

from .configuration_umedpt import UMedPTConfig
from .encoder_umedpt import UMedPTModel, UMedPTPreTrainedModel


class UMedPTBackbone(BackboneMixin, UMedPTPreTrainedModel):
    """UMedPT's encoder as a transformers backbone. `config.out_features` / `config.out_indices` choose among the
    stages of the encoder's pyramid (`config.pyramid_stage_names`); `num_features` gives the channels of every stage.
    Returns `feature_maps` and, with `output_hidden_states=True`, the encoder backbone's `hidden_states`."""

    has_attentions = False

    def __init__(self, config: UMedPTConfig) -> None:
        super().__init__(config)
        unavailable = [name for name in self.out_features if name not in config.pyramid_stage_names]
        if unavailable:
            raise ValueError(
                f"UMedPTBackbone can return the stages {config.pyramid_stage_names} (the encoder's pyramid), not "
                f"{unavailable}; choose out_features among them."
            )
        self.umedpt = UMedPTModel(config, add_pooling_layer=False)
        encoder = self.umedpt.backbone
        pyramid_channels = dict(zip(config.pyramid_stage_names, self.umedpt.channels))
        inner = getattr(encoder, "num_features", None)
        if not inner or len(inner) != len(self.stage_names):
            inner = [pyramid_channels.get(name) for name in self.stage_names]
        self.num_features = [pyramid_channels.get(name, channels) for name, channels in zip(self.stage_names, inner)]
        self.post_init()

    def _init_transformers_backbone(self) -> None:
        if not self.config.stage_names:
            raise ValueError(
                f"UMedPTBackbone needs a backbone config with stage names; {type(self.config.backbone_config).__name__}"
                " has none."
            )
        self.stage_names = self.config.stage_names
        self.config.verify_out_features_out_indices()
        self.num_features = None

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BackboneOutput:
        encoded = self.umedpt(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        pyramid = dict(zip(self.config.pyramid_stage_names, encoded.feature_maps))
        return BackboneOutput(
            feature_maps=tuple(pyramid[name] for name in self.out_features), hidden_states=encoded.hidden_states
        )
