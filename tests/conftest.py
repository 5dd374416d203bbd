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
