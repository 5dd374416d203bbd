"""Single-task UMedPT models plug into transformers' own tooling: pipelines and Trainer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from transformers import Trainer, TrainingArguments, pipeline

from umedpt_hf import (
    UMedPTForImageClassification,
    UMedPTForMultiTask,
    UMedPTForSemanticSegmentation,
    UMedPTImageProcessor,
    tiny_config,
)

LABELS = ["normal", "abnormal"]


def classifier_config():
    return tiny_config(id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)})


def test_image_classification_pipeline_returns_named_scores():
    model = UMedPTForImageClassification(classifier_config()).eval()
    processor = UMedPTImageProcessor(size={"height": 64, "width": 64}, modality="xray")
    classify = pipeline("image-classification", model=model, image_processor=processor, device="cpu")
    image = Image.fromarray((np.random.default_rng(0).random((80, 70)) * 255).astype(np.uint8))
    predictions = classify(image, top_k=2)
    assert {p["label"] for p in predictions} == set(LABELS)
    assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-5


def test_image_segmentation_pipeline_returns_one_mask_per_class():
    config = tiny_config(id2label={0: "background", 1: "bone"}, label2id={"background": 0, "bone": 1})
    model = UMedPTForSemanticSegmentation(config).eval()
    processor = UMedPTImageProcessor(size={"height": 64, "width": 64}, modality="ct")
    segment = pipeline("image-segmentation", model=model, image_processor=processor, device="cpu")
    image = Image.fromarray((np.random.default_rng(1).random((64, 96)) * 255).astype(np.uint8))
    masks = segment(image, subtask="semantic")
    assert masks and all(m["mask"].size == (96, 64) for m in masks)
    assert {m["label"] for m in masks} <= {"background", "bone"}


class TinyImageDataset(torch.utils.data.Dataset):
    """Bright images are 'abnormal': a task the classifier can learn in a few steps."""

    def __init__(self, size: int = 8) -> None:
        generator = torch.Generator().manual_seed(0)
        self.labels = torch.arange(size) % 2
        self.images = torch.randn(size, 3, 64, 64, generator=generator) * 0.3 + self.labels[:, None, None, None] * 1.5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


def test_trainer_fine_tunes_the_classifier(tmp_path):
    torch.manual_seed(0)
    model = UMedPTForImageClassification(classifier_config())
    arguments = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=4,
        learning_rate=2e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=TinyImageDataset())
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert np.isfinite(result.training_loss)
    assert losses[-1] < losses[0]
    trainer.save_model(str(tmp_path / "final"))
    reloaded = UMedPTForImageClassification.from_pretrained(tmp_path / "final")
    assert reloaded.config.id2label == {0: "normal", 1: "abnormal"}


NO_PROMPT_SCRIPT = """
import json, sys
import numpy as np
from PIL import Image
import umedpt_hf  # the package installed: every UMedPT name is local code
from transformers import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification,
    AutoModelForObjectDetection, AutoModelForPreTraining, AutoModelForSemanticSegmentation, AutoProcessor, pipeline)

folder = sys.argv[1]
loaded = [type(auto.from_pretrained(folder)).__name__ for auto in (AutoConfig, AutoModel, AutoModelForPreTraining,
    AutoImageProcessor, AutoProcessor, AutoModelForImageClassification, AutoModelForSemanticSegmentation,
    AutoModelForObjectDetection)]
image = Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8))
labels = {}
for task in ("image-classification", "image-segmentation", "object-detection"):
    options = {"threshold": 0.0} if task == "object-detection" else {}
    labels[task] = sorted({result["label"] for result in pipeline(task, model=folder)(image, **options)})
print(json.dumps({"loaded": loaded, "labels": labels}))
"""


def test_pipelines_and_auto_classes_never_ask_about_remote_code(tmp_path):
    """The saved folder carries remote code (auto_map), but with the package installed nothing asks to run it: the
    subprocess has no standard input (a prompt would print its question and fail) and a timeout."""
    tasks = {
        "chest": {"type": "classification", "labels": ["normal", "effusion"]},
        "organ": {"type": "segmentation", "labels": ["background", "liver"]},
        "cells": {"type": "detection", "labels": ["cell"]},
    }
    UMedPTForMultiTask(tiny_config(tasks=tasks)).save_pretrained(tmp_path)
    UMedPTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path)
    script = tmp_path / "run.py"
    script.write_text(NO_PROMPT_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "custom code" not in result.stdout + result.stderr, result.stdout[-2000:]
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"][-3:] == [
        "UMedPTForImageClassification",
        "UMedPTForSemanticSegmentation",
        "UMedPTForObjectDetection",
    ]
    assert report["labels"]["image-classification"] == ["effusion", "normal"]  # the task's names, not LABEL_0
    assert set(report["labels"]["image-segmentation"]) <= {"background", "liver"}
    assert report["labels"]["object-detection"] == ["cell"]
