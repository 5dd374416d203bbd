"""Fixtures of the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_test_utils import IMAGE_SIDE, SPEC, bar_splits

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
from umedpt_hf.presets import tiny_config


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny UMedPTForMultiTask (one pretraining task) saved with save_pretrained, with its image processor."""
    import torch

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_umedpt")
    config = tiny_config(tasks={"pretrain": {"type": "classification", "labels": ["a", "b"], "modality": "xray"}})
    UMedPTForMultiTask(config).save_pretrained(directory)
    UMedPTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_database(tmp_path_factory) -> Path:
    """A task database as `umedpt data build` writes it: tasks.json + one DatasetDict per task."""
    root = tmp_path_factory.mktemp("tiny_database")
    splits = bar_splits()
    splits.save_to_disk(str(root / "bars"))
    entry = {
        "name": "bars",
        **SPEC,
        "splits": {name: len(part) for name, part in splits.items()},
        "source": "synthetic bars (tests)",
        "licence": "CC0",
    }
    entry["path"] = "bars"  # relative to the database root, as `umedpt data build` writes it
    (root / "tasks.json").write_text(json.dumps({"tasks": [entry]}, indent=2))
    return root
