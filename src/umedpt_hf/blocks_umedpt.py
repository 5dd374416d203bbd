"""Small building blocks shared by the UMedPT decoders (per-sample GroupNorm, never BatchNorm)."""

from __future__ import annotations

import torch
from torch import nn


class UMedPTConvNormAct(nn.Sequential):
    """Conv -> GroupNorm(1, C) -> GELU. GroupNorm(1, C) normalises each sample on its own, so gradient accumulation
    over tasks with different batches sees the same statistics as a joint pass."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
            nn.GroupNorm(1, out_channels),
            nn.GELU(),
        )


def resize_to(features: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize of a (B, C, H, W) map to `size`; a no-op when it already has that size."""
    if tuple(features.shape[-2:]) == tuple(size):
        return features
    return nn.functional.interpolate(features, size=tuple(size), mode="bilinear", align_corners=False)
