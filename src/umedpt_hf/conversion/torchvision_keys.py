"""torchvision Swin-V2 state_dict -> transformers `Swinv2Backbone` state_dict, tensor by tensor.

Every source key is either mapped, dropped with a reason (torchvision's unused key bias, recomputed buffers), listed as
not converted (final norm, classification head), or refused as unknown: nothing is lost silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from .swin_geometry import SwinV2Geometry

KEY_BIAS_REASON = "key part of qkv.bias: torchvision zeroes it in forward and transformers' key has no bias"
BUFFER_REASON = "buffer recomputed from the window size by transformers (not a weight)"
NOT_CONVERTED = {
    "norm": "final LayerNorm after the last stage: the UMedPT pyramid (and Swinv2Backbone) does not apply it",
    "head": "ImageNet classification head: not part of the encoder",
}
BLOCK_RENAMES = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.logit_scale": "attention.self.logit_scale",
    "attn.cpb_mlp.0": "attention.self.continuous_position_bias_mlp.0",
    "attn.cpb_mlp.2": "attention.self.continuous_position_bias_mlp.2",
    "attn.proj": "attention.output.dense",
    "mlp.0": "intermediate.dense",
    "mlp.3": "output.dense",
}
BLOCK_KEY = re.compile(r"features\.(\d+)\.(\d+)\.(.+)")
MERGE_KEY = re.compile(r"features\.(\d+)\.(reduction|norm)\.(weight|bias)")


@dataclass
class MappedEncoder:
    """The transformers tensors, and what became of every source key."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # transformers key -> source key (for the report)
    dropped: dict[str, str] = field(default_factory=dict)  # source key -> reason
    not_converted: dict[str, str] = field(default_factory=dict)  # source key -> reason


def _split_qkv(key: str, tensor: torch.Tensor, channels: int, target: str, mapped: MappedEncoder, label: str) -> None:
    if tensor.shape[0] != 3 * channels:
        raise ValueError(
            f"{label}: {key} has shape {tuple(tensor.shape)}; expected {3 * channels} rows (query, key, value)"
        )
    query, key_part, value = tensor[:channels], tensor[channels : 2 * channels], tensor[2 * channels :]
    kind = key.rsplit(".", 1)[-1]
    for name, part in (("query", query), ("value", value)):
        mapped.tensors[f"{target}.attention.self.{name}.{kind}"] = part.clone()
        mapped.sources[f"{target}.attention.self.{name}.{kind}"] = key
    if kind == "weight":
        mapped.tensors[f"{target}.attention.self.key.weight"] = key_part.clone()
        mapped.sources[f"{target}.attention.self.key.weight"] = key
    else:
        mapped.dropped[f"{key}[{channels}:{2 * channels}]"] = KEY_BIAS_REASON


def _map_block(key: str, tensor: torch.Tensor, geometry: SwinV2Geometry, mapped: MappedEncoder, label: str) -> bool:
    match = BLOCK_KEY.fullmatch(key)
    if not match or int(match.group(1)) % 2 == 0:
        return False
    stage, block, rest = (int(match.group(1)) - 1) // 2, int(match.group(2)), match.group(3)
    target = f"encoder.layers.{stage}.blocks.{block}"
    if rest in ("attn.relative_coords_table", "attn.relative_position_index"):
        mapped.dropped[key] = BUFFER_REASON
        return True
    if rest in ("attn.qkv.weight", "attn.qkv.bias"):
        _split_qkv(key, tensor, geometry.channels[stage], target, mapped, label)
        return True
    module, _, kind = rest.rpartition(".")
    if rest in BLOCK_RENAMES:  # logit_scale is a bare parameter
        name = f"{target}.{BLOCK_RENAMES[rest]}"
    elif module in BLOCK_RENAMES:
        name = f"{target}.{BLOCK_RENAMES[module]}.{kind}"
    else:
        return False
    mapped.tensors[name] = tensor
    mapped.sources[name] = key
    return True


def torchvision_to_transformers(
    tensors: dict[str, torch.Tensor], geometry: SwinV2Geometry, label: str
) -> MappedEncoder:
    """Map a torchvision Swin-V2 state_dict (keys without prefix) to `Swinv2Backbone` keys.

    Raises ValueError listing the source keys that belong to the encoder but match no rule."""
    mapped = MappedEncoder()
    unknown = []
    for key, tensor in tensors.items():
        if key.startswith("features.0.0."):
            name = "embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[-1]
        elif key.startswith("features.0.2."):
            name = "embeddings.norm." + key.rsplit(".", 1)[-1]
        elif (merge := MERGE_KEY.fullmatch(key)) and int(merge.group(1)) % 2 == 0:
            stage = int(merge.group(1)) // 2 - 1
            name = f"encoder.layers.{stage}.downsample.{merge.group(2)}.{merge.group(3)}"
        elif _map_block(key, tensor, geometry, mapped, label):
            continue
        elif key.split(".")[0] in NOT_CONVERTED:
            mapped.not_converted[key] = NOT_CONVERTED[key.split(".")[0]]
            continue
        else:
            unknown.append(key)
            continue
        mapped.tensors[name] = tensor
        mapped.sources[name] = key
    if unknown:
        shown = ", ".join(unknown[:6]) + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        raise ValueError(f"unknown architecture in {label}: tensors no Swin-V2 rule maps: {shown}")
    return mapped


def check_against_model(
    mapped: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], label: str, target: str = "the model"
) -> None:
    """Refuse unless the mapped tensors have exactly the model's keys and shapes; the message names the tensors."""
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(mapped) - set(expected))
    wrong = [
        f"{key} {tuple(mapped[key].shape)} vs {tuple(expected[key].shape)}"
        for key in sorted(set(mapped) & set(expected))
        if tuple(mapped[key].shape) != tuple(expected[key].shape)
    ]
    problems = []
    for title, items in (("shape mismatch (source vs model)", wrong), ("missing in the source", missing),
                         ("not in the model", extra)):  # fmt: skip
        if items:
            problems.append(
                f"{title}: {', '.join(items[:4])}" + (f" and {len(items) - 4} more" if len(items) > 4 else "")
            )
    if problems:
        raise ValueError(f"{label} does not fit {target}: " + "; ".join(problems))
