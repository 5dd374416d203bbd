"""Multi-task database on HF `datasets`: canonical schema, validator, adapters, augmentation, collation, loaders,
and the embedded offline default database ``umedpt-mini``."""

from __future__ import annotations

from .adapters import from_coco, from_hf_dataset, from_image_folder, from_mask_folder, from_medmnist_npz
from .augment import PairedAugmentation, build_augmentation
from .build import build_database, ensure_database
from .collate import TaskCollator
from .held_out import HeldOutOverlapError, check_held_out_disjoint, task_source_ids
from .loaders import load_task, load_task_database, make_task_dataloader, read_tasks_file
from .output import OutputFolderError
from .registry import (
    DATABASE_NAME,
    DEFAULT_HELD_OUT_TASKS,
    DEFAULT_PRETRAINING_TASKS,
    DEFAULT_TASKS,
    default_database_dir,
)
from .schema import LABEL_COLUMNS, SPLITS, TASK_TYPES, make_spec, task_features
from .task import TaskDataset
from .validate import TaskSchemaError, validate_task_dataset

__all__ = [
    "DATABASE_NAME",
    "DEFAULT_HELD_OUT_TASKS",
    "DEFAULT_PRETRAINING_TASKS",
    "DEFAULT_TASKS",
    "LABEL_COLUMNS",
    "SPLITS",
    "TASK_TYPES",
    "HeldOutOverlapError",
    "OutputFolderError",
    "PairedAugmentation",
    "TaskCollator",
    "TaskDataset",
    "TaskSchemaError",
    "build_augmentation",
    "build_database",
    "check_held_out_disjoint",
    "default_database_dir",
    "ensure_database",
    "from_coco",
    "from_hf_dataset",
    "from_image_folder",
    "from_mask_folder",
    "from_medmnist_npz",
    "load_task",
    "load_task_database",
    "make_spec",
    "make_task_dataloader",
    "read_tasks_file",
    "task_features",
    "task_source_ids",
    "validate_task_dataset",
]
