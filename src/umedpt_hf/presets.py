"""Named UMedPT configurations: the Swin-V2-T reference model and tiny ones for tests and CPU demos."""

from __future__ import annotations

from typing import Any

from transformers import Swinv2Config

from .configuration_umedpt import UMedPTConfig


def swinv2_t_config(tasks: dict[str, dict] | None = None, num_channels: int = 3, **overrides: Any) -> UMedPTConfig:
    """The reference UMedPT: Swin-V2-T encoder (window 8, 27.6 M parameters), 16-channel pixel embedding,
    128-channel FPN/FCOS with 4-conv towers.

    The encoder has torchvision's swin_v2_t window geometry (`image_size=256`, window 8, no pretrained windows,
    LayerNorm eps 1e-5; `SWINV2_TINY_DEFAULTS`), so weights converted from torchvision or the authors' export, or
    loaded with `model.init_from` (e.g. `microsoft/swinv2-tiny-patch4-window8-256`), compute the same features at
    224 and 256 px (square sides 160-256 that are multiples of 32)."""
    return UMedPTConfig(tasks=tasks, num_channels=num_channels, **overrides)


def tiny_config(tasks: dict[str, dict] | None = None, num_channels: int = 3, **overrides: Any) -> UMedPTConfig:
    """A ~1.4 M-parameter UMedPT (Swin-V2, embed 32, depths 1-1-2-1) for tests and CPU demos; image sides should be
    multiples of 32. Stochastic depth and head dropout are off so that runs are deterministic."""
    backbone = Swinv2Config(
        embed_dim=32,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        window_size=8,
        drop_path_rate=0.0,
        num_channels=num_channels,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    settings = {
        "pixel_decoder_channels": [64, 32, 16, 16],
        "fpn_channels": 32,
        "detection_tower_depth": 2,
        "classifier_dropout": 0.0,
        **overrides,
    }
    return UMedPTConfig(backbone_config=backbone, tasks=tasks, **settings)


PRESETS = {"tiny": tiny_config, "swinv2_t": swinv2_t_config}


def config_from_preset(name: str, **kwargs: Any) -> UMedPTConfig:
    """Build a config from a preset name ("tiny" or "swinv2_t")."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name](**kwargs)
