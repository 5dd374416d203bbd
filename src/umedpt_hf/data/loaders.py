"""Read task databases (the built ``umedpt-mini`` or a user's ``tasks.json``) and make per-task DataLoaders.

Every task goes through one adapter per format; the built database uses the generic adapter (`from_hf_dataset`),
the same path as a user's Hub dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from datasets import Image
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from .adapters import from_coco, from_hf_dataset, from_image_folder, from_mask_folder, from_medmnist_npz
from .collate import TaskCollator
from .registry import default_database_dir
from .sampling import KeyedDataset, KeyedRandomSampler, KeyedSequentialSampler
from .task import TaskDataset

TASKS_FILE = "tasks.json"
ADAPTER_OPTIONS = ("column_mapping", "bbox_format", "validation_fraction", "test_fraction", "seed", "clip_boxes")


def load_task(entry: dict[str, Any], root: str | Path | None = None) -> TaskDataset:
    """One task from a ``tasks.json`` entry.

    ``{"name", "type", "labels", "modality", "path", "format"}``: ``format`` "hf" (default: a Hub name or a folder
    written by ``save_to_disk``; relative paths resolve against ``root``), "imagefolder", "maskfolder", "coco"
    (``path`` = the JSON, optional ``image_dir``) or "medmnist" (an ``.npz``). Optional: ``column_mapping``,
    ``bbox_format``, ``load_kwargs`` (for ``load_dataset``), ``window``.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"a task entry must be an object, got {entry!r:.60}")
    for key in ("name", "path"):
        if key not in entry:
            raise ValueError(f"task entry {entry.get('name', entry)!r} lacks {key!r}")
    name, fmt = entry["name"], entry.get("format", "hf")
    path: Any = entry["path"]
    if root is not None and not Path(path).is_absolute() and (Path(root) / path).exists():
        path = str(Path(root) / path)
    modality = entry.get("modality", "unknown")
    options = {key: entry[key] for key in ADAPTER_OPTIONS if key in entry}
    if fmt == "hf":
        if "type" not in entry:
            raise ValueError(f"task {name!r}: entry lacks 'type'")
        task = from_hf_dataset(
            path,
            entry["type"],
            labels=entry.get("labels"),
            modality=modality,
            name=name,
            **options,
            **entry.get("load_kwargs", {}),
        )
    elif fmt == "imagefolder":
        task = from_image_folder(path, name=name, modality=modality, **options)
    elif fmt == "maskfolder":
        task = from_mask_folder(path, labels=entry["labels"], name=name, modality=modality, **options)
    elif fmt == "coco":
        task = from_coco(path, image_dir=entry.get("image_dir"), name=name, modality=modality, **options)
    elif fmt == "medmnist":
        task = from_medmnist_npz(
            path, labels=entry.get("labels"), task_type=entry.get("type"), name=name, modality=modality, **options
        )
    else:
        raise ValueError(f"task {name!r}: unknown format {fmt!r}; use hf, imagefolder, maskfolder, coco or medmnist")
    if entry.get("window") is not None:
        task.spec["window"] = entry["window"]
    task.info = {k: v for k, v in entry.items() if k not in ("name", "type", "labels", "modality")}
    return task


def read_tasks_file(root: str | Path) -> dict[str, Any]:
    """The parsed ``root/tasks.json`` (or a path to a JSON file itself)."""
    path = Path(root)
    path = path / TASKS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; build the default database with `umedpt data build --out DIR`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: the top level must be an object with a 'tasks' list, got {type(manifest).__name__}")
    if not isinstance(manifest.get("tasks"), list):
        raise ValueError(f"{path} has no 'tasks' list")
    for position, entry in enumerate(manifest["tasks"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{path}: tasks[{position}] must be an object with a 'name' string, got {entry!r:.60}")
    return manifest


def load_task_database(
    root: str | Path | None = None, tasks: Iterable[str] | None = None, exclude: Iterable[str] | None = None
) -> dict[str, TaskDataset]:
    """``{name: TaskDataset}`` for the tasks listed in ``root/tasks.json`` (default root: `default_database_dir`).

    ``tasks`` selects names (unknown names raise ValueError), ``exclude`` drops some (e.g. `DEFAULT_HELD_OUT_TASKS`).
    """
    root = Path(root) if root is not None else default_database_dir()
    manifest = read_tasks_file(root)
    base = root if root.is_dir() else root.parent
    entries = {entry["name"]: entry for entry in manifest["tasks"]}
    wanted = list(tasks) if tasks is not None else list(entries)
    unknown = [name for name in wanted if name not in entries]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown} in {root}; available: {sorted(entries)}")
    dropped = set(exclude or ())
    return {name: load_task(entries[name], base) for name in wanted if name not in dropped}


def undecoded(dataset: Any) -> Any:
    """``dataset`` with its Image columns left undecoded (``{"bytes", "path"}``), for `TaskCollator` to decode."""
    features = getattr(dataset, "features", None)
    columns = [name for name, feature in (features or {}).items() if isinstance(feature, Image) and feature.decode]
    for name in columns:
        dataset = dataset.cast_column(name, Image(decode=False))
    return dataset


def make_task_dataloader(
    task: TaskDataset,
    split: str,
    processor: Any,
    batch_size: int,
    shuffle: bool = True,
    augment: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader over ``task.splits[split]`` that yields ``{"pixel_values", "labels"}`` (see `TaskCollator`).

    The order is seeded by ``seed`` (a new permutation every epoch). With ``augment`` the rows carry keys
    (`KeyedDataset`), so each example's augmentation depends on (seed, epoch, row) only: any ``num_workers`` gives the
    same batches. ``pin_memory``, ``persistent_workers`` and ``prefetch_factor`` are passed to the DataLoader (the
    last two only with workers).
    """
    if split not in task.splits:
        raise ValueError(f"task {task.name!r} has no split {split!r} (splits: {list(task.splits)})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    data = undecoded(task.splits[split])  # the collator decodes straight into numpy (`decode.decode_cell`)
    collator = TaskCollator(task.spec, processor, augment=augment, seed=seed)
    if augment:
        data = KeyedDataset(data)
        sampler = KeyedRandomSampler(data, seed=seed) if shuffle else KeyedSequentialSampler(data)
    else:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(data, generator=generator) if shuffle else SequentialSampler(data)
    options: dict[str, Any] = {}
    if num_workers > 0:
        options = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor}
    elif persistent_workers or prefetch_factor is not None:
        raise ValueError("persistent_workers and prefetch_factor need num_workers > 0")
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        **options,
    )
