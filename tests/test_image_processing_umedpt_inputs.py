"""Inputs of UMedPTImageProcessor: containers, layouts, dtypes, the channel policy (image_transforms_umedpt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor


def raw_processor(**kwargs) -> UMedPTImageProcessor:
    """No resize, no normalisation: pixel_values are the intensity-scaled values."""
    return UMedPTImageProcessor(do_resize=False, do_normalize=False, **kwargs)


GREY = np.arange(40 * 30, dtype=np.float32).reshape(40, 30) / (40 * 30)
INPUTS = {
    "numpy (H, W) float32": GREY,
    "numpy (H, W, 1) uint8": (GREY * 255).astype(np.uint8)[..., None],
    "numpy (H, W, 3) uint8": np.stack([(GREY * 255).astype(np.uint8)] * 3, axis=-1),
    "numpy (1, H, W) uint16": (GREY * 65535).astype(np.uint16)[None],
    "numpy (3, H, W) float32": np.stack([GREY] * 3),
    "numpy (H, W) int16 HU": (GREY * 2000 - 1000).astype(np.int16),
    "torch (3, H, W)": torch.from_numpy(np.stack([GREY] * 3)),
    "torch (H, W) uint8": torch.from_numpy((GREY * 255).astype(np.uint8)),
    "PIL L": Image.fromarray((GREY * 255).astype(np.uint8)),
    "PIL RGB": Image.fromarray(np.stack([(GREY * 255).astype(np.uint8)] * 3, axis=-1)),
    "PIL I;16": Image.fromarray((GREY * 65535).astype(np.uint16)),
    "PIL RGBA": Image.fromarray(np.dstack([(GREY * 255).astype(np.uint8)] * 3 + [np.full(GREY.shape, 255, np.uint8)])),
}


@pytest.mark.parametrize("name", list(INPUTS))
@pytest.mark.parametrize("num_channels", [1, 3])
def test_every_input_kind_gives_pixel_values(name, num_channels):
    processor = UMedPTImageProcessor(size={"height": 32, "width": 48}, num_channels=num_channels)
    out = processor(INPUTS[name])
    assert out["pixel_values"].shape == (1, num_channels, 32, 48)
    assert out["pixel_values"].dtype == torch.float32
    assert torch.isfinite(out["pixel_values"]).all()
    assert out["original_sizes"].tolist() == [[40, 30]]
    # the same gradient (a ramp) comes out whatever the container: first row darker than last row
    raw = raw_processor(num_channels=num_channels)(INPUTS[name])["pixel_values"][0]
    assert raw.shape == (num_channels, 40, 30)
    assert raw[:, 0].mean() < raw[:, -1].mean()


def test_list_of_mixed_sizes_and_types():
    images = [INPUTS["PIL RGB"], np.zeros((17, 90), np.uint16), torch.rand(3, 64, 20)]
    out = UMedPTImageProcessor(size={"height": 32, "width": 32})(images)
    assert out["pixel_values"].shape == (3, 3, 32, 32)
    assert out["original_sizes"].tolist() == [[40, 30], [17, 90], [64, 20]]


def test_return_numpy():
    out = UMedPTImageProcessor(size={"height": 32, "width": 32})(GREY, return_tensors="np")
    assert isinstance(out["pixel_values"], np.ndarray) and out["pixel_values"].shape == (1, 3, 32, 32)


def test_channel_policy_follows_model_config():
    from umedpt_hf.presets import tiny_config

    processor = UMedPTImageProcessor.from_model_config(tiny_config(num_channels=1), size={"height": 32, "width": 32})
    assert processor.num_channels == 1 and len(processor.image_mean) == 1
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 1] = 255  # pure green -> luminance 0.587
    raw = raw_processor(num_channels=1)(rgb)["pixel_values"]
    assert raw.shape == (1, 1, 20, 20) and raw.max().item() == pytest.approx(0.587, abs=1e-5)
    grey3 = raw_processor(num_channels=3)(GREY)["pixel_values"][0]
    assert torch.equal(grey3[0], grey3[1]) and torch.equal(grey3[1], grey3[2])
    assert processor(GREY)["pixel_values"].shape == (1, 1, 32, 32)


def test_model_config_modality_is_followed_when_shared():
    from umedpt_hf.presets import tiny_config

    tasks = {"a": {"type": "classification", "labels": ["x", "y"], "modality": "ct"}}
    assert UMedPTImageProcessor.from_model_config(tiny_config(tasks=tasks)).modality == "ct"


def test_input_data_format_is_honoured():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (3, 20, 3), dtype=np.uint8)  # ambiguous: (C, H, W) or (H, W, C)
    processor = UMedPTImageProcessor(do_resize=False, do_normalize=False, modality="rgb")
    first = processor(hwc, input_data_format="channels_first")["pixel_values"][0]
    last = processor(hwc, input_data_format="channels_last")["pixel_values"][0]
    assert first.shape == (3, 20, 3) and last.shape == (3, 3, 20)
    assert torch.equal(last, torch.from_numpy(hwc.transpose(2, 0, 1) / np.float32(255)))
    assert torch.equal(first, torch.from_numpy(hwc / np.float32(255)))
    with pytest.raises(ValueError, match="channels_last"):
        processor(rng.integers(0, 256, (3, 20, 7), dtype=np.uint8), input_data_format="channels_last")
    with pytest.raises(ValueError, match="input_data_format"):
        processor(hwc, input_data_format="rows_first")


def test_data_format_channels_last_output():
    processor = UMedPTImageProcessor(size={"height": 16, "width": 24})
    first = processor(GREY)["pixel_values"]
    last = processor(GREY, data_format="channels_last")["pixel_values"]
    assert last.shape == (1, 16, 24, 3) and torch.equal(last, first.permute(0, 2, 3, 1))


def test_channels_are_matched_after_resizing_grey_and_rgb_alike():
    grey = (GREY * 255).astype(np.uint8)
    processor = UMedPTImageProcessor(size={"height": 16, "width": 16}, modality="rgb")
    from_grey = processor(grey)["pixel_values"]
    from_rgb = processor(np.stack([grey] * 3, axis=-1))["pixel_values"]
    torch.testing.assert_close(from_grey, from_rgb, rtol=0, atol=1e-6)
