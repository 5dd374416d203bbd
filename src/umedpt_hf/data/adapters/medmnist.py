"""Adapter: a MedMNIST ``.npz`` file (v2 at 28 px, MedMNIST+ at 64 / 128 / 224 px; 2D) -> classification task."""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, List, Value

from ..task import TaskDataset
from .generic import from_hf_dataset

NPZ_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def from_medmnist_npz(
    path: str | os.PathLike,
    labels: list[str] | None = None,
    task_type: str | None = None,
    name: str | None = None,
    modality: str = "unknown",
    **kwargs: Any,
) -> TaskDataset:
    """Read ``{train,val,test}_{images,labels}`` arrays from a MedMNIST ``.npz``.

    Images (N, H, W) or (N, H, W, 3) uint8; labels (N, 1) class indices or (N, C) multi-hot (then ``task_type``
    defaults to "multilabel"). ``labels`` are the class names (the ``medmnist`` INFO dict has them); default "0".."C-1".
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MedMNIST file {path!r} does not exist")
    try:
        archive = np.load(path)
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ValueError(f"MedMNIST file {path!r} is not a readable .npz: {error}") from None
    missing = [f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels") if f"{s}_{k}" not in archive.files]
    if missing:
        raise ValueError(f"MedMNIST file {path!r} lacks arrays {missing} (has {archive.files})")
    first = archive["train_labels"]
    num_columns = 1 if first.ndim == 1 else first.shape[1]
    task_type = task_type or ("multilabel" if num_columns > 1 else "classification")
    num_classes = (
        num_columns if task_type == "multilabel" else int(max(archive[f"{s}_labels"].max() for s in NPZ_SPLITS)) + 1
    )
    labels = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
    if task_type == "classification":
        label_feature, column = ClassLabel(names=labels), "label"
    else:
        label_feature, column = List(Value("float32")), "labels"
    features = Features({"image": Image(), column: label_feature})
    splits = {}
    for npz_split, split in NPZ_SPLITS.items():
        images, targets = archive[f"{npz_split}_images"], archive[f"{npz_split}_labels"]
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise ValueError(
                f"MedMNIST file {path!r}: {npz_split}_images has shape {images.shape}; only 2D (N,H,W[,C]) is supported"
            )
        if len(images) != len(targets):
            raise ValueError(f"MedMNIST file {path!r}: {len(images)} {npz_split} images but {len(targets)} labels")
        values = targets.reshape(len(targets), -1)
        column_values = (
            [int(v[0]) for v in values] if task_type == "classification" else values.astype(np.float32).tolist()
        )
        splits[split] = Dataset.from_dict({"image": list(images), column: column_values}, features=features)
    name = name or os.path.splitext(os.path.basename(path))[0]
    return from_hf_dataset(DatasetDict(splits), task_type, labels=labels, modality=modality, name=name, **kwargs)
