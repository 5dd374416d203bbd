"""Every built task loads, collates into the model's label formats and runs one forward of the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from umedpt_hf.data import TaskCollator, make_task_dataloader
from umedpt_hf.data.collate import coco_to_normalised_cxcywh, image_to_array


def _check_labels(task, batch, batch_size):
    labels = batch["labels"]
    assert batch["pixel_values"].shape == (batch_size, 3, 64, 64) and batch["pixel_values"].dtype == torch.float32
    assert torch.isfinite(batch["pixel_values"]).all()
    num_classes = len(task.labels)
    if task.type == "classification":
        assert labels.dtype == torch.long and labels.shape == (batch_size,)
        assert labels.min() >= 0 and labels.max() < num_classes
    elif task.type == "multilabel":
        assert labels.dtype == torch.float32 and labels.shape == (batch_size, num_classes)
        assert set(labels.unique().tolist()) <= {0.0, 1.0}
    elif task.type == "segmentation":
        assert labels.dtype == torch.long and labels.shape == (batch_size, 64, 64)
        values = set(labels.unique().tolist())
        assert values <= set(range(num_classes)) | {255} and len(values - {255}) >= 2
    else:
        assert isinstance(labels, list) and len(labels) == batch_size
        for target in labels:
            assert target["class_labels"].dtype == torch.long and target["boxes"].dtype == torch.float32
            assert target["boxes"].shape == (len(target["class_labels"]), 4)
            assert ((target["boxes"] >= 0) & (target["boxes"] <= 1)).all()


def test_every_task_collates_and_runs_one_forward(mini_tasks, processor):
    from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
    from umedpt_hf.presets import tiny_config

    torch.manual_seed(0)
    model = UMedPTForMultiTask(tiny_config(tasks={name: task.spec for name, task in mini_tasks.items()})).eval()
    for name, task in mini_tasks.items():
        for augment in (False, True):
            loader = make_task_dataloader(task, "train", processor, batch_size=4, augment=augment, seed=0)
            batch = next(iter(loader))
            _check_labels(task, batch, 4)
        with torch.no_grad():
            output = model(pixel_values=batch["pixel_values"], task=name, labels=batch["labels"])
        assert torch.isfinite(output.loss), name


def test_segmentation_masks_stay_aligned_through_the_processor(mini_tasks, processor):
    task = mini_tasks["head_ct_tissue_seg"]
    examples = [task.splits["test"][i] for i in range(2)]
    batch = TaskCollator(task.spec, processor)(examples)
    for example, labels in zip(examples, batch["labels"]):
        hu = image_to_array(example["image"])
        assert hu.dtype == np.int16 and hu.min() < -500  # int16 HU read back exactly as stored
        mask = np.asarray(example["mask"])
        # 128 -> 64 px: nearest neighbour picks every other pixel, with some phase
        agreement = max((labels.numpy() == mask[dy::2, dx::2]).mean() for dy in (0, 1) for dx in (0, 1))
        assert agreement > 0.97


def test_detection_boxes_become_normalised_cxcywh(mini_tasks, processor):
    task = mini_tasks["dsb2018_nuclei_det"]
    example = next(row for row in task.splits["train"] if row["objects"]["bbox"])
    batch = TaskCollator(task.spec, processor)([example])
    width, height = example["image"].size
    expected = coco_to_normalised_cxcywh(np.asarray(example["objects"]["bbox"]), width, height)
    assert torch.allclose(batch["labels"][0]["boxes"], torch.from_numpy(expected), atol=1e-5)
    assert batch["labels"][0]["class_labels"].tolist() == example["objects"]["category"]


def test_augmented_loaders_are_deterministic_under_a_seed(mini_tasks, processor):
    task = mini_tasks["colin27_deep_grey_det"]

    def first_batches(seed, workers=0):
        loader = make_task_dataloader(task, "train", processor, 4, augment=True, seed=seed, num_workers=workers)
        return [batch["pixel_values"] for _, batch in zip(range(2), loader)]

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    w1, w2 = first_batches(0, workers=2), first_batches(0, workers=2)
    assert all(torch.equal(x, y) for x, y in zip(w1, w2))


def test_collator_errors(mini_tasks, processor):
    task = mini_tasks["modality_cls"]
    collator = TaskCollator(task.spec, processor)
    with pytest.raises(ValueError, match="empty batch"):
        collator([])
    with pytest.raises(ValueError, match="lacks 'image' or 'label'"):
        collator([{"image": task.splits["train"][0]["image"]}])
    with pytest.raises(ValueError, match="no split 'dev'"):
        make_task_dataloader(task, "dev", processor, 2)
