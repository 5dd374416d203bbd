"""Reliability cases of the model: bad pixel values and labels of every task type, dtypes transformers users pass,
and loading mistakes. Each error names the task (and the image or box) and what was expected."""

from __future__ import annotations

import functools

import pytest
import torch
from reliability_cases import Case, case_id, run_case

from umedpt_hf import (
    UMedPTBackbone,
    UMedPTConfig,
    UMedPTForImageClassification,
    UMedPTForMultiTask,
    tiny_config,
)

TASKS = {
    "chest": {"type": "classification", "labels": ["normal", "effusion", "nodule"]},
    "findings": {"type": "multilabel", "labels": ["opacity", "device"]},
    "tissue": {"type": "segmentation", "labels": ["background", "grey", "white"]},
    "nuclei": {"type": "detection", "labels": ["nucleus", "mitosis"]},
}


@functools.cache
def model() -> UMedPTForMultiTask:
    torch.manual_seed(0)
    return UMedPTForMultiTask(tiny_config(tasks=TASKS)).eval()


def pixels(changes: dict | None = None) -> torch.Tensor:
    """Two images; `changes` maps (image, channel, row, column) to a value."""
    values = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for (image, channel, row, column), value in (changes or {}).items():
        values[image, channel, row, column] = value
    return values


def run(task: str, labels=None, pixel_values=None):
    with torch.no_grad():
        return model()(pixels() if pixel_values is None else pixel_values, task=task, labels=labels)


