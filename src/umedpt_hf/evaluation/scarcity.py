"""The data-scarcity protocol: train on stratified fractions of the training labels x seeds, score on the test split.

`probe_scarcity_curve` is the core on frozen features (arrays); `run_data_scarcity` extracts features of each task
with each encoder (or fine-tunes, `method="finetune"`) and returns results in the schema of `report.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .features import extract_features
from .finetune import train_head
from .knn import DEFAULT_K, train_knn
from .linear import feature_scaler, train_linear_probe
from .metrics import check_metric, default_metric
from .probe import check_features, infer_num_classes
from .sampling import check_fractions, fraction_key, subset_for_task

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
DEFAULT_SEEDS = 3
METHODS = ("linear", "knn", "finetune")
PROBE_TASK_TYPES = ("classification", "multilabel")


@dataclass
class SplitFeatures:
    """Frozen features and labels of one task's train / validation / test splits (validation may be None)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None


def check_method(method: str, task_type: str) -> None:
    """The method must exist and handle the task type."""
    if method not in METHODS:
        raise ValueError(f"unknown evaluation method {method!r}; expected one of {', '.join(METHODS)}")
    if method in ("linear", "knn") and task_type not in PROBE_TASK_TYPES:
        raise ValueError(
            f"method {method!r} works on image-level labels (classification, multilabel), not on {task_type} tasks; "
            "use method 'finetune' for segmentation"
        )
    if task_type not in (*PROBE_TASK_TYPES, "segmentation"):
        raise ValueError(
            f"the data-scarcity protocol does not handle {task_type} tasks (classification, multilabel and, with "
            "method 'finetune', segmentation); score detection models with evaluation.metrics.detection_metrics"
        )


def probe_scarcity_curve(
    features: SplitFeatures,
    *,
    task_type: str = "classification",
    method: str = "linear",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: int = DEFAULT_SEEDS,
    metric: str | None = None,
    scale_validation: bool = True,
    k: int = DEFAULT_K,
    num_classes: int | None = None,
    finetune_kwargs: Mapping[str, Any] | None = None,
    feature_norm: str = "standard",
    progress: bool = False,
) -> dict[str, list[float]]:
    """{fraction key: [test `metric` per seed]} of a linear probe, kNN, or ("finetune") a new head trained with AdamW
    on the frozen features, each trained on stratified label fractions.

    With `scale_validation` (the default) the validation split used to choose C is subsampled with the same fraction
    and seed as the training split, so that "1 % of the labels" counts every label the probe sees; otherwise the full
    validation split is used.
    """
    check_method(method, task_type)
    if task_type not in PROBE_TASK_TYPES:
        raise ValueError(f"{task_type} tasks need the images, not frozen image vectors: use run_data_scarcity")
    metric = metric or default_metric(task_type)
    check_metric(task_type, metric)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    fractions = check_fractions(fractions)
    multilabel = task_type == "multilabel"
    train_x, train_y = check_features(features.train_x, features.train_y, "train", multilabel)
    test_x, test_y = check_features(features.test_x, features.test_y, "test", multilabel)
    has_val = features.val_x is not None and features.val_y is not None and len(features.val_y) > 0
    if has_val:
        val_x, val_y = check_features(features.val_x, features.val_y, "validation", multilabel)
    num_classes = num_classes or infer_num_classes(train_y, test_y, multilabel=multilabel)
    curve: dict[str, list[float]] = {}
    jobs = [(f, s) for f in fractions for s in range(seeds)]
    for fraction, seed in tqdm(jobs, desc=f"{method} probe", disable=not progress, leave=False):
        idx = subset_for_task(task_type, train_y, fraction, seed)
        if method == "knn":
            probe = train_knn(train_x[idx], train_y[idx], k=k, multilabel=multilabel, num_classes=num_classes)
        elif method == "finetune":
            probe = train_head(train_x[idx], train_y[idx], num_labels=num_classes, multilabel=multilabel, seed=seed,
                               **dict(finetune_kwargs or {}))  # fmt: skip
        else:
            vx = vy = None
            if has_val:
                vidx = subset_for_task(task_type, val_y, fraction, seed) if scale_validation else slice(None)
                vx, vy = val_x[vidx], val_y[vidx]
            probe = train_linear_probe(
                train_x[idx], train_y[idx], vx, vy,
                metric=metric, multilabel=multilabel, num_classes=num_classes, seed=seed, feature_norm=feature_norm,
            )  # fmt: skip
        curve.setdefault(fraction_key(fraction), []).append(float(probe.score(test_x, test_y, only=metric)[metric]))
    return curve


