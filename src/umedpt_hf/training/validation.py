"""Validation during pretraining: each task's loss and metric on a fixed subset of its validation split.

The subset is drawn once from `(seed, task)` and capped at `eval_max_examples`; its batches are made without
augmentation (by the worker pool when there is one). Metrics come from `umedpt_hf.evaluation.metrics`: accuracy and
macro-F1 (classification), macro-F1 (multilabel), Dice (segmentation), mAP@0.5 (detection). The best model is the one
with the lowest sum of per-task validation losses (the reference method's rule); `BestModel` also counts evaluations
without improvement for early stopping.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

METRICS = {
    "classification": ("accuracy", "macro_f1"),
    "multilabel": ("macro_f1",),
    "segmentation": ("dice",),
    "detection": ("map50",),
}


@dataclass
class ValidationSet:
    """A fixed subset of one task's validation split, in batches."""

    task: str
    task_type: str
    num_labels: int
    dataset: Any
    collate_fn: Callable[[list[Any]], Any]
    batch_size: int
    indices: list[int]

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def make_batch(self, number: int) -> Any:
        chosen = self.indices[number * self.batch_size : (number + 1) * self.batch_size]
        return self.collate_fn([self.dataset[i] for i in chosen])


def build_validation_sets(
    loaders: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]], max_examples: int | None, seed: int
) -> dict[str, ValidationSet]:
    """One `ValidationSet` per task from DataLoaders over its validation split (dataset, collate_fn, batch size)."""
    sets = {}
    for task, loader in loaders.items():
        if task not in tasks:
            raise ValueError(f"validation data for task {task!r}, which the model has no head for")
        dataset = loader.dataset
        size = len(dataset)
        if size == 0:
            raise ValueError(f"task {task!r}: the validation split is empty")
        indices = np.arange(size)
        if max_examples is not None and size > max_examples:
            rng = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8")), 0xE7A1])
            indices = np.sort(rng.choice(size, size=max_examples, replace=False))
        spec = tasks[task]
        sets[task] = ValidationSet(
            task, spec["type"], len(spec["labels"]), dataset, loader.collate_fn, loader.batch_size or 1,
            [int(i) for i in indices],
        )  # fmt: skip
    return sets


def validation_keys(sets: Mapping[str, ValidationSet]) -> Iterator[tuple[str, str, int]]:
    """The batch keys of one evaluation, in the order `evaluate` consumes them."""
    for task, validation in sets.items():
        for number in range(validation.num_batches):
            yield ("eval", task, number)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    sets: Mapping[str, ValidationSet],
    get_batch: Callable[[tuple[str, str, int]], Mapping[str, Any]],
    autocast: Callable[[], Any],
) -> dict[str, float]:
    """`eval/loss/<task>`, `eval/<metric>/<task>` and `eval/loss_sum` over the validation sets."""
    was_training = model.training
    model.eval()
    record: dict[str, float] = {}
    try:
        for task, validation in sets.items():
            scorer = _Scorer(validation.task_type, validation.num_labels)
            loss_sum, count = 0.0, 0
            for number in range(validation.num_batches):
                batch = get_batch(("eval", task, number))
                with autocast():
                    outputs = model(pixel_values=batch["pixel_values"], task=task, labels=batch["labels"])
                size = int(batch["pixel_values"].shape[0])
                loss_sum += float(outputs.loss) * size
                count += size
                scorer.add(outputs, batch)
            record[f"eval/loss/{task}"] = loss_sum / count
            for name, value in scorer.result().items():
                record[f"eval/{name}/{task}"] = value
    finally:
        model.train(was_training)
    record["eval/loss_sum"] = sum(value for key, value in record.items() if key.startswith("eval/loss/"))
    return record


class _Scorer:
    """Collects predictions and targets of one task and scores them with `umedpt_hf.evaluation.metrics`."""

    def __init__(self, task_type: str, num_labels: int) -> None:
        self.task_type, self.num_labels = task_type, num_labels
        self.predictions: list[Any] = []
        self.targets: list[Any] = []

    def add(self, outputs: Any, batch: Mapping[str, Any]) -> None:
        labels = batch["labels"]
        if self.task_type == "classification":
            self.predictions.append(outputs.logits.argmax(-1).cpu())
            self.targets.append(labels.cpu())
        elif self.task_type == "multilabel":
            self.predictions.append((outputs.logits.float().sigmoid() >= 0.5).int().cpu())
            self.targets.append(labels.round().int().cpu())
        elif self.task_type == "segmentation":
            from umedpt_hf.post_processing_umedpt import semantic_label_maps

            sizes = [tuple(labels.shape[-2:])] * len(labels)
            self.predictions += [m.cpu().reshape(-1) for m in semantic_label_maps(outputs.logits, sizes)]
            self.targets += [t.cpu().reshape(-1) for t in labels]
        else:
            from umedpt_hf.post_processing_umedpt import decode_detections

            height, width = (int(side) for side in batch["pixel_values"].shape[-2:])
            found = decode_detections(
                outputs.logits, outputs.pred_boxes, outputs.centerness_logits, 0.05, [(height, width)] * len(labels)
            )
            scale = torch.tensor([width, height, width, height], dtype=torch.float32)
            for result, target in zip(found, labels):
                boxes = target["boxes"].float().cpu()
                corners = torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], dim=1)
                self.predictions.append({key: value.float().cpu().numpy() for key, value in result.items()})
                self.targets.append(
                    {"boxes": (corners * scale).numpy(), "labels": target["class_labels"].cpu().numpy()}
                )

    def result(self) -> dict[str, float]:
        from umedpt_hf.evaluation import metrics

        try:
            if self.task_type == "classification":
                scores = metrics.classification_metrics(
                    torch.cat(self.targets).numpy(), torch.cat(self.predictions).numpy(), num_classes=self.num_labels
                )
            elif self.task_type == "multilabel":
                scores = metrics.multilabel_metrics(
                    torch.cat(self.targets).numpy(), torch.cat(self.predictions).numpy()
                )
            elif self.task_type == "segmentation":
                scores = metrics.segmentation_metrics(
                    torch.cat(self.predictions).numpy(), torch.cat(self.targets).numpy(), self.num_labels
                )
            else:
                scores = metrics.detection_metrics(self.predictions, self.targets)
        except ValueError:  # e.g. no ground-truth box in the subset: the metric is undefined
            scores = {}
        return {name: float(scores.get(name, math.nan)) for name in METRICS[self.task_type]}


class BestModel:
    """The lowest sum of validation losses so far, and evaluations since it improved (JSON state for checkpoints)."""

    def __init__(self, patience: int | None = None) -> None:
        self.patience = patience
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.without_improvement = 0

    def update(self, loss_sum: float, step: int) -> bool:
        """Record an evaluation; True when it is the best so far (a NaN sum never is)."""
        if math.isfinite(loss_sum) and (self.best_loss is None or loss_sum < self.best_loss):
            self.best_loss, self.best_step, self.without_improvement = loss_sum, step, 0
            return True
        self.without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "best_step": self.best_step,
            "without_improvement": self.without_improvement,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_loss, self.best_step = state.get("best_loss"), state.get("best_step")
        self.without_improvement = int(state.get("without_improvement", 0))
