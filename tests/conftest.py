"""Shared fixtures: tiny UMedPT configurations (the test matrix) and offline settings."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

FOUR_TASKS = {
    "chest_xray": {"type": "classification", "labels": ["normal", "effusion", "nodule"], "modality": "xray"},
    "findings": {"type": "multilabel", "labels": ["opacity", "device"], "modality": "xray"},
    "brain_tissue": {"type": "segmentation", "labels": ["background", "grey", "white"], "modality": "mri"},
    "nuclei": {"type": "detection", "labels": ["nucleus"], "modality": "microscopy"},
}


@pytest.fixture
def four_tasks() -> dict:
    """One task per type."""
    return {name: dict(spec) for name, spec in FOUR_TASKS.items()}


@pytest.fixture
def tiny_multitask_config(four_tasks):
    from umedpt_hf import tiny_config

    return tiny_config(tasks=four_tasks)


def make_task_batch(task_type: str, num_labels: int, batch_size: int = 2, size: int = 64, seed: int = 0) -> dict:
    """A random batch in the model's label format for one task type."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    if task_type == "classification":
        labels = torch.randint(0, num_labels, (batch_size,), generator=generator)
    elif task_type == "multilabel":
        labels = torch.randint(0, 2, (batch_size, num_labels), generator=generator).float()
    elif task_type == "segmentation":
        labels = torch.randint(0, num_labels, (batch_size, size, size), generator=generator)
    else:
        labels = [
            {
                "class_labels": torch.zeros(index, dtype=torch.long),
                "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.25], [0.7, 0.6, 0.1, 0.1]])[:index],
            }
            for index in range(batch_size)
        ]
    return {"pixel_values": pixel_values, "labels": labels}