def _task_parts(task: Any) -> tuple[str, dict, Any]:
    """(name, spec, splits) of a `TaskDataset` or of a (name, spec, DatasetDict) tuple."""
    if isinstance(task, tuple) and len(task) == 3:
        return task
    if all(hasattr(task, a) for a in ("name", "spec", "splits")):
        return task.name, task.spec, task.splits
    raise TypeError(f"expected a TaskDataset or a (name, spec, DatasetDict) tuple, got {type(task).__name__}")


def _split(splits: Any, name: str, task: str, required: bool = True):
    part = splits.get(name) if hasattr(splits, "get") else None
    if part is None or len(part) == 0:
        if required:
            have = {k: len(v) for k, v in splits.items()} if hasattr(splits, "items") else {}
            raise ValueError(f"task {task!r}: the {name!r} split is missing or empty (splits: {have})")
        return None
    return part


def select_tasks(database: Mapping[str, Any], names: Sequence[str] | None) -> list[Any]:
    """The tasks named (all if None), with a clear error for an unknown name."""
    if names is None:
        return list(database.values())
    unknown = [n for n in names if n not in database]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(map(repr, unknown))}; available: {', '.join(sorted(database))}")
    return [database[n] for n in names]


def run_data_scarcity(
    tasks: Sequence[Any],
    encoders: Sequence[Any],
    *,
    processor: Any = None,
    method: str = "linear",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: int = DEFAULT_SEEDS,
    metric: str | None = None,
    batch_size: int = 32,
    cache_dir: str | None = None,
    scale_validation: bool = True,
    train_encoder: bool = False,
    finetune_kwargs: Mapping[str, Any] | None = None,
    feature_norm: str = "standard",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The protocol for each task x encoder; one result `{"task", "metric", "encoders": {name: curve}}` per task.

    tasks: `TaskDataset`s (or (name, spec, DatasetDict) tuples) with train and test splits (validation optional,
    used to choose C). encoders: `Encoder`s (name, model, processor). `processor` preprocesses every encoder's input
    (the same pipeline for all, as a fair comparison); without it each encoder's own processor is used.
    linear / knn: features are extracted once per split and encoder (cached in `cache_dir`), then the probe is
    trained per fraction x seed. finetune: a new head is trained per fraction x seed with AdamW, on the frozen
    features, or (`train_encoder`) together with a copy of the encoder on the images. Images go through the data
    package's `TaskCollator` (no augmentation).
    """
    fractions = check_fractions(fractions)
    feature_scaler(feature_norm)  # unknown names fail here, before any work
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not encoders:
        raise ValueError("no encoders to evaluate")
    names = [e.name for e in encoders]
    if len(set(names)) != len(names):
        raise ValueError(f"encoder names must be unique, got {names}")
    parts = [_task_parts(t) for t in tasks]
    if not parts:
        raise ValueError("no tasks to evaluate")
    for name, spec, splits in parts:  # fail before any expensive work
        check_method(method, spec["type"])
        if metric is not None:
            check_metric(spec["type"], metric)
        _split(splits, "train", name)
        _split(splits, "test", name)
    results = []
    for task_name, spec, splits in parts:
        task_type = spec["type"]
        task_metric = metric or default_metric(task_type)
        num_classes = len(spec["labels"])
        train, test = _split(splits, "train", task_name), _split(splits, "test", task_name)
        val = _split(splits, "validation", task_name, required=False)
        curves: dict[str, dict[str, list[float]]] = {}
        for encoder in encoders:
            enc_processor = processor if processor is not None else encoder.processor
            if enc_processor is None:
                raise ValueError(f"encoder {encoder.name!r} has no image processor and none was given")
            logger.info("task %s, encoder %s, method %s", task_name, encoder.name, method)
            common = dict(fractions=fractions, seeds=seeds, metric=task_metric, progress=progress)
            if task_type == "segmentation":
                curves[encoder.name] = _segmentation_curve(
                    encoder, enc_processor, task_name, spec, train, test, batch_size=batch_size,
                    train_encoder=train_encoder, finetune_kwargs=finetune_kwargs or {}, **common,
                )  # fmt: skip
            elif method in ("linear", "knn") or not train_encoder:
                features = _split_features(
                    encoder, enc_processor, task_name, spec, train, val, test, batch_size, cache_dir, progress
                )
                curves[encoder.name] = probe_scarcity_curve(
                    features, task_type=task_type, method=method, scale_validation=scale_validation,
                    num_classes=num_classes, finetune_kwargs=finetune_kwargs, feature_norm=feature_norm, **common,
                )  # fmt: skip
            else:
                curves[encoder.name] = _finetune_curve(
                    encoder, enc_processor, task_name, spec, train, test, batch_size=batch_size,
                    finetune_kwargs=finetune_kwargs or {}, **common,
                )  # fmt: skip
        results.append({"task": task_name, "metric": task_metric, "encoders": curves})
    return results


def task_loader(dataset: Any, spec: Mapping[str, Any], processor: Any, batch_size: int, shuffle: bool, seed: int = 0):
    """A DataLoader of {"pixel_values", "labels"} batches through the data package's `TaskCollator` (the same
    preprocessing as pretraining: modality rules, CT windows, 16-bit and HU images), no augmentation."""
    from torch import Generator
    from torch.utils.data import DataLoader

    from ..data import TaskCollator

    collator = TaskCollator(dict(spec), processor, augment=False, seed=seed)
    generator = Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collator, generator=generator)


def _split_features(
    encoder, processor, task_name, spec, train, val, test, batch_size, cache_dir, progress
) -> SplitFeatures:
    """Frozen features of the three splits of one task with one encoder."""

    def extract(dataset, split):
        loader = task_loader(dataset, spec, processor, batch_size, shuffle=False)
        return extract_features(
            encoder.model, loader, cache_dir=cache_dir, progress=progress, desc=f"{task_name}/{split} [{encoder.name}]"
        )

    tr, te = extract(train, "train"), extract(test, "test")
    va = extract(val, "validation") if val is not None else None
    return SplitFeatures(
        tr.features, tr.labels, te.features, te.labels,
        va.features if va is not None else None, va.labels if va is not None else None,
    )  # fmt: skip


def _finetune_curve(
    encoder, processor, task_name, spec, train, test, *, fractions, seeds, metric, progress, batch_size,
    finetune_kwargs,
) -> dict[str, list[float]]:  # fmt: skip
    """{fraction key: [test metric per seed]} of fine-tuning a copy of the encoder with a new head."""
    from .finetune import finetune_and_score

    task_type = spec["type"]
    train_labels = np.asarray(train["labels" if task_type == "multilabel" else "label"])
    kwargs = dict(finetune_kwargs)
    train_batch = int(kwargs.pop("batch_size", 16))
    curve: dict[str, list[float]] = {}
    jobs = [(f, s) for f in fractions for s in range(seeds)]
    for fraction, seed in tqdm(jobs, desc=f"{task_name} fine-tune [{encoder.name}]", disable=not progress):
        idx = subset_for_task(task_type, train_labels, fraction, seed)
        score = finetune_and_score(
            encoder.model,
            task_loader(train.select(idx), spec, processor, train_batch, shuffle=True, seed=seed),
            task_loader(test, spec, processor, batch_size, shuffle=False),
            num_labels=len(spec["labels"]), multilabel=task_type == "multilabel", train_encoder=True,
            metric=metric, seed=seed, **kwargs,
        )  # fmt: skip
        curve.setdefault(fraction_key(fraction), []).append(score)
    return curve


def _segmentation_curve(
    encoder, processor, task_name, spec, train, test, *, fractions, seeds, metric, progress, batch_size,
    train_encoder, finetune_kwargs,
) -> dict[str, list[float]]:  # fmt: skip
    """{fraction key: [test Dice / IoU per seed]} of training a UMedPT segmentation decoder + head on a fraction of
    the training images (random subsets: a mask has no single class), the encoder frozen unless `train_encoder`."""
    from .finetune import finetune_segmentation_and_score

    kwargs = dict(finetune_kwargs)
    train_batch = int(kwargs.pop("batch_size", 8))
    curve: dict[str, list[float]] = {}
    jobs = [(f, s) for f in fractions for s in range(seeds)]
    for fraction, seed in tqdm(jobs, desc=f"{task_name} segmentation [{encoder.name}]", disable=not progress):
        idx = subset_for_task("segmentation", np.arange(len(train)), fraction, seed)
        score = finetune_segmentation_and_score(
            encoder,
            task_loader(train.select(idx), spec, processor, train_batch, shuffle=True, seed=seed),
            task_loader(test, spec, processor, batch_size, shuffle=False),
            labels=list(spec["labels"]), train_encoder=train_encoder, metric=metric, seed=seed, **kwargs,
        )  # fmt: skip
        curve.setdefault(fraction_key(fraction), []).append(score)
    return curve
