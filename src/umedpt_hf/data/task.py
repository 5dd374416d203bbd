"""`TaskDataset`: one task of the multi-task database (its spec and its train/validation/test splits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict


@dataclass
class TaskDataset:
    """A named task: ``spec`` is the ``UMedPTConfig.tasks`` entry, ``splits`` a DatasetDict in the canonical schema."""

    name: str
    spec: dict[str, Any]
    splits: DatasetDict
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.spec["type"]

    @property
    def labels(self) -> list[str]:
        return list(self.spec["labels"])

    @property
    def modality(self) -> str:
        return self.spec.get("modality", "unknown")

    def split_sizes(self) -> dict[str, int]:
        return {split: len(part) for split, part in self.splits.items()}

    def __repr__(self) -> str:
        sizes = self.split_sizes()
        return f"TaskDataset(name={self.name!r}, type={self.type!r}, modality={self.modality!r}, splits={sizes})"
