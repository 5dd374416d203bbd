"""The parity figures a converted card states are the ones measured here: the tiny torchvision Swin-V2 converted and
run at 256, 224 and 192 px gives torchvision's four pyramid maps (made by torchvision's own code) to max |Δ| ≤ 1e-5."""

from __future__ import annotations

import pytest
import torch
from conversion_helpers import SIZES, TV_TINY, max_abs_diff

from umedpt_hf.conversion import parity
from umedpt_hf.conversion.convert import build_model, load_source_into
from umedpt_hf.conversion.sources import read_source


@pytest.fixture(scope="module")
def converted_encoder():
    source = read_source(TV_TINY)
    model = build_model(source)
    load_source_into(model, source)
    return model


@pytest.mark.parametrize("side", SIZES)
def test_pyramid_equals_torchvisions(converted_encoder, tv_io, side):
    with torch.no_grad():
        maps = converted_encoder(tv_io[f"input_{side}"]).feature_maps
    diffs = [max_abs_diff(produced, tv_io[f"stage{stage}_{side}"]) for stage, produced in enumerate(maps, start=1)]
    assert max(diffs) <= parity.TOLERANCE, diffs
    assert max(diffs) == parity.FIXTURE_MAX_ABS_DIFF[side], "update parity.FIXTURE_MAX_ABS_DIFF (the card quotes it)"


def test_measured_sizes_are_parity_sizes():
    assert set(parity.measured_sizes()) <= set(read_source(TV_TINY).geometry.parity_sizes)


def test_transformers_default_geometry_would_not_match(tv_io):
    """Why image_size matters: built for 224 (transformers' default), stage 4 differs from torchvision's at 224."""
    source = read_source(TV_TINY)
    source.backbone_config = {**source.backbone_config, "image_size": 224}
    model = build_model(source)
    load_source_into(model, source)
    with torch.no_grad():
        maps = model(tv_io["input_224"]).feature_maps
    assert max_abs_diff(maps[0], tv_io["stage1_224"]) == 0.0
    assert max_abs_diff(maps[3], tv_io["stage4_224"]) > 1e-3
