"""Reliability of UMedPTImageProcessor: bad pixels, dtypes, masks, boxes, settings and saved configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from reliability_cases import Case, case_id, run_case

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

OK = np.zeros((20, 10), np.uint8)


def call(*args, processor_kwargs=None, **kwargs):
    """An action: the processor (16 x 16 output) called on `args` / `kwargs`."""
    return lambda folder, prepared: UMedPTImageProcessor(size=16, **(processor_kwargs or {}))(*args, **kwargs)


def mask_with(value: int, dtype=np.uint16) -> np.ndarray:
    mask = np.zeros(OK.shape, dtype)
    mask[3, 4] = value
    return mask


def saved_config(settings: dict):
    """A prepare step: a processor folder whose preprocessor_config.json holds `settings`."""

    def prepare(folder):
        (folder / "proc").mkdir()
        (folder / "proc" / "preprocessor_config.json").write_text(
            json.dumps({"image_processor_type": "UMedPTImageProcessor", **settings})
        )

    return prepare


def load_saved(folder, prepared):
    return UMedPTImageProcessor.from_pretrained(folder / "proc")


def pixels_check(shape):
    def check(result, folder):
        assert tuple(result["pixel_values"].shape) == shape and torch.isfinite(result["pixel_values"]).all()

    return check


CASES = [
    # pixels and containers
    Case("NaN pixel", call(np.full((8, 8), np.nan, np.float32)), error=ValueError, phrase="NaN"),
    Case("infinite pixel", call(np.array([[0.0, np.inf]], np.float32)), error=ValueError, phrase="infinite"),
    Case("empty array", call(np.zeros((0, 5), np.uint8)), error=ValueError, phrase="empty"),
    Case("4-D array", call(np.zeros((2, 3, 8, 8), np.float32)), error=ValueError, phrase="4-D"),
    Case("3-D volume as one image", call(np.zeros((7, 8, 9), np.float32)), error=ValueError, phrase="iter_slices"),
    Case("complex pixels", call(np.zeros((8, 8), np.complex64)), error=TypeError, phrase="complex64"),
    Case("boolean image", call(np.zeros((8, 8), bool)), error=TypeError, phrase="bool"),
    Case("object array", call(np.array([[object()]], dtype=object)), error=TypeError, phrase="object"),
    Case("a file name instead of an image", call("chest.png"), error=TypeError, phrase="str"),
    Case("empty list of images", call([]), error=ValueError, phrase="empty list"),
    Case(
        "channels_last stated for a channels-first array",
        call(np.zeros((3, 20, 10), np.uint8), input_data_format="channels_last"),
        error=ValueError,
        phrase="as channels_last",
    ),
    Case(
        "different sizes without resizing",
        call([OK, np.zeros((5, 5), np.uint8)], processor_kwargs={"do_resize": False}),
        error=ValueError,
        phrase="different sizes",
    ),
    Case(
        "constant image is fine",
        call(np.full((9, 7), 1234, np.uint16), modality="xray"),
        check=pixels_check((1, 3, 16, 16)),
    ),
    Case("one-pixel image is fine", call(np.ones((1, 1), np.int16), modality="ct"), check=pixels_check((1, 3, 16, 16))),
    # masks
    Case(
        "16-bit mask value 300 with 3 classes",
        call(OK, segmentation_maps=mask_with(300), num_labels=3),
        error=ValueError,
        phrase=r"label value\(s\) 300 beyond the 3 classes",
    ),
    Case(
        "16-bit mask value 256 (0 after a uint8 cast)",
        call(OK, segmentation_maps=mask_with(256), num_labels=3),
        error=ValueError,
        phrase="256 beyond",
    ),
    Case(
        "16-bit mask labels that exist stay exact",
        call(OK, segmentation_maps=mask_with(1000), num_labels=1001),
        check=lambda result, folder: np.testing.assert_array_equal(torch.unique(result["labels"]).tolist(), [0, 1000]),
    ),
    Case(
        "negative mask label",
        call(OK, segmentation_maps=mask_with(-2, np.int16)),
        error=ValueError,
        phrase="negative label",
    ),
    Case(
        "fractional float mask",
        call(OK, segmentation_maps=mask_with(1).astype(np.float32) * 0.5),
        error=ValueError,
        phrase="whole class indices",
    ),
    Case("mask of another size", call(OK, segmentation_maps=np.zeros((19, 10))), error=ValueError, phrase="differs"),
    # boxes
    Case(
        "box partly outside the image",
        call(OK, boxes=[[0.95, 0.5, 0.2, 0.2]], box_labels=[0]),
        error=ValueError,
        phrase="Box 0 of image 0 reaches outside",
    ),
    Case(
        "zero-width box",
        call(OK, boxes=[[0.5, 0.5, 0.1, 0.1], [0.5, 0.5, 0.0, 0.2]], box_labels=[0, 0]),
        error=ValueError,
        phrase="Box 1 of image 0 has zero or negative width",
    ),
    Case(
        "box wholly outside, clipping asked",
        call(OK, boxes=[[1.5, 0.5, 0.2, 0.2]], box_labels=[0], clip_boxes=True),
        error=ValueError,
        phrase="wholly outside",
    ),
    Case(
        "box partly outside, clipping asked: clipped and counted",
        call(OK, boxes=[[0.95, 0.5, 0.2, 0.2]], box_labels=[0], clip_boxes=True),
        check=lambda result, folder: np.testing.assert_array_equal(result["clipped_boxes"].tolist(), [1]),
    ),
    Case("NaN box", call(OK, boxes=[[0.5, np.nan, 0.1, 0.1]], box_labels=[0]), error=ValueError, phrase="NaN"),
    Case(
        "box label beyond the classes",
        call(OK, boxes=[[0.5, 0.5, 0.1, 0.1]], box_labels=[3], num_labels=2),
        error=ValueError,
        phrase=r"class\(es\) 3 beyond the 2 classes",
    ),
    Case("labels without boxes", call(OK, box_labels=[0]), error=ValueError, phrase="without boxes"),
    # settings
    Case("infinite value_range", call(OK, value_range=(0, float("inf"))), error=ValueError, phrase="finite"),
    Case(
        "NaN CT window centre", call(OK, modality="ct", window=(float("nan"), 400)), error=ValueError, phrase="finite"
    ),
    Case("unknown modality name", call(OK, modality="xrays"), error=ValueError, phrase="Unknown modality 'xrays'"),
    Case("unknown CT window name", call(OK, modality="ct", window="lungs"), error=ValueError, phrase="'lungs'"),
    Case("unknown task name", call(OK, task="chest"), error=ValueError, phrase="Unknown task 'chest'"),
    Case("misspelt argument", call(OK, windw="lung"), error=TypeError, phrase="windw"),
    Case("reversed percentiles", call(OK, percentiles=(99, 1)), error=ValueError, phrase="percentiles"),
    Case(
        "two channels",
        lambda folder, prepared: UMedPTImageProcessor(num_channels=2),
        error=ValueError,
        phrase="num_channels must be 1 or 3",
    ),
    Case(
        "image_mean of the wrong length",
        call(OK, image_mean=(0.5, 0.5)),
        error=ValueError,
        phrase="image_mean/image_std have 2/3",
    ),
    # saved configs
    Case(
        "preprocessor_config.json is not JSON",
        load_saved,
        prepare=lambda folder: (
            (folder / "proc").mkdir(),
            (folder / "proc" / "preprocessor_config.json").write_text("{x"),
        ),
        error=OSError,
        phrase="not a valid JSON file",
    ),
    Case(
        "saved task entry with a misspelt setting",
        load_saved,
        prepare=saved_config({"task_preprocessing": {"head_ct": {"windw": "brain"}}}),
        error=ValueError,
        phrase=r"task_preprocessing\['head_ct'\] has unknown setting",
    ),
    Case(
        "saved infinite value_range (JSON 1e999)",
        load_saved,
        prepare=lambda folder: (
            (folder / "proc").mkdir(),
            (folder / "proc" / "preprocessor_config.json").write_text('{"value_range": [0, 1e999]}'),
        ),
        error=ValueError,
        phrase="finite",
    ),
    Case(
        "saved default task that is not recorded",
        load_saved,
        prepare=saved_config({"task": "chest", "task_preprocessing": {}}),
        error=ValueError,
        phrase="Unknown task 'chest'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_processor(case, tmp_path):
    run_case(case, tmp_path)
