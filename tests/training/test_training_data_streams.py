"""Streams over the real data package: augmented batches are reproducible from (seed, task, position)."""

from __future__ import annotations

import torch

from umedpt_hf.data import load_task_database, make_task_dataloader
from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.training import as_task_stream


def _stream(task, seed: int = 0, augment: bool = True):
    processor = UMedPTImageProcessor(size={"height": 32, "width": 32})
    loader = make_task_dataloader(task, "train", processor, batch_size=4, augment=augment, seed=seed, drop_last=True)
    return as_task_stream(loader, key=task.name, seed=seed)


def test_augmented_batches_resume_exactly(tiny_database):
    task = load_task_database(tiny_database, tasks=["head_ct_tissue_seg"])["head_ct_tissue_seg"]
    uninterrupted = _stream(task)
    batches = [uninterrupted.next_batch() for _ in range(4)]
    assert batches[0]["pixel_values"].shape == (4, 3, 32, 32) and batches[0]["labels"].shape == (4, 32, 32)
    resumed = _stream(task)
    resumed.load_state_dict({"consumed": 2})
    for expected in batches[2:]:
        batch = resumed.next_batch()
        assert torch.equal(batch["pixel_values"], expected["pixel_values"])
        assert torch.equal(batch["labels"], expected["labels"])
    # the augmentation did something: the same examples without it differ
    plain = _stream(task, augment=False).next_batch()
    assert not torch.equal(plain["pixel_values"], batches[0]["pixel_values"])
