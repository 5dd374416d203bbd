"""Fixtures of the training tests: a small built umedpt-mini database and hand-written broken databases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

TINY_DATABASE_TASKS = ["modality_cls", "head_ct_tissue_seg", "dsb2018_nuclei_det", "mni152_lobe_cls"]


@pytest.fixture(scope="session")
def tiny_database(tmp_path_factory) -> Path:
    """The four umedpt-mini tasks that examples/configs/tiny.yaml names, built offline by the data package."""
    from umedpt_hf.data import build_database

    root = tmp_path_factory.mktemp("umedpt_mini_tiny")
    build_database(root, only=TINY_DATABASE_TASKS, progress=False)
    return root


def write_database(root: Path, tasks: dict[str, dict]) -> Path:
    """A database in the canonical layout: `root/tasks.json` and one `save_to_disk` DatasetDict per task.

    `tasks`: name -> {"type", "labels", "columns": {column: (feature, [values])}}.
    """
    entries = []
    for name, task in tasks.items():
        features = Features({column: feature for column, (feature, _) in task["columns"].items()})
        data = {column: values for column, (_, values) in task["columns"].items()}
        split = Dataset.from_dict(data, features=features)
        DatasetDict({"train": split, "validation": split, "test": split}).save_to_disk(str(root / name))
        entries.append({"name": name, "type": task["type"], "labels": task["labels"], "modality": "ct", "path": name})
    (root / "tasks.json").write_text(json.dumps({"database": "test", "version": 1, "tasks": entries}))
    return root


def grey_images(count: int, size: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size, size), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def database_without_mask_column(tmp_path) -> Path:
    """A segmentation task whose dataset has an image and a class label but no `mask` column."""
    columns = {"image": (Image(), grey_images(4)), "label": (ClassLabel(names=["a", "b"]), [0, 1, 0, 1])}
    return write_database(
        tmp_path, {"seg_without_mask": {"type": "segmentation", "labels": ["bg", "fg"], "columns": columns}}
    )


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """Each test builds its own Accelerator (precision, CPU); accelerate keeps one global state per process."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: the tiny models gain nothing from two, and on a shared 2-core machine busy OpenMP
    threads of parallel test processes slow each other down many times over."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
