"""The per-task contract (task_preprocessing_umedpt): record, reproduce by task name or `for_task`, save and reload."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.task_preprocessing_umedpt import task_preprocessing_from_spec

SPECS = {
    "head_ct": {"type": "segmentation", "labels": ["bg", "soft", "bone"], "modality": "ct"},
    "chest": {"type": "classification", "labels": ["normal", "effusion"], "modality": "xray"},
    "mixed": {"type": "classification", "labels": ["ct", "mri"], "modality": "mixed"},
    "lungs": {"type": "detection", "labels": ["nodule"], "modality": "ct", "window": "lung"},
}
HU = np.random.default_rng(0).integers(-1100, 1500, (90, 70)).astype(np.int16)


@pytest.fixture
def processor():
    from umedpt_hf.presets import tiny_config

    return UMedPTImageProcessor.from_model_config(
        tiny_config(), task_specs=SPECS, task_sizes={"head_ct": 64, "lungs": {"height": 32, "width": 48}}, size=40
    )


def test_the_rule_from_spec():
    assert task_preprocessing_from_spec(SPECS["head_ct"], size=128) == {
        "modality": "ct", "window": "soft_tissue", "num_labels": 3, "size": {"height": 128, "width": 128},
    }  # fmt: skip
    assert task_preprocessing_from_spec(SPECS["mixed"]) == {"modality": None, "window": None}
    assert task_preprocessing_from_spec(SPECS["lungs"])["window"] == "lung"
    assert task_preprocessing_from_spec(SPECS["head_ct"], window=(50, 350))["window"] == [50, 350]


def test_task_applies_its_modality_window_and_size(processor):
    head_ct = processor(HU, task="head_ct")["pixel_values"]
    by_hand = UMedPTImageProcessor(size=64, modality="ct", window="soft_tissue")(HU)["pixel_values"]
    assert head_ct.shape == (1, 3, 64, 64) and torch.equal(head_ct, by_hand)
    lungs = processor(HU, task="lungs")["pixel_values"]
    assert torch.equal(lungs, UMedPTImageProcessor(size=(32, 48), modality="ct", window="lung")(HU)["pixel_values"])
    chest = processor(HU, task="chest")["pixel_values"]
    assert chest.shape == (1, 3, 40, 40)  # no size recorded: the processor's
    assert torch.equal(chest, UMedPTImageProcessor(size=40, modality="xray")(HU)["pixel_values"])
    # no task: the processor's own defaults (the automatic rule), not any task's
    assert torch.equal(processor(HU)["pixel_values"], UMedPTImageProcessor(size=40)(HU)["pixel_values"])


def test_call_arguments_override_the_task(processor):
    brain = processor(HU, task="head_ct", window="brain")["pixel_values"]
    assert torch.equal(brain, UMedPTImageProcessor(size=64, modality="ct", window="brain")(HU)["pixel_values"])


def test_for_task_reproduces_the_task_and_survives_save_and_load(processor, tmp_path):
    bound = processor.for_task("head_ct")
    assert bound.task == "head_ct" and bound.size.height == 64 and bound.modality == "ct"
    assert torch.equal(bound(HU)["pixel_values"], processor(HU, task="head_ct")["pixel_values"])
    bound.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["task"] == "head_ct" and set(saved["task_preprocessing"]) == set(SPECS)
    reloaded = UMedPTImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == bound.to_dict()
    assert torch.equal(reloaded(HU)["pixel_values"], bound(HU)["pixel_values"])
    mask = np.zeros(HU.shape, np.uint8)
    mask[0, 0] = 3  # the bound task's label count applies
    with pytest.raises(ValueError, match="beyond the 3 classes"):
        reloaded(HU, segmentation_maps=mask)


def test_unknown_tasks_and_bad_tables_are_errors(processor):
    with pytest.raises(ValueError, match=r"Unknown task 'head-ct'.*'chest', 'head_ct', 'lungs', 'mixed'"):
        processor(HU, task="head-ct")
    with pytest.raises(ValueError, match="Unknown task"):
        processor.for_task("nope")
    with pytest.raises(ValueError, match="Unknown task 'x'"):
        UMedPTImageProcessor(task="x")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['windw'\]"):
        UMedPTImageProcessor(task_preprocessing={"t": {"windw": "lung"}})
    with pytest.raises(ValueError, match="Unknown modality"):
        UMedPTImageProcessor(task_preprocessing={"t": {"modality": "xrays"}})
    with pytest.raises(ValueError, match="finite"):
        UMedPTImageProcessor(task_preprocessing={"t": {"modality": "ct", "window": [40, float("nan")]}})
    with pytest.raises(ValueError, match="size"):
        UMedPTImageProcessor(task_preprocessing={"t": {"size": 0}})
    with pytest.raises(TypeError, match="task_preprocessing is a processor setting"):
        processor(HU, task_preprocessing={})
    with pytest.raises(ValueError, match="task_sizes names tasks without a spec"):
        UMedPTImageProcessor.from_model_config(processor, task_specs=SPECS, task_sizes={"other": 64})


def test_the_collator_uses_a_bound_processor_and_refuses_another_tasks(processor):
    from umedpt_hf.data import TaskCollator

    example = {"image": HU, "mask": np.zeros(HU.shape, np.uint8)}
    batch = TaskCollator(SPECS["head_ct"], processor.for_task("head_ct"))([example])
    expected = processor([HU], segmentation_maps=[example["mask"]], task="head_ct")
    assert torch.equal(batch["pixel_values"], expected["pixel_values"])
    assert torch.equal(batch["labels"], expected["labels"])
    with pytest.raises(ValueError, match="bound to task 'lungs'"):
        TaskCollator(SPECS["head_ct"], processor.for_task("lungs"))
