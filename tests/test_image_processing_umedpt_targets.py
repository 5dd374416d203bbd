"""Targets (image_targets_umedpt): mask values and boxes are checked, never cast or clipped quietly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

IMAGE = np.zeros((20, 10), np.uint8)


def processor() -> UMedPTImageProcessor:
    return UMedPTImageProcessor(size={"height": 16, "width": 16})


def test_mask_values_beyond_the_classes_are_named():
    mask = np.zeros((20, 10), np.uint16)
    mask[0, 0], mask[1, 1] = 300, 256  # a uint8 cast would wrap these to 44 and 0
    with pytest.raises(ValueError, match=r"label value\(s\) 256, 300 beyond the 3 classes"):
        processor()(IMAGE, segmentation_maps=mask, num_labels=3)
    with_table = UMedPTImageProcessor(size=16, task_preprocessing={"seg": {"num_labels": 3}})
    with pytest.raises(ValueError, match="image 1 of task 'seg'"):  # the task's label count applies
        with_table([IMAGE, IMAGE], segmentation_maps=[np.zeros_like(mask), mask], task="seg")


def test_the_ignore_label_and_16_bit_png_masks_pass():
    mask = np.full((20, 10), 255, np.uint16)
    mask[:10] = 2
    out = processor()(IMAGE, segmentation_maps=Image.fromarray(mask), num_labels=3)
    assert set(torch.unique(out["labels"]).tolist()) == {2, 255}
    wide = mask.astype(np.int32)
    wide[0, 0] = 70000  # labels beyond 16 bits stay exact too
    out = processor()(IMAGE, segmentation_maps=wide, num_labels=70001)
    assert 70000 in torch.unique(out["labels"]).tolist()


@pytest.mark.parametrize(
    ("boxes", "phrase"),
    [
        ([[0.5, 0.5, 0.0, 0.2]], "Box 0 of image 0 has zero or negative width"),
        ([[0.5, 0.5, 0.2, -0.1]], "zero or negative"),
        ([[0.95, 0.5, 0.2, 0.2]], "Box 0 of image 0 reaches outside the image"),
        ([[0.5, 0.5, 0.1, 0.1], [0.5, -0.2, 0.1, 0.1]], "Box 1 of image 0 reaches outside"),
        ([[0.5, 0.5, float("nan"), 0.1]], "NaN"),
    ],
)
def test_bad_boxes_are_errors(boxes, phrase):
    with pytest.raises(ValueError, match=phrase):
        processor()(IMAGE, boxes=boxes, box_labels=[0] * len(boxes))


def test_clip_boxes_clips_only_on_request_and_counts():
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.95, 0.5, 0.2, 0.2]]  # the second spans x 0.85 .. 1.05
    out = processor()(IMAGE, boxes=boxes, box_labels=[0, 1], clip_boxes=True)
    assert out["clipped_boxes"].tolist() == [1]
    np.testing.assert_allclose(out["labels"][0]["boxes"][1].tolist(), [0.925, 0.5, 0.15, 0.2], atol=1e-6)
    assert processor()(IMAGE, boxes=boxes[:1], box_labels=[0], clip_boxes=True)["clipped_boxes"].tolist() == [0]
    with pytest.raises(ValueError, match="wholly outside"):
        processor()(IMAGE, boxes=[[1.5, 0.5, 0.2, 0.2]], box_labels=[0], clip_boxes=True)


def test_box_labels_beyond_the_classes_are_named():
    with pytest.raises(ValueError, match=r"class\(es\) 4 beyond the 2 classes"):
        processor()(IMAGE, boxes=[[0.5, 0.5, 0.2, 0.2]], box_labels=[4], num_labels=2)
    with pytest.raises(ValueError, match="whole class indices"):
        processor()(IMAGE, boxes=[[0.5, 0.5, 0.2, 0.2]], box_labels=[0.5])
