"""The shared U-Net-style pixel decoder: feature pyramid -> full-resolution per-pixel embedding."""

from __future__ import annotations

import torch
from torch import nn

from .blocks_umedpt import UMedPTConvNormAct, resize_to


class UMedPTPixelDecoder(nn.Module):
    """Walks the pyramid from the deepest map up: upsample, concatenate the skip connection, fuse with a 3x3 conv.
    The shallowest fused map is resized to the input resolution and projected to `embedding_dim` channels.

    Works for any number of maps and any strides (maps of equal size, as from a ViT backbone, are simply fused)."""

    def __init__(self, in_channels: list[int], decoder_channels: list[int], embedding_dim: int) -> None:
        super().__init__()
        deepest_first = list(reversed(in_channels))
        widths = [decoder_channels[min(i, len(decoder_channels) - 1)] for i in range(len(deepest_first))]
        self.stem = UMedPTConvNormAct(deepest_first[0], widths[0], kernel_size=1)
        self.fuse = nn.ModuleList(
            UMedPTConvNormAct(widths[i - 1] + deepest_first[i], widths[i]) for i in range(1, len(deepest_first))
        )
        self.embed = UMedPTConvNormAct(widths[-1], embedding_dim)

    def forward(self, feature_maps: tuple[torch.Tensor, ...], output_size: tuple[int, int]) -> torch.Tensor:
        deepest_first = list(reversed(feature_maps))
        hidden = self.stem(deepest_first[0])
        for fuse, skip in zip(self.fuse, deepest_first[1:]):
            hidden = fuse(torch.cat([resize_to(hidden, skip.shape[-2:]), skip], dim=1))
        return self.embed(resize_to(hidden, output_size))


def build_pixel_decoder(channels: list[int], config) -> UMedPTPixelDecoder:
    """The shared pixel decoder of a UMedPT config over an encoder pyramid with `channels`."""
    return UMedPTPixelDecoder(channels, config.pixel_decoder_channels, config.pixel_embedding_dim)
