from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, Features, Image
from evaluation_test_utils import IMAGE_SIDE, bar_dataset, bar_images, bar_splits

from umedpt_hf.evaluation.encoders import load_encoder, load_encoder_model
from umedpt_hf.evaluation.finetune import finetune_and_score, predict_proba, train_classifier, train_head
from umedpt_hf.evaluation.scarcity import run_data_scarcity
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.modeling_umedpt import UMedPTForImageClassification

SPEC = {"type": "classification", "labels": ["top", "middle", "bottom"], "modality": "xray"}


@pytest.fixture(scope="module")
def processor():
    return UMedPTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})


def test_train_head_on_features_learns_separable_classes():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = np.eye(3)[y] * 3 + rng.normal(size=(90, 3)) * 0.3
    probe = train_head(x[:60], y[:60], num_labels=3, epochs=20)
    assert probe.score(x[60:], y[60:])["accuracy"] > 0.9


def test_finetuning_the_encoder_leaves_the_original_untouched(tiny_checkpoint, processor):
    encoder = load_encoder_model(tiny_checkpoint)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    score = finetune_and_score(
        encoder, bar_dataset(12, 0), bar_dataset(9, 1), num_labels=3, processor=processor, train_encoder=True,
        epochs=1, min_steps=2, batch_size=6,
    )  # fmt: skip
    assert 0.0 <= score <= 1.0
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_train_classifier_on_the_single_task_class(tiny_checkpoint, processor):
    model = UMedPTForImageClassification.from_pretrained(
        tiny_checkpoint, num_labels=3, id2label=dict(enumerate(SPEC["labels"]))
    )
    head_before = model.classifier.state_dict()
    head_before = {k: v.clone() for k, v in head_before.items()}
    train_classifier(
        model, bar_dataset(12, 0), processor=processor, epochs=1, min_steps=2, batch_size=6, progress=False
    )
    assert any(not torch.equal(head_before[k], v) for k, v in model.classifier.state_dict().items())
    probabilities, labels = predict_proba(model, bar_dataset(6, 1), processor=processor)
    assert probabilities.shape == (6, 3) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_protocol_with_finetuning(tiny_checkpoint):
    encoder = load_encoder(tiny_checkpoint, name="umedpt")
    splits = bar_splits(24, 9, 12)
    results = run_data_scarcity(
        [("bars", SPEC, splits)], [encoder], method="finetune", fractions=(0.1, 1.0), seeds=1, progress=False,
        finetune_kwargs={"epochs": 2, "min_steps": 4},
    )  # fmt: skip
    assert list(results[0]["encoders"]["umedpt"]) == ["0.1", "1.0"]
    trained = run_data_scarcity(
        [("bars", SPEC, splits)], [encoder], method="finetune", fractions=(1.0,), seeds=1, progress=False,
        train_encoder=True, finetune_kwargs={"epochs": 1, "min_steps": 2, "batch_size": 8},
    )  # fmt: skip
    assert 0.0 <= trained[0]["encoders"]["umedpt"]["1.0"][0] <= 1.0


def bar_segmentation_splits() -> DatasetDict:
    """The bar images with their bar as the foreground mask."""

    def part(count: int, seed: int) -> Dataset:
        images, _ = bar_images(count, seed)
        masks = [(image > 150).astype(np.uint8) for image in images]
        features = Features({"image": Image(), "mask": Image()})
        return Dataset.from_dict({"image": images, "mask": masks}, features=features)

    return DatasetDict({"train": part(8, 0), "validation": part(4, 1), "test": part(4, 2)})


def test_protocol_with_segmentation_finetuning(tiny_checkpoint):
    spec = {"type": "segmentation", "labels": ["background", "bar"], "modality": "xray"}
    encoders = [load_encoder(tiny_checkpoint, name="umedpt"), load_encoder(tiny_checkpoint, random_init=True)]
    results = run_data_scarcity(
        [("bars_seg", spec, bar_segmentation_splits())], encoders, method="finetune", fractions=(0.25, 1.0), seeds=1,
        progress=False, finetune_kwargs={"epochs": 1, "min_steps": 2, "batch_size": 4},
    )  # fmt: skip
    assert results[0]["metric"] == "dice" and set(results[0]["encoders"]) == {"umedpt", "random-init"}
    for curve in results[0]["encoders"].values():
        assert list(curve) == ["0.25", "1.0"] and all(0.0 <= s[0] <= 1.0 for s in curve.values())


def test_detection_is_refused_with_a_clear_error(tiny_checkpoint):
    spec = {"type": "detection", "labels": ["bar"], "modality": "xray"}
    with pytest.raises(ValueError, match="does not handle detection"):
        run_data_scarcity([("det", spec, bar_splits())], [load_encoder(tiny_checkpoint)], method="finetune")