def boxes(*rows, classes=None) -> list[dict]:
    """Two images: the given boxes in image 0, one valid box in image 1."""
    first = torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)
    classes = torch.zeros(len(first), dtype=torch.long) if classes is None else torch.tensor(classes)
    valid = {"class_labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    return [{"class_labels": classes, "boxes": first}, valid]


def same_loss_as(task: str, reference_labels):
    def check(result, folder):
        torch.testing.assert_close(result.loss, run(task, reference_labels).loss)

    return check


def finite_loss(result, folder):
    assert torch.isfinite(result.loss)


def multitask_checkpoint(folder):
    model().save_pretrained(folder / "checkpoint")
    return folder / "checkpoint"


CASES = [
    # pixel values
    Case("NaN pixel", lambda f, p: run("chest", pixel_values=pixels({(1, 0, 5, 5): float("nan")})),
         error=ValueError, phrase=r"Task 'chest': pixel_values contain NaN or infinite values \(image 1\)"),
    Case("infinite pixel with labels", lambda f, p: run("tissue", torch.zeros(2, 64, 64, dtype=torch.long),
         pixels({(0, 2, 0, 0): float("inf")})), error=ValueError, phrase=r"'tissue'.*infinite.*image 0"),
    Case("NaN pixel into the encoder alone", lambda f, p: model().umedpt(pixels({(0, 0, 0, 0): float("nan")})),
         error=ValueError, phrase=r"^pixel_values contain NaN"),
    Case("pixel values without a batch axis", lambda f, p: run("chest", pixel_values=torch.randn(3, 64, 64)),
         error=ValueError, phrase=r"\(batch, channels, height, width\)"),
    Case("integer pixel values", lambda f, p: run("chest", pixel_values=torch.zeros(1, 3, 64, 64, dtype=torch.uint8)),
         error=TypeError, phrase="floating point"),
    Case("one channel for an RGB model", lambda f, p: run("chest", pixel_values=torch.randn(1, 1, 64, 64)),
         error=ValueError, phrase="1 channels but the model expects 3"),
    Case("unknown task", lambda f, p: run("liver"), error=ValueError, phrase=r"Unknown task 'liver'.*chest"),
    # classification
    Case("class index beyond the classes", lambda f, p: run("chest", torch.tensor([0, 7])),
         error=ValueError, phrase=r"'chest' \(classification\): image 1 has the label value 7.*\[0, 2\]"),
    Case("negative class index", lambda f, p: run("chest", torch.tensor([-1, 0])), error=ValueError,
         phrase="image 0 has the label value -1"),
    Case("float class labels", lambda f, p: run("chest", torch.tensor([0.0, 1.0])), error=ValueError,
         phrase="dtype torch.float32.*integer tensor"),
    Case("bool class labels", lambda f, p: run("chest", torch.tensor([True, False])), error=ValueError,
         phrase=r"torch\.bool.*\.long\(\)"),
    Case("int32 class labels are class indices", lambda f, p: run("chest", torch.tensor([2, 0], dtype=torch.int32)),
         check=same_loss_as("chest", torch.tensor([2, 0]))),
    Case("one label too many", lambda f, p: run("chest", torch.zeros(3, dtype=torch.long)), error=ValueError,
         phrase=r"shape \(3,\).*shape \(2,\)"),
    # multi-label
    Case("multi-label target 5", lambda f, p: run("findings", torch.tensor([[0.0, 1.0], [5.0, 0.0]])),
         error=ValueError, phrase=r"'findings' \(multilabel\): image 1 has the label value 5\.0.*\[0, 1\]"),
    Case("multi-label target -1", lambda f, p: run("findings", torch.tensor([[-1, 0], [0, 1]])), error=ValueError,
         phrase="label value -1"),
    Case("multi-label target NaN", lambda f, p: run("findings", torch.tensor([[0.0, float("nan")], [0.0, 1.0]])),
         error=ValueError, phrase="image 0 has the label value nan"),
    Case("bool multi-label targets", lambda f, p: run("findings", torch.tensor([[True, False], [False, True]])),
         check=same_loss_as("findings", torch.tensor([[1.0, 0.0], [0.0, 1.0]]))),
    Case("multi-label targets for three labels", lambda f, p: run("findings", torch.zeros(2, 3)), error=ValueError,
         phrase=r"shape \(2, 3\).*\(2, 2\)"),
    # segmentation
    Case("mask value beyond the classes", lambda f, p: run("tissue", torch.full((2, 64, 64), 9)), error=ValueError,
         phrase=r"'tissue' \(segmentation\): image 0 has the label value 9.*or 255"),
    Case("uint8 mask", lambda f, p: run("tissue", torch.ones(2, 64, 64, dtype=torch.uint8)),
         check=same_loss_as("tissue", torch.ones(2, 64, 64, dtype=torch.long))),
    Case("mask all ignored", lambda f, p: run("tissue", torch.full((2, 64, 64), 255)),
         check=lambda result, folder: torch.testing.assert_close(result.loss, torch.tensor(0.0))),
    Case("mask with a channel axis", lambda f, p: run("tissue", torch.zeros(2, 1, 64, 64, dtype=torch.long)),
         error=ValueError, phrase=r"shape \(2, 1, 64, 64\)"),
    # detection
    Case("NaN box", lambda f, p: run("nuclei", boxes([0.5, float("nan"), 0.1, 0.1])), error=ValueError,
         phrase=r"'nuclei' \(detection\): a box with NaN or infinite values \(image 0, box 0"),
    Case("zero-size box", lambda f, p: run("nuclei", boxes([0.2, 0.2, 0.1, 0.1], [0.5, 0.5, 0.0, 0.2])),
         error=ValueError, phrase=r"width or height is not positive \(image 0, box 1"),
    Case("box reaching outside the image", lambda f, p: run("nuclei", boxes([0.9, 0.5, 0.5, 0.2])),
         error=ValueError, phrase=r"not normalised to the image.*image 0, box 0"),
    Case("box class beyond the classes", lambda f, p: run("nuclei", boxes([0.5, 0.5, 0.2, 0.2], classes=[2])),
         error=ValueError, phrase=r"class label out of range \(image 0, box 0: class 2"),
    Case("one target for two images", lambda f, p: run("nuclei", boxes([0.5, 0.5, 0.2, 0.2])[:1]),
         error=ValueError, phrase="list of length 1.*list of 2 dicts"),
    Case("target without class_labels", lambda f, p: run("nuclei", [{"boxes": torch.ones(1, 4)}] * 2),
         error=ValueError, phrase="target 0 is not a dict with 'class_labels'"),
    Case("integer boxes", lambda f, p: run("nuclei", [{"class_labels": torch.tensor([0]),
         "boxes": torch.tensor([[1, 1, 1, 1]])}] * 2), error=ValueError, phrase="boxes of image 0 must be a float"),
    Case("images without boxes", lambda f, p: run("nuclei", [{"class_labels": torch.zeros(0, dtype=torch.long),
         "boxes": torch.zeros(0, 4)}] * 2), check=finite_loss),
    # single-task models and loading
    Case("regression target NaN", lambda f, p: UMedPTForImageClassification(tiny_config(num_labels=1))(
         pixels(), labels=torch.tensor([0.5, float("nan")])), error=ValueError,
         phrase=r"'image-classification' \(regression\): image 1 has the label value nan"),
    Case("multi-task checkpoint without task=", lambda f, checkpoint: UMedPTForImageClassification.from_pretrained(
         checkpoint), prepare=multitask_checkpoint, error=ValueError, phrase=r"'chest', 'findings'.*pass task=<name>"),
    Case("task of another type", lambda f, checkpoint: UMedPTForImageClassification.from_pretrained(
         checkpoint, task="tissue"), prepare=multitask_checkpoint, error=ValueError,
         phrase="'tissue' is a segmentation task"),
    Case("zero-size squeezer projection", lambda f, p: UMedPTConfig(squeezer_projection_dim=0), error=ValueError,
         phrase="squeezer_projection_dim must be a positive size"),
    Case("backbone stage outside the pyramid", lambda f, p: UMedPTBackbone(tiny_config(out_features=["stem"])),
         error=ValueError, phrase=r"the encoder's pyramid.*not \['stem'\]"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_model_reliability(case, tmp_path):
    run_case(case, tmp_path)
