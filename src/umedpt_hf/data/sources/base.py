"""What every offline source module shares: the source registry, task recipes and the result of building a task."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Located = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """An offline source of real images, found on this machine by ``locate`` (None when it is not installed)."""

    name: str
    description: str
    install_hint: str
    licence: str
    locate: Callable[[], Located | None]


@dataclass
class BuiltTask:
    """Rows of one task per split (``image`` arrays, label column, ``source``, ``region``) plus its metadata.

    Each row's ``source`` is the id of the volume or image it was cut from; ``label_sources`` names the ids of the
    volumes its labels come from (atlases, masks). Together they are the task's ``source_ids`` in ``tasks.json``.
    ``sources`` names the installed `Source` packages used (default: the recipe's).
    """

    name: str
    spec: dict[str, Any]
    rows: dict[str, dict[str, list]]
    label_origin: str
    description: str
    sources: list[str] = field(default_factory=list)
    label_sources: list[str] = field(default_factory=list)

    def source_ids(self) -> list[str]:
        """Sorted ids of every image and label volume the task uses (all splits)."""
        images = {source for columns in self.rows.values() for source in columns.get("source", [])}
        return sorted(images | set(self.label_sources))


@dataclass(frozen=True)
class TaskRecipe:
    """How to build one task: the sources it needs and the function that turns located sources into a `BuiltTask`."""

    name: str
    task_type: str
    modality: str
    sources: tuple[str, ...]
    build: Callable[[dict[str, Located]], BuiltTask]
    optional_sources: tuple[str, ...] = ()


def package_dir(module: str) -> Path | None:
    """Folder of an installed package without importing it (stardist must not be imported: it needs TensorFlow)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def existing(paths: dict[str, Path]) -> dict[str, Path] | None:
    """``paths`` if every file exists, else None."""
    return paths if all(Path(p).exists() for p in paths.values()) else None


SPLITS = ("train", "validation", "test")


def empty_rows(columns: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """``{split: {column: []}}`` for the three splits."""
    return {split: {column: [] for column in columns} for split in SPLITS}


def append_row(rows: dict[str, dict[str, list]], split: str, **values: Any) -> None:
    for column, value in values.items():
        rows[split][column].append(value)


def cap_rows(
    rows: dict[str, dict[str, list]], limit: dict[str, int], by: str | None = None, seed: int = 0
) -> dict[str, dict[str, list]]:
    """Keep at most ``limit[split]`` rows per split (per value of column ``by`` if given), chosen with a seeded RNG."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for split, columns in rows.items():
        count = len(next(iter(columns.values())))
        groups: dict[Any, list[int]] = {}
        for index in range(count):
            groups.setdefault(columns[by][index] if by else None, []).append(index)
        keep: list[int] = []
        for indices in groups.values():
            if len(indices) > limit[split]:
                indices = sorted(rng.choice(indices, size=limit[split], replace=False).tolist())
            keep.extend(indices)
        keep.sort()
        out[split] = {column: [values[i] for i in keep] for column, values in columns.items()}
    return out
