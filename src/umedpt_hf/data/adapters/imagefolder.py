"""Adapter: a folder of class sub-folders (optionally under train/ validation/ test/) -> classification task."""

from __future__ import annotations

import os
from typing import Any

from datasets import load_dataset

from ..task import TaskDataset
from .generic import from_hf_dataset


def from_image_folder(
    path: str | os.PathLike, name: str | None = None, modality: str = "unknown", **kwargs: Any
) -> TaskDataset:
    """Read ``path/<class>/*.png`` or ``path/<split>/<class>/*.png`` with the `imagefolder` builder.

    Missing validation / test splits are carved from train (see `from_hf_dataset`).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder {path!r} does not exist")
    data = load_dataset("imagefolder", data_dir=path)
    if "label" not in next(iter(data.values())).column_names:
        classes = sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and any(os.scandir(entry.path)))
        if len(classes) == 1:
            raise ValueError(
                f"image folder {path!r} has one class sub-folder ({classes[0]!r}); a classification task needs at "
                "least two classes"
            )
        raise ValueError(f"image folder {path!r}: no class sub-folders found (expected {path}/<class>/<image>)")
    name = name or os.path.basename(os.path.normpath(path))
    return from_hf_dataset(data, "classification", modality=modality, name=name, **kwargs)
