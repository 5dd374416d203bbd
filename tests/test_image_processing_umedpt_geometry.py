"""Geometry of UMedPTImageProcessor (image_geometry_umedpt): resize, padding, masks and boxes staying aligned."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_masks_are_resized_nearest_and_padded_with_ignore():
    mask = np.zeros((100, 50), np.uint8)
    mask[:, 25:] = 3
    out = UMedPTImageProcessor(size={"height": 64, "width": 64}, do_pad=True)(
        np.zeros((100, 50)), segmentation_maps=mask
    )
    labels = out["labels"][0]
    assert labels.dtype == torch.long and labels.shape == (64, 64)
    assert set(torch.unique(labels).tolist()) == {0, 3, 255}
    assert (labels[:, 32:] == 255).all() and (labels[:, :32] != 255).all()  # content 64 x 32, then padding
    assert (labels[:, :16] == 0).all() and (labels[:, 16:32] == 3).all()
    padded = out["pixel_values"][0, :, :, 40:]
    expected = -torch.tensor(UMedPTImageProcessor().image_mean) / torch.tensor(UMedPTImageProcessor().image_std)
    assert torch.allclose(padded, expected[:, None, None].expand_as(padded))


def _box_of(mask: np.ndarray) -> np.ndarray:
    """xyxy pixel-edge box of the non-zero pixels."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


@FUZZ
@given(
    height=st.integers(40, 160),
    width=st.integers(40, 160),
    fractions=st.tuples(*[st.floats(0.05, 0.95)] * 4),
    target=st.tuples(st.sampled_from([32, 48, 64, 96]), st.sampled_from([32, 48, 64, 96])),
    do_pad=st.booleans(),
)
def test_mask_and_box_stay_aligned(height, width, fractions, target, do_pad):
    x0, x1 = sorted((round(fractions[0] * width), round(fractions[1] * width)))
    y0, y1 = sorted((round(fractions[2] * height), round(fractions[3] * height)))
    x0, y0 = min(x0, width - 8), min(y0, height - 8)
    x1, y1 = min(max(x1, x0 + 8), width), min(max(y1, y0 + 8), height)
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    box = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
    processor = UMedPTImageProcessor(size={"height": target[0], "width": target[1]}, do_pad=do_pad)
    out = processor(np.zeros((height, width), np.uint8), segmentation_maps=mask, boxes=[box], box_labels=[2])
    target_dict = out["labels"][0]
    assert target_dict["class_labels"].tolist() == [2]
    cx, cy, w, h = target_dict["boxes"][0].tolist()
    box_px = np.array(
        [(cx - w / 2) * target[1], (cy - h / 2) * target[0], (cx + w / 2) * target[1], (cy + h / 2) * target[0]]
    )
    resized_mask = target_dict["segmentation_map"].numpy() == 1
    assert np.abs(box_px - _box_of(resized_mask)).max() <= 1.5


def test_boxes_follow_padding_and_single_image_forms():
    processor = UMedPTImageProcessor(size={"height": 64, "width": 64}, do_pad=True)
    image = np.zeros((100, 50), np.uint8)  # content is 64 x 32 of the 64 x 64 canvas
    out = processor(image, boxes=np.array([[0.5, 0.5, 1.0, 1.0]]), box_labels=np.array([0]))
    assert out["labels"][0]["boxes"].tolist() == [[0.25, 0.5, 0.5, 1.0]]
    empty = processor(image, boxes=np.zeros((0, 4)), box_labels=[])
    assert empty["labels"][0]["boxes"].shape == (0, 4) and empty["labels"][0]["class_labels"].shape == (0,)
    two = processor([image, image], boxes=[[[0.5, 0.5, 0.2, 0.2]], []], box_labels=[[1], []])
    assert [len(t["boxes"]) for t in two["labels"]] == [1, 0]


def test_mask_resize_by_indexing_matches_torch_nearest_exact():
    from umedpt_hf.image_geometry_umedpt import resize_mask

    rng = np.random.default_rng(0)
    for source, target in (((37, 53), (16, 24)), ((16, 16), (64, 40)), ((100, 7), (33, 33))):
        mask = rng.integers(0, 1000, source)
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(mask)[None, None].double(), target, mode="nearest-exact"
        )
        assert torch.equal(resize_mask(mask, *target), expected[0, 0].long())


def test_16_bit_masks_keep_their_values_through_resize_and_padding():
    mask = np.zeros((60, 30), np.uint16)
    mask[:, 10:20] = 300
    mask[:, 20:] = 1000
    out = UMedPTImageProcessor(size={"height": 32, "width": 32}, do_pad=True)(
        np.zeros((60, 30), np.uint8), segmentation_maps=mask, num_labels=1001
    )
    assert set(torch.unique(out["labels"]).tolist()) == {0, 255, 300, 1000}
