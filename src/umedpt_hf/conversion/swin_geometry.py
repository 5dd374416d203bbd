"""The architecture of a torchvision Swin-V2 encoder, read from its tensor shapes (never assumed), and the transformers
`Swinv2Config` that computes the same features.

transformers fixes each stage's window and shift from `config.image_size` when the model is built (a window larger
than the stage's map shrinks, its shift drops to 0); torchvision pads at run time instead. With `image_size` =
patch · 2^(stages-1) · window (256 for swin_v2_t) the deepest stage's map equals the window and every stage makes
torchvision's choice for inputs whose side is a multiple of patch · 2^(stages-1) in (native / 2, native].
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch

PATCH_EMBED_KEY = "features.0.0.weight"


@dataclass(frozen=True)
class SwinV2Geometry:
    """What defines a Swin-V2 encoder's computation, inferred from a checkpoint."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    patch_size: int
    num_channels: int
    mlp_ratio: float
    qkv_bias: bool
    layer_norm_eps: float = 1e-5

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def channels(self) -> list[int]:
        return [self.embed_dim * 2**stage for stage in range(self.num_stages)]

    @property
    def native_image_size(self) -> int:
        """The `config.image_size` at which transformers' windows equal torchvision's."""
        return self.patch_size * 2 ** (self.num_stages - 1) * self.window_size

    @property
    def parity_sizes(self) -> list[int]:
        """Square input sides for which the converted encoder computes torchvision's features."""
        step = self.patch_size * 2 ** (self.num_stages - 1)
        native = self.native_image_size
        return [side for side in range(step, native + 1, step) if side > native // 2]

    def swinv2_config_kwargs(self) -> dict:
        """`Swinv2Config` arguments (all stages out) that reproduce torchvision's window geometry."""
        return {
            "image_size": self.native_image_size,
            "patch_size": self.patch_size,
            "num_channels": self.num_channels,
            "embed_dim": self.embed_dim,
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "window_size": self.window_size,
            "pretrained_window_sizes": [0] * self.num_stages,
            "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias,
            "layer_norm_eps": self.layer_norm_eps,
            "hidden_act": "gelu",
            "out_features": [f"stage{stage + 1}" for stage in range(self.num_stages)],
        }

    def as_dict(self) -> dict:
        return {**asdict(self), "depths": list(self.depths), "num_heads": list(self.num_heads)}


def find_swin_prefix(tensors: dict[str, torch.Tensor], label: str) -> str:
    """The key prefix under which a torchvision Swin model sits ('' for a plain state_dict)."""
    prefixes = sorted(key[: -len(PATCH_EMBED_KEY)] for key in tensors if key.endswith(PATCH_EMBED_KEY))
    if len(prefixes) == 1:
        return prefixes[0]
    if len(prefixes) > 1:
        raise ValueError(f"{label} holds several Swin encoders (under {prefixes}); convert one at a time")
    sample = ", ".join(sorted(tensors)[:4]) or "no tensors"
    raise ValueError(
        f"unknown architecture in {label}: no torchvision Swin-V2 patch embedding ({PATCH_EMBED_KEY}) among its "
        f"{len(tensors)} tensors (first keys: {sample})"
    )


def _window_from_buffers(tensors: dict[str, torch.Tensor], label: str) -> int | None:
    windows = set()
    for key, tensor in tensors.items():
        if key.endswith("attn.relative_coords_table") and tensor.dim() == 4:
            windows.add((tensor.shape[1] + 1) // 2)
        elif key.endswith("attn.relative_position_index") and tensor.dim() == 1:
            side = math.isqrt(math.isqrt(tensor.numel()))
            if side**4 == tensor.numel():
                windows.add(side)
    if len(windows) > 1:
        raise ValueError(
            f"{label}: the stages use different window sizes {sorted(windows)}; transformers' Swinv2 has one"
        )
    return windows.pop() if windows else None


def infer_geometry(
    tensors: dict[str, torch.Tensor], label: str, window_size: int | None = None, layer_norm_eps: float = 1e-5
) -> SwinV2Geometry:
    """Read a torchvision Swin-V2 state_dict's architecture (keys without prefix: `features.…`, `norm.…`)."""
    if any(key.endswith("relative_position_bias_table") for key in tensors):
        raise ValueError(
            f"unknown architecture in {label}: it is a Swin-V1 encoder (relative_position_bias_table); only Swin-V2 "
            "(continuous position bias, cpb_mlp) converts exactly"
        )
    if not any(".attn.cpb_mlp." in key for key in tensors):
        raise ValueError(f"unknown architecture in {label}: no Swin-V2 attention (attn.cpb_mlp) among its tensors")
    patch = tensors[PATCH_EMBED_KEY]
    if patch.dim() != 4 or patch.shape[2] != patch.shape[3]:
        raise ValueError(f"{label}: {PATCH_EMBED_KEY} has shape {tuple(patch.shape)}, not a square patch embedding")
    embed_dim, num_channels, patch_size = int(patch.shape[0]), int(patch.shape[1]), int(patch.shape[2])
    block_keys = [re.match(r"features\.(\d+)\.(\d+)\.", key) for key in tensors]
    blocks: dict[int, set[int]] = {}
    for match in filter(None, block_keys):
        blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    stage_indices = sorted(index for index in blocks if index > 0)
    expected = [2 * stage + 1 for stage in range(len(stage_indices))]
    if not stage_indices or stage_indices != expected:
        raise ValueError(
            f"unknown architecture in {label}: torchvision Swin-V2 keeps its stages at features.1, 3, 5, …; found "
            f"blocks under features.{stage_indices}"
        )
    depths, heads = [], []
    for stage, index in enumerate(stage_indices):
        found = sorted(blocks[index])
        if found != list(range(len(found))):
            raise ValueError(f"{label}: features.{index} has blocks {found}, not 0..{len(found) - 1}")
        depths.append(len(found))
        scale = tensors.get(f"features.{index}.0.attn.logit_scale")
        norm = tensors.get(f"features.{index}.0.norm1.weight")
        if scale is None or norm is None:
            raise ValueError(f"unknown architecture in {label}: features.{index}.0 lacks attn.logit_scale or norm1")
        if norm.shape[0] != embed_dim * 2**stage:
            raise ValueError(
                f"unknown architecture in {label}: stage {stage + 1} has {norm.shape[0]} channels, Swin-V2 has "
                f"{embed_dim * 2**stage} (embed {embed_dim} doubled per stage)"
            )
        heads.append(int(scale.shape[0]))
    hidden = tensors.get("features.1.0.mlp.0.weight")
    if hidden is None:
        raise ValueError(f"unknown architecture in {label}: features.1.0 has no mlp.0.weight")
    window = _window_from_buffers(tensors, label)
    if window is None and window_size is None:
        raise ValueError(
            f"{label}: the window size cannot be inferred (no relative_coords_table / relative_position_index "
            "buffers); pass it explicitly"
        )
    if window is not None and window_size is not None and window != window_size:
        raise ValueError(f"{label}: its buffers say window {window}, but window_size={window_size} was given")
    return SwinV2Geometry(
        embed_dim=embed_dim,
        depths=tuple(depths),
        num_heads=tuple(heads),
        window_size=int(window or window_size),
        patch_size=patch_size,
        num_channels=num_channels,
        mlp_ratio=float(hidden.shape[0]) / embed_dim,
        qkv_bias="features.1.0.attn.qkv.bias" in tensors,
        layer_norm_eps=float(layer_norm_eps),
    )
