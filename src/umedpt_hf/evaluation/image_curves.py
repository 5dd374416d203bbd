"""The parts of the data-scarcity protocol that read images: frozen features of a task's splits, and the curves of
models trained on the images (a fine-tuned encoder, or a segmentation decoder and head)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .features import extract_features
from .progress import progress as progress_bar
from .sampling import fraction_key, subset_for_task
from .scarcity import SplitFeatures, seed_jobs, task_labels


def task_loader(dataset: Any, spec: Mapping[str, Any], processor: Any, batch_size: int, shuffle: bool, seed: int = 0):
    """A DataLoader of {"pixel_values", "labels"} batches through the data package's `TaskCollator` (the same
    preprocessing as pretraining: modality rules, CT windows, 16-bit and HU images), no augmentation; a shuffling
    loader draws its order from its own generator seeded with `seed`."""
    from torch import Generator
    from torch.utils.data import DataLoader

    from ..data import TaskCollator

    collator = TaskCollator(dict(spec), processor, augment=False, seed=seed)
    generator = Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collator, generator=generator)


def split_features(
    encoder: Any, processor: Any, spec: Mapping[str, Any], train: Any, val: Any, test: Any, batch_size: int,
    cache_dir: str | None, progress: bool, label: str,
) -> SplitFeatures:  # fmt: skip
    """Frozen features of the three splits of one task with one encoder (`val` may be None)."""

    def extract(dataset, split):
        loader = task_loader(dataset, spec, processor, batch_size, shuffle=False)
        return extract_features(encoder.model, loader, cache_dir=cache_dir, progress=progress, desc=f"{label} {split}")

    tr, te = extract(train, "train"), extract(test, "test")
    va = extract(val, "validation") if val is not None else None
    return SplitFeatures(
        tr.features, tr.labels, te.features, te.labels,
        va.features if va is not None else None, va.labels if va is not None else None,
    )  # fmt: skip


def finetune_curve(
    encoder: Any, processor: Any, spec: Mapping[str, Any], train: Any, test: Any, *, fractions: Sequence[float],
    seeds: int, seed: int, metric: str, progress: bool, batch_size: int, train_encoder: bool,
    finetune_kwargs: Mapping[str, Any], desc: str,
) -> dict[str, list[float]]:  # fmt: skip
    """{fraction key: [test `metric` per seed]} of a model trained on the images of each training subset:
    classification / multilabel: a copy of the encoder with a new head (the encoder trained too);
    segmentation: a `UMedPTForSemanticSegmentation` (pixel decoder + new head; the encoder with `train_encoder`)."""
    from .finetune import finetune_and_score, finetune_segmentation_and_score

    task_type = spec["type"]
    segmentation = task_type == "segmentation"
    kwargs = dict(finetune_kwargs)
    train_batch = int(kwargs.pop("batch_size", 8 if segmentation else 16))
    train_y = task_labels(train, task_type)
    curve: dict[str, list[float]] = {}
    jobs = seed_jobs(fractions, seeds, seed)
    kind = "segmentation" if segmentation else "fine-tune"
    for fraction, job_seed in progress_bar(jobs, desc=f"{desc} {kind}", enabled=progress, unit="runs"):
        idx = subset_for_task(task_type, train_y, fraction, job_seed)
        train_loader = task_loader(train.select(idx), spec, processor, train_batch, shuffle=True, seed=job_seed)
        test_loader = task_loader(test, spec, processor, batch_size, shuffle=False)
        if segmentation:
            score = finetune_segmentation_and_score(
                encoder, train_loader, test_loader, labels=list(spec["labels"]), train_encoder=train_encoder,
                metric=metric, seed=job_seed, **kwargs,
            )  # fmt: skip
        else:
            score = finetune_and_score(
                encoder.model, train_loader, test_loader, num_labels=len(spec["labels"]),
                multilabel=task_type == "multilabel", train_encoder=True, metric=metric, seed=job_seed, **kwargs,
            )  # fmt: skip
        curve.setdefault(fraction_key(fraction), []).append(score)
    return curve
