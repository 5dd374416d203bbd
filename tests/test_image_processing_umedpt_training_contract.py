"""The preprocessing contract is the training's: what the trainer fed equals what the exported processor makes.

A tiny pretraining setup over real tasks of every type (CT segmentation at 128 px with its HU window, a mixed-modality
classification, microscopy detection at 96 px, MRI multi-label) goes through the training pipeline; the first batch
each task's stream hands the trainer is compared, bitwise, with the processor reloaded from the exported folder
(in-process with AutoImageProcessor, and as remote code without the package) applied to the raw stored images.
Augmentation is off: it is random by design and not part of the inference contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

TASKS = {"head_ct_tissue_seg": 128, "modality_cls": None, "dsb2018_nuclei_det": 96, "colin27_lobe_multilabel": None}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(trainer, exported folder) of the pipeline over the four tasks."""
    from umedpt_hf.data import build_database
    from umedpt_hf.training.config import parse_pretrain_config
    from umedpt_hf.training.pipeline import build_model_and_processor, build_task_loaders, load_database
    from umedpt_hf.training.trainer import MultiTaskTrainer

    root = tmp_path_factory.mktemp("contract")
    build_database(root / "db", only=list(TASKS), progress=False)
    tasks = [{"name": name, "image_size": size} if size else name for name, size in TASKS.items()]
    config = parse_pretrain_config(
        {
            "output_dir": str(root / "run"),
            "data": {"database": str(root / "db"), "image_size": 64, "batch_size": 2, "augment": False},
            "tasks": tasks,
            "training": {"max_steps": 1, "seed": 0},
        }
    )
    torch.manual_seed(0)
    database = load_database(config)
    model, processor = build_model_and_processor(config, database)
    loaders = build_task_loaders(config, database, model.config)
    trainer = MultiTaskTrainer(model, loaders, config.training, processor=processor)
    return trainer, trainer.export(root / "final")


def as_stored(cell):
    """A stored image cell as a user would read it: `datasets` decodes `{"bytes", "path"}` with PIL (the loaders read
    cells undecoded and decode them their own, faster way: this also checks that both give the same values)."""
    if isinstance(cell, dict) and cell and set(cell) <= {"bytes", "path"}:
        from datasets import Image

        return Image().decode_example({"path": None, "bytes": None, **cell})
    return cell


def first_batches(trainer):
    """{task: (raw stored examples, the batch the trainer's stream feeds)} for each task's next batch."""
    batches = {}
    for name, stream in trainer.streams.items():
        examples = [
            {key: as_stored(value) for key, value in stream.dataset[i].items()} for i in stream.indices(stream.consumed)
        ]
        batches[name] = examples, stream.next_batch()
        stream.consumed -= 1  # leave the streams where they were
    return batches


def test_the_exported_folder_records_every_task(exported):
    _, folder = exported
    saved = json.loads((folder / "preprocessor_config.json").read_text())["task_preprocessing"]
    assert set(saved) == set(TASKS)
    assert saved["head_ct_tissue_seg"] == {
        "modality": "ct",
        "window": "soft_tissue",
        "num_labels": 3,
        "size": {"height": 128, "width": 128},
    }
    assert saved["modality_cls"] == {"modality": None, "window": None, "size": {"height": 64, "width": 64}}
    assert saved["dsb2018_nuclei_det"]["modality"] == "microscopy" and saved["dsb2018_nuclei_det"]["num_labels"] == 1
    assert saved["dsb2018_nuclei_det"]["size"] == {"height": 96, "width": 96}


def test_trainer_inputs_equal_the_reloaded_processor_bitwise(exported):
    from transformers import AutoImageProcessor

    import umedpt_hf  # noqa: F401  (registers the Auto classes)

    trainer, folder = exported
    processor = AutoImageProcessor.from_pretrained(folder)
    for name, (examples, batch) in first_batches(trainer).items():
        images = [example["image"] for example in examples]  # as stored: PIL images (CT as 32-bit "I")
        if name == "head_ct_tissue_seg":
            masks = [np.asarray(example["mask"]) for example in examples]
            expected = processor(images, segmentation_maps=masks, task=name)
            assert torch.equal(batch["labels"], expected["labels"]), name
            assert batch["pixel_values"].shape == (2, 3, 128, 128)
        else:
            expected = processor(images, task=name)
        assert torch.equal(batch["pixel_values"], expected["pixel_values"]), name
        # the task's contract matters: the default preprocessing (no task) gives other inputs for CT and detection
        if name in ("head_ct_tissue_seg", "dsb2018_nuclei_det"):
            assert processor(images)["pixel_values"].shape != batch["pixel_values"].shape
        # for_task is the same contract
        assert torch.equal(processor.for_task(name)(images)["pixel_values"], expected["pixel_values"]), name


REMOTE = """
import sys
sys.modules["umedpt_hf"] = None  # the package must not be needed
import numpy as np, torch
from transformers import AutoImageProcessor
processor = AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
raw = np.load(sys.argv[2])
out = {}
for key in raw.files:
    task, index = key.rsplit("/", 1)
    out.setdefault(task, []).append(raw[key])
np.savez(sys.argv[3], **{task: processor(images, task=task)["pixel_values"].numpy() for task, images in out.items()})
"""


def test_trainer_inputs_equal_the_remote_code_processor_bitwise(exported, tmp_path):
    trainer, folder = exported
    batches = first_batches(trainer)
    raw = {f"{name}/{i}": np.asarray(ex["image"]) for name, (exs, _) in batches.items() for i, ex in enumerate(exs)}
    np.savez(tmp_path / "raw.npz", **raw)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE, str(folder), str(tmp_path / "raw.npz"), str(tmp_path / "out.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    remote = np.load(tmp_path / "out.npz")
    assert set(remote.files) == set(TASKS)
    for name, (_, batch) in batches.items():
        assert np.array_equal(remote[name], batch["pixel_values"].numpy()), name


REMOTE_CODE_FILES = {
    "configuration_umedpt.py",
    "image_processing_umedpt.py",
    "image_transforms_umedpt.py",
    "image_intensity_umedpt.py",
    "image_geometry_umedpt.py",
    "image_targets_umedpt.py",
    "task_preprocessing_umedpt.py",
    "post_processing_umedpt.py",
}


def test_the_processor_code_travels_with_the_weights_and_imports_only_what_it_may(exported):
    import ast

    _, folder = exported
    copied = {path.name for path in folder.glob("*.py")}
    assert copied >= REMOTE_CODE_FILES
    for name in copied:
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {"." if node.level else (node.module or "").split(".")[0]}
            else:
                continue
            allowed = {".", "__future__", "numpy", "torch", "PIL", "transformers"} | set(sys.stdlib_module_names)
            assert roots <= allowed, (name, roots)
