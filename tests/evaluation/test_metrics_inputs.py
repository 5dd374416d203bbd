"""The metrics module is a leaf that pretraining's validation reuses: plain arrays or torch tensors in, floats out."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from umedpt_hf.evaluation import metrics
from umedpt_hf.evaluation.metrics import (
    classification_metrics,
    detection_metrics,
    multilabel_metrics,
    segmentation_metrics,
    to_numpy,
)


def test_metrics_imports_only_numpy_sklearn_torch_and_the_standard_library():
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    relative = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert not relative and imported <= {
        "__future__",
        "math",
        "warnings",
        "collections",
        "typing",
        "numpy",
        "sklearn",
        "torch",
    }


def test_to_numpy_detaches_moves_and_widens():
    logits = torch.randn(4, 3, requires_grad=True) * 2
    assert to_numpy(logits).dtype == np.float32 and to_numpy(logits).shape == (4, 3)
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    assert to_numpy([1, 2], dtype=np.float64).dtype == np.float64


def test_classification_from_logits_tensors_equals_numpy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 4, generator=generator, requires_grad=True)
    labels = torch.randint(0, 4, (40,), generator=generator)
    probabilities = logits.softmax(-1)
    from_tensors = classification_metrics(labels, logits.argmax(-1), probabilities)
    from_numpy = classification_metrics(
        labels.numpy(), logits.detach().argmax(-1).numpy(), probabilities.detach().float().numpy()
    )
    assert from_tensors == from_numpy and all(isinstance(value, float) for value in from_tensors.values())


def test_multilabel_segmentation_and_detection_take_tensors():
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert multilabel_metrics(y, y, y.float())["macro_f1"] == 1.0
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    prediction = target.clone()
    prediction[:, 2:6, 2] = 0  # 8 of 32 foreground pixels missed
    dice = segmentation_metrics(prediction, target, num_classes=2)["dice"]
    assert dice == pytest.approx(2 * 24 / (24 + 32))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    predictions = [{"boxes": boxes, "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
    assert detection_metrics(predictions, [{"boxes": boxes, "labels": torch.tensor([0])}]) == {"map50": 1.0}
