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
    assert all(torch.equal(x, y) for x, y in zip(a, w1))  # workers > 0 reproduce workers = 0


def test_every_epoch_augments_anew_and_workers_agree_over_epochs(mini_tasks, processor):
    task = mini_tasks["colin27_lobe_seg"]

    def epochs(workers: int) -> list[list[torch.Tensor]]:
        options = {"persistent_workers": True, "prefetch_factor": 2} if workers else {}
        loader = make_task_dataloader(
            task, "validation", processor, 8, augment=True, seed=5, num_workers=workers, **options
        )
        return [[batch["pixel_values"] for batch in loader] for _ in range(2)]

    serial, parallel = epochs(0), epochs(2)
    for first, second in zip(serial, parallel):
        assert all(torch.equal(x, y) for x, y in zip(first, second))
    assert not torch.equal(serial[0][0], serial[1][0])  # epoch 2 is shuffled and augmented differently


def test_augmentation_is_a_pure_function_of_the_seed_given(mini_tasks, processor):
    task = mini_tasks["colin27_deep_grey_det"]
    examples = [task.splits["train"][i] for i in range(4)]
    collator = TaskCollator(task.spec, processor, augment=True, seed=0)
    collator.set_seed(11)
    first = collator(examples)["pixel_values"]
    collator(examples)  # history does not leak into what follows set_seed
    collator.set_seed(11)
    assert torch.equal(collator(examples)["pixel_values"], first)
    fresh = TaskCollator(task.spec, processor, augment=True, seed=11)
    assert torch.equal(fresh(examples)["pixel_values"], first)
    collator.set_seed(12)
    assert not torch.equal(collator(examples)["pixel_values"], first)


def test_pinned_memory_and_worker_options_reach_the_loader(mini_tasks, processor):
    task = mini_tasks["modality_cls"]
    loader = make_task_dataloader(task, "train", processor, 4, num_workers=1, pin_memory=True,
                                  persistent_workers=True, prefetch_factor=3)  # fmt: skip
    assert loader.pin_memory and loader.persistent_workers and loader.prefetch_factor == 3
    with pytest.raises(ValueError, match="need num_workers > 0"):
        make_task_dataloader(task, "train", processor, 4, persistent_workers=True)


def test_sixteen_bit_masks_keep_their_values(processor):
    from umedpt_hf.data.collate import mask_to_array

    mask = np.full((16, 16), 300, np.uint16)
    assert mask_to_array(mask).dtype == np.uint16 and mask_to_array(mask).max() == 300
    assert mask_to_array(mask.astype(np.int32)).dtype == np.uint16  # PIL mode "I": no wrap to 44
    spec = {"type": "segmentation", "labels": [str(i) for i in range(301)], "modality": "mri"}
    batch = TaskCollator(spec, processor)([{"image": np.zeros((16, 16), np.uint8), "mask": mask}])
    assert batch["labels"].unique().tolist() == [300]


def test_box_conversion_agrees_with_transformers():
    from transformers.image_transforms import center_to_corners_format

    xywh = np.array([[2.0, 4.0, 6.0, 8.0], [0.0, 0.0, 10.0, 20.0]], np.float32)
    cxcywh = coco_to_normalised_cxcywh(xywh, width=10, height=20)
    corners = center_to_corners_format(cxcywh) * np.array([10, 20, 10, 20])
    assert np.allclose(corners, [[2, 4, 8, 12], [0, 0, 10, 20]])
    assert coco_to_normalised_cxcywh(np.zeros((0, 4)), 10, 20).shape == (0, 4)


def test_collator_errors(mini_tasks, processor):
    task = mini_tasks["modality_cls"]
    collator = TaskCollator(task.spec, processor)
    with pytest.raises(ValueError, match="empty batch"):
        collator([])
    with pytest.raises(ValueError, match="lacks 'image' or 'label'"):
        collator([{"image": task.splits["train"][0]["image"]}])
    with pytest.raises(ValueError, match="no split 'dev'"):
        make_task_dataloader(task, "dev", processor, 2)
