"""UMedPTImageProcessor: inputs, intensity rules, mask/box geometry, round trip, post-processing, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers.loss.loss_for_object_detection import box_iou
from transformers.modeling_outputs import ImageClassifierOutput, SemanticSegmenterOutput

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.image_transforms_umedpt import CT_WINDOWS
from umedpt_hf.post_processing_umedpt import batched_nms

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw_processor(**kwargs) -> UMedPTImageProcessor:
    """No resize, no normalisation: pixel_values are the intensity-scaled values."""
    return UMedPTImageProcessor(do_resize=False, do_normalize=False, **kwargs)


# ------------------------------------------------------------------------------------------------------------ inputs
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


# --------------------------------------------------------------------------------------------------------- intensity
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


# ---------------------------------------------------------------------------------------------------------- geometry
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


# ------------------------------------------------------------------------------------------------------- round trip
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


REMOTE_LOAD = """
import sys
sys.modules["umedpt_hf"] = None  # the package must not be needed
import numpy as np
from transformers import AutoImageProcessor
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
image = np.linspace(-1000, 1000, 70 * 40).reshape(70, 40).astype(np.int16)
print(type(processor).__name__, float(processor(image)["pixel_values"].double().sum()))
"""


def test_remote_code_loading_without_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(UMedPTImageProcessor, "_auto_class", "AutoImageProcessor")
    processor = UMedPTImageProcessor(size={"height": 32, "width": 32}, modality="ct", window="lung", do_pad=True)
    processor.save_pretrained(tmp_path / "saved")
    copied = {p.name for p in (tmp_path / "saved").glob("*.py")}
    assert copied == {"image_processing_umedpt.py", "image_transforms_umedpt.py", "post_processing_umedpt.py"}
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_LOAD, str(tmp_path / "saved")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    name, total = result.stdout.split()
    image = np.linspace(-1000, 1000, 70 * 40).reshape(70, 40).astype(np.int16)
    assert name == "UMedPTImageProcessor"
    assert float(total) == pytest.approx(float(processor(image)["pixel_values"].double().sum()), rel=1e-9)


# --------------------------------------------------------------------------------------------------- post-processing
def test_post_process_semantic_segmentation_crops_padding():
    processor = UMedPTImageProcessor(size={"height": 32, "width": 32}, do_pad=True)
    logits = torch.zeros(1, 3, 32, 32)
    logits[0, 1, :, :16] = 5.0  # content of a 100 x 50 image is 32 x 16
    logits[0, 2, :, 16:] = 5.0  # padding
    (label_map,) = processor.post_process_semantic_segmentation(SemanticSegmenterOutput(logits=logits), [(100, 50)])
    assert label_map.shape == (100, 50) and label_map.dtype == torch.long and (label_map == 1).all()
    plain = UMedPTImageProcessor(size={"height": 32, "width": 32}).post_process_semantic_segmentation(
        SemanticSegmenterOutput(logits=torch.randn(2, 4, 32, 32))
    )
    assert [m.shape for m in plain] == [(32, 32), (32, 32)]


def _detection_outputs(boxes, classes, class_logit=4.0, centerness=2.0, num_classes=3):
    anchors = len(boxes)
    logits = torch.full((1, anchors, num_classes), -10.0)
    for i, c in enumerate(classes):
        logits[0, i, c] = class_logit
    return {
        "logits": logits,
        "pred_boxes": torch.tensor([boxes], dtype=torch.float32),
        "centerness_logits": torch.full((1, anchors), centerness),
    }


def test_post_process_object_detection_scores_nms_and_absolute_boxes():
    processor = UMedPTImageProcessor(size={"height": 64, "width": 64})
    boxes = [[0.5, 0.5, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]]
    outputs = _detection_outputs(boxes, classes=[0, 0, 1, 0])
    outputs["logits"][0, 1, 0] = 3.0  # the weaker duplicate of box 0
    (result,) = processor.post_process_object_detection(outputs, threshold=0.3, target_sizes=[(200, 100)])
    expected_score = (torch.sigmoid(torch.tensor(4.0)) * torch.sigmoid(torch.tensor(2.0))).sqrt().item()
    assert sorted(result["labels"].tolist()) == [0, 0, 1]  # duplicate suppressed, other class kept
    assert result["scores"][0].item() == pytest.approx(expected_score, rel=1e-6)
    kept = {tuple(round(v, 3) for v in b) for b in result["boxes"].tolist()}
    assert (40.0, 80.0, 60.0, 120.0) in kept and (15.0, 30.0, 25.0, 50.0) in kept
    (none,) = processor.post_process_object_detection(outputs, threshold=0.99)
    assert none["boxes"].shape == (0, 4)


def test_post_process_object_detection_undoes_padding():
    processor = UMedPTImageProcessor(size={"height": 64, "width": 64}, do_pad=True)
    image = np.zeros((100, 50), np.uint8)
    encoded = processor(image, boxes=[[0.5, 0.5, 0.4, 0.2]], box_labels=[0])["labels"][0]["boxes"][0].tolist()
    (result,) = processor.post_process_object_detection(
        _detection_outputs([encoded], [0]), threshold=0.1, target_sizes=[(100, 50)]
    )
    assert result["boxes"][0].tolist() == pytest.approx([15.0, 40.0, 35.0, 60.0], abs=1e-4)


@FUZZ
@given(data=st.data(), count=st.integers(0, 30), threshold=st.sampled_from([0.3, 0.5, 0.6]))
def test_class_wise_nms_properties(data, count, threshold):
    xy = data.draw(st.lists(st.tuples(*[st.floats(0, 50)] * 2), min_size=count, max_size=count))
    wh = data.draw(st.lists(st.tuples(*[st.floats(1, 30)] * 2), min_size=count, max_size=count))
    boxes = torch.tensor([[x, y, x + w, y + h] for (x, y), (w, h) in zip(xy, wh)]).reshape(-1, 4)
    scores = torch.tensor(data.draw(st.lists(st.floats(0, 1), min_size=count, max_size=count)))
    classes = torch.tensor(data.draw(st.lists(st.integers(0, 2), min_size=count, max_size=count)), dtype=torch.long)
    keep = batched_nms(boxes, scores, classes, threshold).tolist()
    assert len(set(keep)) == len(keep)
    assert scores[keep].tolist() == sorted(scores[keep].tolist(), reverse=True)
    if count:
        iou = box_iou(boxes, boxes)[0]
        same = classes[:, None] == classes[None, :]
        for a in keep:  # kept boxes of one class never overlap above the threshold
            for b in keep:
                assert a == b or not (same[a, b] and iou[a, b] > threshold + 1e-6)
        for i in set(range(count)) - set(keep):  # every dropped box is covered by a kept one of its class
            assert any(same[i, k] and iou[i, k] > threshold - 1e-6 and scores[k] >= scores[i] for k in keep)


def test_post_process_image_classification():
    processor = UMedPTImageProcessor()
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    results = processor.post_process_image_classification(
        ImageClassifierOutput(logits=logits), label_names=["normal", "effusion", "nodule"]
    )
    assert [r[0]["label"] for r in results] == ["effusion", "normal"]
    assert sum(e["score"] for e in results[0]) == pytest.approx(1.0)
    multi = processor.post_process_image_classification(logits, label_names={0: "a", 1: "b", 2: "c"}, multilabel=True)
    assert [e["label"] for e in multi[0]] == ["b", "c", "a"] and [e["label"] for e in multi[1]] == ["a", "b", "c"]
    assert processor.post_process_image_classification(logits, top_k=1)[1] == [
        {"label": "0", "label_id": 0, "score": pytest.approx(torch.softmax(logits[1], 0)[0].item())}
    ]


def test_processor_model_post_processing_end_to_end():
    from umedpt_hf import UMedPTForMultiTask, tiny_config

    tasks = {
        "nuclei": {"type": "detection", "labels": ["nucleus", "debris"], "modality": "microscopy"},
        "tissue": {"type": "segmentation", "labels": ["background", "grey", "white"], "modality": "microscopy"},
        "stain": {"type": "classification", "labels": ["he", "ihc"], "modality": "microscopy"},
    }
    torch.manual_seed(0)
    model = UMedPTForMultiTask(tiny_config(tasks=tasks)).eval()
    processor = UMedPTImageProcessor.from_model_config(model.config, size={"height": 64, "width": 64}, do_pad=True)
    assert processor.modality == "microscopy"
    images = [np.random.default_rng(i).integers(0, 256, (80, 50, 3), dtype=np.uint8) for i in range(2)]
    masks = [np.zeros((80, 50), np.uint8), np.ones((80, 50), np.uint8)]
    boxes, box_labels = [[[0.4, 0.3, 0.4, 0.3]], np.zeros((0, 4))], [[1], []]

    detection = processor(images, boxes=boxes, box_labels=box_labels)
    outputs = model(detection["pixel_values"], task="nuclei", labels=detection["labels"])
    assert torch.isfinite(outputs.loss)
    results = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=detection["original_sizes"])
    for result in results:
        assert set(result) == {"scores", "labels", "boxes"} and 0 < len(result["boxes"]) <= 100
        assert (result["boxes"][:, 2:] <= torch.tensor([50.0, 80.0]) + 1e-4).all() and (result["boxes"] >= 0).all()

    segmentation = processor(images, segmentation_maps=masks)
    outputs = model(segmentation["pixel_values"], task="tissue", labels=segmentation["labels"])
    assert torch.isfinite(outputs.loss)
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=segmentation["original_sizes"])
    assert [m.shape for m in maps] == [(80, 50), (80, 50)] and maps[0].max() < 3

    outputs = model(segmentation["pixel_values"], task="stain")
    ranked = processor.post_process_image_classification(outputs, label_names=tasks["stain"]["labels"])
    assert {entry["label"] for entry in ranked[0]} == {"he", "ihc"}


# --------------------------------------------------------------------------------------------------------- bad input
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
