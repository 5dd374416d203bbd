"""The architecture is read from tensor shapes: the tiny fixture, the real swin_v2_t key list, and what is refused."""

from __future__ import annotations

import json

import pytest
import torch
from conversion_helpers import TV_SWIN_V2_T_KEYS
from transformers import Swinv2Backbone, Swinv2Config

from umedpt_hf.conversion.swin_geometry import find_swin_prefix, infer_geometry
from umedpt_hf.conversion.torchvision_keys import check_against_model, torchvision_to_transformers


def swin_v2_t_shaped() -> dict[str, torch.Tensor]:
    """Zeros with every key and shape of torchvision's real swin_v2_t state_dict (from the fixture's key list)."""
    shapes = json.loads(TV_SWIN_V2_T_KEYS.read_text())
    return {key: torch.zeros(shape) for key, shape in shapes.items()}


def test_tiny_fixture_geometry(tv_tiny):
    geometry = infer_geometry(tv_tiny, "tiny")
    assert (geometry.embed_dim, geometry.depths, geometry.num_heads) == (16, (2, 2, 2, 2), (1, 2, 4, 8))
    assert (geometry.window_size, geometry.patch_size, geometry.num_channels) == (8, 4, 3)
    assert geometry.mlp_ratio == 4.0 and geometry.qkv_bias
    assert geometry.native_image_size == 256
    assert geometry.parity_sizes == [160, 192, 224, 256]


def test_swin_v2_t_geometry_and_parameter_count():
    tensors = swin_v2_t_shaped()
    geometry = infer_geometry(tensors, "swin_v2_t")
    assert (geometry.embed_dim, geometry.depths, geometry.num_heads, geometry.window_size) == (
        96, (2, 2, 6, 2), (3, 6, 12, 24), 8
    )  # fmt: skip
    mapped = torchvision_to_transformers(tensors, geometry, "swin_v2_t")
    # 28,351,570 - head 769,000 - final norm 1,536 - key biases 4,416 (CONVERSION.md)
    assert sum(tensor.numel() for tensor in mapped.tensors.values()) == 27_576_618
    assert set(mapped.not_converted) == {"norm.weight", "norm.bias", "head.weight", "head.bias"}
    backbone = Swinv2Backbone(Swinv2Config(**geometry.swinv2_config_kwargs()))
    check_against_model(mapped.tensors, backbone.state_dict(), "swin_v2_t")


def test_the_preset_is_this_geometry():
    from umedpt_hf import swinv2_t_config

    geometry = infer_geometry(swin_v2_t_shaped(), "swin_v2_t")
    preset = swinv2_t_config().backbone_config
    for key, value in geometry.swinv2_config_kwargs().items():
        actual = getattr(preset, key)
        assert (list(actual) if isinstance(value, list) else actual) == value, key


def test_prefix_is_found(tv_tiny):
    wrapped = {f"model.wrapped_model.{key}": tensor for key, tensor in tv_tiny.items()}
    assert find_swin_prefix(wrapped, "x") == "model.wrapped_model."
    with pytest.raises(ValueError, match=r"unknown architecture.*no torchvision Swin-V2 patch embedding"):
        find_swin_prefix({"conv1.weight": torch.zeros(1)}, "resnet.pth")
    both = {**wrapped, **{f"other.{key}": tensor for key, tensor in tv_tiny.items()}}
    with pytest.raises(ValueError, match="several Swin encoders"):
        find_swin_prefix(both, "x")


def test_swin_v1_and_odd_layouts_are_unknown_architectures(tv_tiny):
    v1 = {key.replace("cpb_mlp.0.weight", "relative_position_bias_table"): t for key, t in tv_tiny.items()}
    with pytest.raises(ValueError, match="Swin-V1"):
        infer_geometry(v1, "swin_t.pth")
    no_cpb = {key: tensor for key, tensor in tv_tiny.items() if "cpb_mlp" not in key}
    with pytest.raises(ValueError, match="no Swin-V2 attention"):
        infer_geometry(no_cpb, "x")
    gap = {key: tensor for key, tensor in tv_tiny.items() if not key.startswith("features.3.")}
    with pytest.raises(ValueError, match=r"features\.1, 3, 5"):
        infer_geometry(gap, "x")


def test_window_needs_buffers_or_an_explicit_value(tv_tiny):
    weights_only = {key: tensor for key, tensor in tv_tiny.items() if "relative_" not in key}
    with pytest.raises(ValueError, match="window size cannot be inferred"):
        infer_geometry(weights_only, "x")
    assert infer_geometry(weights_only, "x", window_size=8).window_size == 8
    with pytest.raises(ValueError, match="buffers say window 8"):
        infer_geometry(tv_tiny, "x", window_size=16)
