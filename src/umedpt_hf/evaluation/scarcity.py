"""The data-scarcity protocol: train on stratified fractions of the training labels x seeds, score on the test split.

`probe_scarcity_curve` is the core on frozen features (arrays); `run_data_scarcity` extracts features of each task
with each encoder (or fine-tunes, `method="finetune"`) and returns results in the schema of `report.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .chance import chance_level
from .features import find_label_column
from .finetune import train_head
from .knn import DEFAULT_K, train_knn
from .linear import train_linear_probe
from .metrics import check_metric, default_metric
from .probe import check_features, infer_num_classes
from .progress import progress as progress_bar
from .sampling import check_fractions, fraction_key, subset_for_task

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
DEFAULT_SEEDS = 3
METHODS = ("linear", "knn", "finetune")
PROBE_TASK_TYPES = ("classification", "multilabel")
# the task types each method handles (segmentation: a decoder and head trained on the images)
METHOD_TASK_TYPES = {
    "linear": PROBE_TASK_TYPES,
    "knn": PROBE_TASK_TYPES,
    "finetune": (*PROBE_TASK_TYPES, "segmentation"),
}


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
    seed: int = 0,
    progress: bool = False,
    desc: str | None = None,
) -> dict[str, list[float]]:
    """{fraction key: [test `metric` per seed]} of a linear probe, kNN, or ("finetune") a new head trained with AdamW
    on the frozen features, each trained on stratified label fractions; the seeds are `seed`, ..., `seed + seeds - 1`.

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
    check_train_covers_test(train_y, test_y, task_type, desc or "task")
    curve: dict[str, list[float]] = {}
    for fraction, job_seed in progress_bar(
        seed_jobs(fractions, seeds, seed), desc=desc or f"{method} probe", enabled=progress, unit="fits"
    ):
        idx = subset_for_task(task_type, train_y, fraction, job_seed)
        if method == "knn":
            probe = train_knn(train_x[idx], train_y[idx], k=k, multilabel=multilabel, num_classes=num_classes)
        elif method == "finetune":
            probe = train_head(train_x[idx], train_y[idx], num_labels=num_classes, multilabel=multilabel,
                               seed=job_seed, **dict(finetune_kwargs or {}))  # fmt: skip
        else:
            vx = vy = None
            if has_val:
                vidx = subset_for_task(task_type, val_y, fraction, job_seed) if scale_validation else slice(None)
                vx, vy = val_x[vidx], val_y[vidx]
            probe = train_linear_probe(
                train_x[idx], train_y[idx], vx, vy, metric=metric, multilabel=multilabel, num_classes=num_classes,
                seed=job_seed, feature_norm=feature_norm,
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


def seed_jobs(fractions: Sequence[float], seeds: int, seed: int = 0) -> list[tuple[float, int]]:
    """(fraction, seed) for every fraction and the seeds `seed`, ..., `seed + seeds - 1`, in that order."""
    return [(fraction, job_seed) for fraction in fractions for job_seed in range(seed, seed + seeds)]


def check_train_covers_test(train_y: np.ndarray, test_y: np.ndarray, task_type: str, task: str, labels=None) -> None:
    """Every class (multi-label: every label) with test examples must have a training example: a subset of the
    training split cannot teach what the split lacks, and its score would measure the split, not the encoder."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if task_type == "multilabel":
        missing = np.flatnonzero((test_y.sum(axis=0) > 0) & (train_y.sum(axis=0) == 0))
        what = "positive examples"
    else:
        missing = np.setdiff1d(np.unique(test_y), np.unique(train_y))
        what = "examples"
    if len(missing):
        names = [labels[int(c)] if labels is not None and int(c) < len(labels) else int(c) for c in missing]
        raise ValueError(
            f"task {task!r}: class(es) {names} have test {what} but none in the train split ({len(train_y)} "
            "examples): too few training examples to sample label fractions from"
        )


def task_labels(split: Any, task_type: str) -> np.ndarray:
    """Image-level labels of a split (class indices or an indicator matrix); example indices for mask/box tasks."""
    if task_type not in PROBE_TASK_TYPES:
        return np.arange(len(split))
    column = find_label_column(split)
    if column is None:
        raise ValueError(f"a {task_type} split needs a 'label' or 'labels' column (columns: {split.column_names})")
    return np.asarray(split[column])


def task_result(
    task: str, metric: str, spec: Mapping[str, Any], train: Any, test: Any, fractions, seeds: int, seed: int,
    pretraining_tasks: Collection[str] | None,
) -> dict[str, Any]:  # fmt: skip
    """The result of one task without its curves: task, type, metric, role, chance level and labelled examples per
    seed."""
    task_type = spec["type"]
    train_y = task_labels(train, task_type)
    result: dict[str, Any] = {"task": task, "type": task_type, "metric": metric}
    if pretraining_tasks is not None:
        result["role"] = "in_domain" if task in pretraining_tasks else "held_out"
    if task_type in PROBE_TASK_TYPES:
        test_y = task_labels(test, task_type)
        check_train_covers_test(train_y, test_y, task_type, task, list(spec.get("labels", [])))
        result["chance"] = chance_level(task_type, metric, train_y, test_y, len(spec["labels"]))
    examples: dict[str, list[int]] = {}
    for fraction, job_seed in seed_jobs(fractions, seeds, seed):
        examples.setdefault(fraction_key(fraction), []).append(
            len(subset_for_task(task_type, train_y, fraction, job_seed))
        )
    result["train_examples"] = examples
    return result


def run_data_scarcity(
    tasks: Sequence[Any],
    encoders: Sequence[Any],
    *,
    processor: Any = None,
    method: str = "linear",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: int = DEFAULT_SEEDS,
    seed: int = 0,
    metric: str | None = None,
    batch_size: int = 32,
    cache_dir: str | None = None,
    scale_validation: bool = True,
    train_encoder: bool = False,
    finetune_kwargs: Mapping[str, Any] | None = None,
    feature_norm: str = "standard",
    pretraining_tasks: Collection[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The protocol for each task x encoder; one result per task in the schema of `result_schema` (task, type,
    metric, role, chance, train_examples, encoders: {name: curve}).

    tasks: `TaskDataset`s (or (name, spec, DatasetDict) tuples) with train and test splits (validation optional,
    used to choose C). encoders: `Encoder`s (name, model, processor). `processor` preprocesses every encoder's input
    (the same pipeline for all, as a fair comparison); without it each encoder's own processor is used.
    seeds: subsets and training runs use the seeds `seed`, ..., `seed + seeds - 1`; the same arguments give the
    same results. pretraining_tasks: the tasks the evaluated model was pretrained on; each result's role is then
    "in_domain" or "held_out" (no role when None).
    linear / knn: features are extracted once per split and encoder (cached in `cache_dir`), then the probe is
    trained per fraction x seed. finetune: a new head is trained per fraction x seed with AdamW, on the frozen
    features, or (`train_encoder`) together with a copy of the encoder on the images. Images go through the data
    package's `TaskCollator` (no augmentation).
    """
    from .image_curves import finetune_curve, split_features

    fractions = check_fractions(fractions)
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
    results = []
    for name, spec, splits in parts:  # everything but the curves first: bad input fails before expensive work
        check_method(method, spec["type"])
        if metric is not None:
            check_metric(spec["type"], metric)
        train, test = _split(splits, "train", name), _split(splits, "test", name)
        task_metric = metric or default_metric(spec["type"])
        results.append(task_result(name, task_metric, spec, train, test, fractions, seeds, seed, pretraining_tasks))
    common = dict(fractions=fractions, seeds=seeds, seed=seed, progress=progress)
    for result, (task_name, spec, splits) in zip(results, parts):
        task_type = spec["type"]
        train, test = _split(splits, "train", task_name), _split(splits, "test", task_name)
        val = _split(splits, "validation", task_name, required=False)
        curves: dict[str, dict[str, list[float]]] = {}
        for encoder in encoders:
            enc_processor = processor if processor is not None else encoder.processor
            if enc_processor is None:
                raise ValueError(f"encoder {encoder.name!r} has no image processor and none was given")
            logger.info("task %s, encoder %s, method %s", task_name, encoder.name, method)
            label = f"{task_name} [{encoder.name}]"
            if task_type == "segmentation" or (method == "finetune" and train_encoder):
                curves[encoder.name] = finetune_curve(
                    encoder, enc_processor, spec, train, test, metric=result["metric"], batch_size=batch_size,
                    train_encoder=train_encoder, finetune_kwargs=finetune_kwargs or {}, desc=label, **common,
                )  # fmt: skip
            else:
                features = split_features(encoder, enc_processor, spec, train, val, test, batch_size, cache_dir,
                                          progress, label)  # fmt: skip
                curves[encoder.name] = probe_scarcity_curve(
                    features, task_type=task_type, method=method, scale_validation=scale_validation,
                    num_classes=len(spec["labels"]), finetune_kwargs=finetune_kwargs, feature_norm=feature_norm,
                    metric=result["metric"], desc=f"{label} {method}", **common,
                )  # fmt: skip
        result["encoders"] = curves
    return results
