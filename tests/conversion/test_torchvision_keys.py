"""torchvision -> transformers keys: every tensor accounted for, the qkv split, shape checks that name tensors."""

from __future__ import annotations

import pytest
import torch

from umedpt_hf.conversion.swin_geometry import infer_geometry
from umedpt_hf.conversion.torchvision_keys import KEY_BIAS_REASON, check_against_model, torchvision_to_transformers


def test_every_source_key_is_mapped_dropped_or_listed(tv_tiny):
    mapped = torchvision_to_transformers(tv_tiny, infer_geometry(tv_tiny, "tiny"), "tiny")
    used = set(mapped.sources.values()) | {key.split("[")[0] for key in mapped.dropped} | set(mapped.not_converted)
    assert used == set(tv_tiny)
    assert sum(reason == KEY_BIAS_REASON for reason in mapped.dropped.values()) == 8  # one per block


def test_qkv_is_split_in_order_and_the_key_bias_dropped(tv_tiny):
    mapped = torchvision_to_transformers(tv_tiny, infer_geometry(tv_tiny, "tiny"), "tiny")
    weight, bias = tv_tiny["features.5.1.attn.qkv.weight"], tv_tiny["features.5.1.attn.qkv.bias"]
    prefix = "encoder.layers.2.blocks.1.attention.self."
    assert torch.equal(mapped.tensors[prefix + "query.weight"], weight[:64])
    assert torch.equal(mapped.tensors[prefix + "key.weight"], weight[64:128])
    assert torch.equal(mapped.tensors[prefix + "value.weight"], weight[128:])
    assert torch.equal(mapped.tensors[prefix + "query.bias"], bias[:64])
    assert torch.equal(mapped.tensors[prefix + "value.bias"], bias[128:])
    assert prefix + "key.bias" not in mapped.tensors
    assert bias[64:128].abs().max() > 0  # the fixture's key bias is not zero: dropping it is tested, not trivial
    merge = "encoder.layers.1.downsample.reduction.weight"  # torchvision's features.4 merges after stage 2
    assert torch.equal(mapped.tensors[merge], tv_tiny["features.4.reduction.weight"])


def test_unknown_encoder_tensors_are_refused(tv_tiny):
    extra = {**tv_tiny, "features.1.0.attn.extra_gate": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"unknown architecture.*features\.1\.0\.attn\.extra_gate"):
        torchvision_to_transformers(extra, infer_geometry(tv_tiny, "tiny"), "tiny")


def test_shape_mismatch_names_the_tensors():
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(1)}
    mapped = {"a": torch.zeros(3, 3), "b": torch.zeros(4), "d": torch.zeros(1)}
    with pytest.raises(ValueError) as error:
        check_against_model(mapped, expected, "src.pth", "the model")
    message = str(error.value)
    assert (
        "a (3, 3) vs (2, 3)" in message and "missing in the source: c" in message and "not in the model: d" in message
    )
