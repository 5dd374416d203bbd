"""Intensity rules of UMedPTImageProcessor (image_intensity_umedpt): dtype, percentile, CT windows, value ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from umedpt_hf.image_intensity_umedpt import CT_WINDOWS
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor


def raw_processor(**kwargs) -> UMedPTImageProcessor:
    """No resize, no normalisation: pixel_values are the intensity-scaled values."""
    return UMedPTImageProcessor(do_resize=False, do_normalize=False, **kwargs)


def test_16_bit_values_are_not_quantised_to_8_bits():
    # four grey levels 1 apart in 16-bit: an 8-bit round trip would merge them
    image = np.repeat(np.array([[1000, 1001, 1002, 1003]], dtype=np.uint16), 64, axis=0).repeat(16, axis=1)
    scaled = raw_processor(intensity_scaling="minmax")(image)["pixel_values"][0, 0]
    assert torch.allclose(torch.unique(scaled), torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]), atol=1e-6)
    # resizing happens in float: still four distinct levels (plus anti-aliased transitions), never collapsed
    resized = UMedPTImageProcessor(size={"height": 32, "width": 32}, do_normalize=False, intensity_scaling="minmax")(
        image
    )["pixel_values"][0, 0]
    assert resized[:, 2].abs().max().item() == pytest.approx(0.0, abs=1e-6)
    assert resized[:, -2].min().item() == pytest.approx(1.0, abs=1e-6)
    assert len(torch.unique(resized.round(decimals=5))) >= 4


def test_uint8_and_uint16_dtype_scaling():
    assert raw_processor(modality="microscopy")(np.full((8, 8, 3), 51, np.uint8))["pixel_values"].max() == (
        pytest.approx(0.2)
    )
    assert raw_processor(intensity_scaling="dtype")(np.full((8, 8), 65535, np.uint16))["pixel_values"].min() == 1.0


def test_percentile_clipping_ignores_outliers():
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 2000, size=(100, 100)).astype(np.uint16)
    image[0, 0] = 65000  # a burned-in marker
    scaled = raw_processor(modality="xray")(image)["pixel_values"][0, 0]
    low, high = np.percentile(image, [0.5, 99.5])
    assert high < 2000
    expected = np.clip((image.astype(np.float64) - low) / (high - low), 0, 1)
    np.testing.assert_allclose(scaled.numpy(), expected, atol=1e-6)
    minmax = raw_processor(modality="xray", intensity_scaling="minmax")(image)["pixel_values"][0, 0]
    assert minmax.median() < 0.05  # min-max lets the outlier squash the image
    wide = raw_processor(modality="mri", percentiles=(2.0, 98.0))(image)["pixel_values"][0, 0]
    assert (wide == 1.0).float().mean() > (scaled == 1.0).float().mean()


HU = {"air": -1000, "fat": -100, "water": 0, "soft_tissue": 40, "bone": 1000}


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("lung", {"air": 350 / 1500, "fat": 1250 / 1500, "water": 0.9, "soft_tissue": 1390 / 1500, "bone": 1.0}),
        ("soft_tissue", {"air": 0.0, "fat": 0.15, "water": 0.4, "soft_tissue": 0.5, "bone": 1.0}),
        ("bone", {"air": 0.0, "fat": 400 / 1800, "water": 500 / 1800, "soft_tissue": 540 / 1800, "bone": 1500 / 1800}),
        ("brain", {"air": 0.0, "fat": 0.0, "water": 0.0, "soft_tissue": 0.5, "bone": 1.0}),
        ((40, 400), {"air": 0.0, "fat": 0.15, "water": 0.4, "soft_tissue": 0.5, "bone": 1.0}),
    ],
)
def test_ct_windows_on_tissue_values(window, expected):
    image = np.array([[HU[t] for t in expected]], dtype=np.int16)
    scaled = raw_processor(modality="ct", window=window)(image)["pixel_values"][0, 0, 0]
    np.testing.assert_allclose(scaled.numpy(), list(expected.values()), atol=1e-6)


def test_ct_window_presets_and_multi_window_channels():
    assert CT_WINDOWS["lung"] == (-600.0, 1500.0) and CT_WINDOWS["bone"] == (400.0, 1800.0)
    image = np.array([[HU["air"], HU["soft_tissue"], HU["bone"]]], dtype=np.int16)
    out = raw_processor(modality="ct", window=["lung", "soft_tissue", "bone"])(image)["pixel_values"][0]
    assert out.shape == (3, 1, 3)
    assert out[1, 0].tolist() == pytest.approx([0.0, 0.5, 1.0])  # the soft-tissue channel
    assert out[0, 0, 0] == pytest.approx(350 / 1500)  # air in the lung channel


def test_float_hu_is_windowed_like_int16():
    image = np.linspace(-1200, 1500, 64 * 64).reshape(64, 64)
    a = raw_processor(modality="ct", window="lung")(image.astype(np.float32))["pixel_values"]
    b = raw_processor(modality="ct", window="lung")(image.round().astype(np.int16))["pixel_values"]
    assert torch.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.uint32])
def test_histogram_percentiles_equal_numpys(dtype):
    from umedpt_hf.image_intensity_umedpt import percentile_range

    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    for low, high in ((info.min, min(info.max, info.min + 60000)), (max(info.min, -1000), min(info.max, 3000))):
        for count in (1, 2, 7, 5000):
            image = rng.integers(low, high, count, endpoint=True).astype(dtype)
            for q in ((0.5, 99.5), (0.0, 100.0), (37.1, 62.9)):
                expected = np.percentile(image.astype(np.float64), q)
                np.testing.assert_allclose(percentile_range(image, *q), expected, rtol=1e-12, atol=1e-9)


def test_the_same_values_give_the_same_pixels_whatever_the_integer_dtype():
    hu = np.random.default_rng(0).integers(-1024, 3000, (50, 40))
    for modality in ("ct", "xray"):
        outputs = [
            raw_processor(modality=modality)(hu.astype(dtype))["pixel_values"]
            for dtype in (np.int16, np.int32, np.int64)
        ]
        assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2]), modality


def test_value_range_replaces_the_per_image_statistics():
    image = np.array([[0, 500, 1000, 4000]], dtype=np.uint16)
    scaled = raw_processor(modality="xray", value_range=(500, 1500))(image)["pixel_values"][0, 0, 0]
    assert scaled.tolist() == [0.0, 0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("setting", "phrase"),
    [
        ({"value_range": (0, float("inf"))}, "finite"),
        ({"value_range": (float("nan"), 1)}, "finite"),
        ({"value_range": (5, 5)}, "low < high"),
        ({"value_range": (1, 2, 3)}, "two numbers"),
        ({"window": (float("nan"), 400)}, "finite"),
        ({"window": (40, float("inf"))}, "finite"),
        ({"percentiles": (float("nan"), 99)}, "percentiles"),
    ],
)
def test_non_finite_windows_and_ranges_are_errors(setting, phrase):
    image = np.zeros((8, 8), np.int16)
    with pytest.raises(ValueError, match=phrase):
        raw_processor(modality="ct" if "window" in setting else "xray")(image, **setting)
    with pytest.raises(ValueError, match=phrase):
        UMedPTImageProcessor(**setting)
