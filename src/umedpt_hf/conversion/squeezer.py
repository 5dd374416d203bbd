"""The authors' squeezer block -> UMedPT's squeezer (`UMedPTSqueezer`): checked module by module, never guessed.

Theirs: average pool -> optional 1×1 conv (C -> D) -> GroupNorm(1, D) -> GELU on the deepest map. GroupNorm with one
group over a (D, 1, 1) vector is LayerNorm(D); a 1×1 conv on a pooled vector is a Linear (weight (D, C, 1, 1) ->
(D, C); a missing bias is zero). Ours: avgpool -> `projection` (only when D is set) -> `norm` -> GELU.
"""

from __future__ import annotations

import torch

from .safe_pickle import ModuleTree

OUR_EPS = 1e-5  # nn.LayerNorm's default, used by UMedPTSqueezer


def _class_of(tree: ModuleTree, path: str) -> str:
    return tree.classes.get(path, "").rsplit(".", 1)[-1]


def convert_squeezer(tree: ModuleTree, channels: int, label: str) -> tuple[dict[str, torch.Tensor], int | None]:
    """Our squeezer's tensors (`norm.*`, and `projection.*` when it projects) and the projection width (or None).

    Raises ValueError naming the module or tensor that does not fit (another norm, several groups, another eps, an
    approximate GELU, a max pool, tensors of unknown modules)."""
    known = {"norm.weight", "norm.bias", "conv.weight", "conv.bias"}
    unknown = sorted(set(tree.tensors) - known)
    if unknown:
        raise ValueError(f"{label}: tensors the UMedPT squeezer does not have: {', '.join(unknown)}")
    if tree.forward_hooks:
        raise ValueError(f"{label}: forward hooks on {', '.join(tree.forward_hooks)} cannot be converted")
    for path, attributes in tree.attributes.items():
        kind = _class_of(tree, path)
        if kind == "GELU" and attributes.get("approximate", "none") != "none":
            raise ValueError(f"{label}: {path} is GELU(approximate={attributes['approximate']!r}); ours is exact")
        if kind.startswith(("AdaptiveMaxPool", "MaxPool")):
            raise ValueError(f"{label}: {path} is a max pool ({kind}); the UMedPT squeezer averages")
    tensors: dict[str, torch.Tensor] = {}
    width = channels
    projection_dim = None
    if "conv.weight" in tree.tensors:
        weight = tree.tensors["conv.weight"]
        if weight.dim() != 4 or tuple(weight.shape[1:]) != (channels, 1, 1):
            raise ValueError(
                f"{label}: conv.weight has shape {tuple(weight.shape)}; expected a 1×1 conv from the encoder's "
                f"{channels} channels, ({weight.shape[0]}, {channels}, 1, 1)"
            )
        projection_dim = width = int(weight.shape[0])
        tensors["projection.weight"] = weight.reshape(width, channels).clone()
        bias = tree.tensors.get("conv.bias")
        tensors["projection.bias"] = bias.clone() if bias is not None else torch.zeros(width, dtype=weight.dtype)
    norm_kind = _class_of(tree, "norm")
    norm = tree.attributes.get("norm", {})
    if norm_kind not in ("GroupNorm", "LayerNorm"):
        raise ValueError(f"{label}: its norm is {norm_kind or 'missing'}; expected GroupNorm(1, C) or LayerNorm(C)")
    if norm_kind == "GroupNorm" and norm.get("num_groups") != 1:
        raise ValueError(f"{label}: GroupNorm with {norm.get('num_groups')} groups is not a LayerNorm; expected 1")
    if abs(float(norm.get("eps", OUR_EPS)) - OUR_EPS) > 1e-12:
        raise ValueError(f"{label}: its norm has eps {norm.get('eps')}; the UMedPT squeezer uses {OUR_EPS}")
    for name in ("weight", "bias"):
        tensor = tree.tensors.get(f"norm.{name}")
        if tensor is None:
            raise ValueError(f"{label}: norm.{name} is missing (an affine norm is expected)")
        if tuple(tensor.shape) != (width,):
            raise ValueError(f"{label}: norm.{name} has shape {tuple(tensor.shape)}; expected ({width},)")
        tensors[f"norm.{name}"] = tensor
    return tensors, projection_dim
