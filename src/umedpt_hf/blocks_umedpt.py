"""Small building blocks shared by the UMedPT decoders, and the BatchNorm -> GroupNorm(1, C) conversion of encoders.
No shared block keeps batch statistics: GroupNorm(1, C) normalises each sample on its own."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer


class UMedPTConvNormAct(GradientCheckpointingLayer, nn.Sequential):
    """Conv -> GroupNorm(1, C) -> GELU. GroupNorm(1, C) normalises each sample on its own, so gradient accumulation
    over tasks with different batches sees the same statistics as a joint pass. Under gradient checkpointing the block
    keeps only its input and recomputes the rest during backward."""

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


def group_norm_from_batch_norm(batch_norm: nn.modules.batchnorm._BatchNorm) -> nn.GroupNorm:
    """GroupNorm(1, C) with the BatchNorm's eps and affine parameters (`weight` -> `weight`, `bias` -> `bias`, same
    shapes, so checkpoint keys keep their names). Running statistics are dropped: GroupNorm computes its statistics
    per sample and has no buffers."""
    if batch_norm.num_features is None or isinstance(batch_norm, nn.modules.lazy.LazyModuleMixin):
        raise ValueError(f"Cannot convert {type(batch_norm).__name__} without a known number of channels.")
    reference = batch_norm.weight if batch_norm.affine else None
    group_norm = nn.GroupNorm(
        1,
        batch_norm.num_features,
        eps=batch_norm.eps,
        affine=batch_norm.affine,
        device=None if reference is None else reference.device,
        dtype=None if reference is None else reference.dtype,
    )
    if batch_norm.affine:
        with torch.no_grad():
            group_norm.weight.copy_(batch_norm.weight)
            group_norm.bias.copy_(batch_norm.bias)
    group_norm.train(batch_norm.training)
    return group_norm


def replace_batch_norm(module: nn.Module) -> list[str]:
    """Replace, in place, every BatchNorm (1d/2d/3d, SyncBatchNorm) under `module` by `group_norm_from_batch_norm`.
    Returns the names of the replaced modules."""
    replaced = []
    for name, child in list(module.named_modules()):
        for child_name, grandchild in list(child.named_children()):
            if isinstance(grandchild, nn.modules.batchnorm._BatchNorm):
                setattr(child, child_name, group_norm_from_batch_norm(grandchild))
                replaced.append(f"{name}.{child_name}" if name else child_name)
    return replaced
