"""UMedPTImageProcessor as a whole: save/load round trip, Auto class, bad input, fuzzing (only clear errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_save_pretrained_round_trip(tmp_path):
    processor = UMedPTImageProcessor(
        size={"height": 48, "width": 32},
        num_channels=1,
        modality="ct",
        window=(50, 350),
        do_pad=True,
        percentiles=(1.0, 99.0),
        mask_pad_value=254,
    )
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    for field in ("size", "num_channels", "modality", "window", "do_pad", "percentiles", "image_mean", "image_std"):
        assert field in saved
    assert saved["window"] == [50, 350] and saved["num_channels"] == 1 and saved["intensity_scaling"] is None
    loaded = UMedPTImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    image = np.linspace(-1000, 1000, 70 * 40).reshape(70, 40).astype(np.int16)
    assert torch.equal(loaded(image)["pixel_values"], processor(image)["pixel_values"])


OK = np.zeros((16, 16), np.uint8)
BAD_CALLS = {
    "NaN pixel": (lambda p: p(np.full((8, 8), np.nan, np.float32)), ValueError, "NaN"),
    "inf pixel": (lambda p: p(np.array([[0.0, np.inf]], np.float32)), ValueError, "infinite"),
    "empty array": (lambda p: p(np.zeros((0, 5), np.uint8)), ValueError, "Empty"),
    "empty list": (lambda p: p([]), ValueError, "empty list"),
    "4-D array": (lambda p: p(np.zeros((2, 3, 8, 8), np.float32)), ValueError, "4-D"),
    "3-D volume": (lambda p: p(np.zeros((7, 8, 9), np.float32)), ValueError, "iter_slices"),
    "complex dtype": (lambda p: p(np.zeros((8, 8), np.complex64)), TypeError, "complex64"),
    "bool image": (lambda p: p(np.zeros((8, 8), bool)), TypeError, "bool"),
    "string input": (lambda p: p("chest.png"), TypeError, "str"),
    "mask shape": (lambda p: p(OK, segmentation_maps=np.zeros((15, 16), np.uint8)), ValueError, "differs"),
    "negative mask": (lambda p: p(OK, segmentation_maps=np.full((16, 16), -1)), ValueError, "negative"),
    "box outside": (lambda p: p(OK, boxes=[[0.9, 0.5, 0.4, 0.2]], box_labels=[0]), ValueError, "outside"),
    "negative box size": (lambda p: p(OK, boxes=[[0.5, 0.5, -0.1, 0.2]], box_labels=[0]), ValueError, "negative"),
    "box shape": (lambda p: p(OK, boxes=[[0.5, 0.5, 0.1]], box_labels=[0]), ValueError, "(N, 4)"),
    "labels missing": (lambda p: p(OK, boxes=[[0.5, 0.5, 0.1, 0.1]]), ValueError, "box_labels"),
    "label count": (lambda p: p(OK, boxes=[[0.5, 0.5, 0.1, 0.1]], box_labels=[0, 1]), ValueError, "1 boxes but 2"),
    "unknown modality": (lambda p: p(OK, modality="xrays"), ValueError, "modality"),
    "unknown window": (lambda p: p(OK, modality="ct", window="lungs"), ValueError, "window"),
    "bad window width": (lambda p: p(OK, modality="ct", window=(40, -5)), ValueError, "width"),
    "unknown argument": (lambda p: p(OK, windw="lung"), TypeError, "windw"),
    "float out of range": (lambda p: p(np.full((4, 4), 7.0), modality="histology"), ValueError, "[0, 1]"),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input_raises_a_clear_error(name):
    call, error, fragment = BAD_CALLS[name]
    with pytest.raises(error, match=None) as info:
        call(UMedPTImageProcessor(size={"height": 16, "width": 16}))
    assert fragment in str(info.value)


def test_bad_settings_at_construction():
    with pytest.raises(ValueError, match="num_channels"):
        UMedPTImageProcessor(num_channels=2)
    with pytest.raises(ValueError, match="modality"):
        UMedPTImageProcessor(modality="photo")
    with pytest.raises(ValueError, match="percentiles"):
        UMedPTImageProcessor(percentiles=(99, 1))
    with pytest.raises(ValueError, match="do_center_crop"):
        UMedPTImageProcessor(do_center_crop=True)
    with pytest.raises(ValueError, match="size"):
        UMedPTImageProcessor()(OK, size="large")
    assert UMedPTImageProcessor(size=40)(OK)["pixel_values"].shape == (1, 3, 40, 40)


DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.int8, np.uint32]
ODD_DTYPES = [np.bool_, np.complex64, np.complex128, object]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        st.tuples(st.integers(1, 30), st.integers(1, 30), st.sampled_from([1, 3, 4])),
        st.tuples(st.sampled_from([1, 3]), st.integers(1, 30), st.integers(1, 30)),
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 5)),
        st.tuples(*[st.integers(1, 4)] * 4),
    ),
    dtype=st.sampled_from(DTYPES * 3 + ODD_DTYPES),
    fill=st.sampled_from(["random"] * 4 + ["constant", "nan", "inf", "huge"]),
    modality=st.sampled_from([None, "xray", "ct", "ct", "mri", "microscopy", "histology", "mammography", "photo"]),
    window=st.sampled_from([None] * 4 + ["lung", "brain", (40, 400), "nope", (0, 0)]),
    num_channels=st.sampled_from([1, 3]),
    do_pad=st.booleans(),
    as_tensor=st.booleans(),
)
def test_fuzz_only_clear_errors_escape(shape, dtype, fill, modality, window, num_channels, do_pad, as_tensor):
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1000, size=shape)
    if fill == "constant":
        values[...] = 3
    elif fill == "nan" and values.size:
        values.flat[0] = np.nan
    elif fill == "inf" and values.size:
        values.flat[-1] = -np.inf
    elif fill == "huge":
        values *= 1e30
    with np.errstate(all="ignore"):
        image = values.astype(dtype) if dtype is not object else values.astype(object)
    if as_tensor and dtype in (np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64, np.bool_):
        image = torch.from_numpy(np.ascontiguousarray(image))
    processor = UMedPTImageProcessor(size={"height": 16, "width": 24}, num_channels=num_channels, do_pad=do_pad)
    try:
        out = processor(image, modality=modality, window=window)
    except (ValueError, TypeError) as error:
        event(f"{type(error).__name__}: {str(error)[:30]}")
        assert str(error)
        return
    event("processed")
    assert out["pixel_values"].shape == (1, num_channels, 16, 24)
    assert torch.isfinite(out["pixel_values"]).all()


@FUZZ
@given(
    height=st.integers(1, 50),
    width=st.integers(1, 50),
    layout=st.sampled_from(["hw", "hw1", "hw3", "1hw", "3hw"]),
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1.0, 1e4, 1e30, 1e308]),
    modality=st.sampled_from([None, "xray", "ct", "mri", "microscopy", "ultrasound"]),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    do_pad=st.booleans(),
)
def test_fuzz_valid_images_always_process(height, width, layout, dtype, scale, modality, size, do_pad):
    values = np.random.default_rng(height * width).normal(0, scale, size=(height, width))
    with np.errstate(all="ignore"):
        image = np.clip(values, *_dtype_range(dtype)).astype(dtype)
    image = {"hw": image, "hw1": image[..., None], "hw3": np.stack([image] * 3, -1), "1hw": image[None]}.get(
        layout, np.stack([image] * 3)
    )
    processor = UMedPTImageProcessor(size={"height": size[0], "width": size[1]}, do_pad=do_pad)
    if modality == "microscopy" and np.dtype(dtype).kind == "f" and (image.min() < 0 or image.max() > 1):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            processor(image, modality=modality)
        return
    out = processor(image, modality=modality)
    assert out["pixel_values"].shape == (1, 3, *size)
    assert torch.isfinite(out["pixel_values"]).all()


def _dtype_range(dtype) -> tuple[float, float]:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else np.finfo(dtype)
    return float(info.min), float(info.max)


def test_auto_image_processor_finds_the_registered_class(tmp_path):
    from transformers import AutoImageProcessor

    import umedpt_hf  # noqa: F401  (registers the Auto classes)

    UMedPTImageProcessor(modality="ct", window="bone").save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded) is UMedPTImageProcessor
    assert loaded.modality == "ct" and loaded.window == "bone"


def test_the_readme_preprocessing_snippet_runs_as_written(tmp_path, monkeypatch):
    import re
    import runpy
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Preprocess medical images") :]
    section = section[: section.index("\n## ", 1)]
    script = tmp_path / "snippet.py"
    script.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(script))
    assert namespace["features"].shape[0] == namespace["volume"].shape[2]
    assert namespace["inputs"]["pixel_values"].shape == (1, 3, 128, 128)
    assert namespace["processor"].task_preprocessing["head_ct"]["window"] == "soft_tissue"
