"""Post-processing (post_processing_umedpt): label maps and scores, FCOS decoding with NMS, ranked classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers.loss.loss_for_object_detection import box_iou
from transformers.modeling_outputs import ImageClassifierOutput, SemanticSegmenterOutput

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.post_processing_umedpt import batched_nms

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


def test_segmentation_scores_follow_the_padding_crop_and_target_size():
    processor = UMedPTImageProcessor(size={"height": 32, "width": 32}, do_pad=True)
    logits = torch.randn(1, 4, 32, 32)
    outputs = SemanticSegmenterOutput(logits=logits)
    (result,) = processor.post_process_semantic_segmentation(outputs, [(100, 50)], return_segmentation_scores=True)
    (label_map,) = processor.post_process_semantic_segmentation(outputs, [(100, 50)])
    assert result.segmentation_scores.shape == (4, 100, 50)
    assert torch.equal(result.segmentation, label_map) and torch.equal(result.segmentation_scores.argmax(0), label_map)
    expected = torch.nn.functional.interpolate(logits[:, :, :, :16], (100, 50), mode="bilinear", align_corners=False)
    torch.testing.assert_close(result.segmentation_scores, expected[0])
