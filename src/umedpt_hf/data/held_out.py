"""Held out means held out: a held-out task may share no source volume or image with any pretraining task.

Sources are compared by id: each ``tasks.json`` entry lists ``source_ids`` (the volumes, images and atlases its
examples and labels come from, e.g. ``mni152_t1_2009a``, ``pydicom:RG1``); a task without that list is judged by the
values of its ``source`` column. A task with neither cannot be checked, which is said in a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class HeldOutOverlapError(ValueError):
    """A held-out task shares a name or a source with a pretraining task."""


def _entries(database_or_manifest: Any) -> dict[str, Any]:
    """``{name: TaskDataset or tasks.json entry}`` from a loaded database, a manifest, or a database folder / file."""
    if isinstance(database_or_manifest, (str, Path)):
        path = Path(database_or_manifest)
        path = path / "tasks.json" if path.is_dir() else path
        database_or_manifest = json.loads(path.read_text())
    if isinstance(database_or_manifest, Mapping) and isinstance(database_or_manifest.get("tasks"), list):
        return {entry["name"]: entry for entry in database_or_manifest["tasks"]}
    if isinstance(database_or_manifest, Mapping):
        return dict(database_or_manifest)
    raise TypeError(f"expected a task database, a tasks.json manifest or its path, got {type(database_or_manifest)}")


def task_source_ids(task: Any) -> set[str] | None:
    """The source ids of a task (a `TaskDataset` or a ``tasks.json`` entry), or None when it declares none."""
    entry = task if isinstance(task, Mapping) else getattr(task, "info", {}) or {}
    declared = entry.get("source_ids")
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(item, str) for item in declared):
            raise ValueError(f"task {entry.get('name', '?')!r}: 'source_ids' must be a list of strings")
        return set(declared)
    splits = getattr(task, "splits", None)
    if splits is not None and all("source" in part.column_names for part in splits.values()):
        return {value for part in splits.values() for value in part.unique("source") if value}
    return None


def check_held_out_disjoint(
    database_or_manifest: Any, pretraining: Iterable[str], held_out: Iterable[str]
) -> dict[str, set[str]]:
    """Raise `HeldOutOverlapError` if a held-out task is also a pretraining task or shares a source id with one.

    ``database_or_manifest``: ``{name: TaskDataset}`` (as `load_task_database` returns), a parsed ``tasks.json`` or
    the path of a database folder. Returns ``{task: source ids}`` of the tasks that were checked. Tasks that declare
    no sources are reported in one warning (their disjointness cannot be checked).
    """
    entries = _entries(database_or_manifest)
    pretraining, held_out = list(pretraining), list(held_out)
    both = sorted(set(pretraining) & set(held_out))
    if both:
        raise HeldOutOverlapError(f"task(s) {both} are both pretraining and held-out tasks")
    ids = {name: task_source_ids(entries[name]) for name in [*pretraining, *held_out] if name in entries}
    unknown = sorted(name for name, found in ids.items() if found is None)
    if unknown:
        warnings.warn(
            f"cannot check that the held-out tasks share no source with pretraining: task(s) {unknown} declare no "
            "'source_ids' in tasks.json and have no 'source' column",
            stacklevel=2,
        )
    for name in held_out:
        own = ids.get(name) or set()
        for other in pretraining:
            shared = sorted(own & (ids.get(other) or set()))
            if shared:
                raise HeldOutOverlapError(
                    f"held-out task {name!r} shares source(s) {shared} with pretraining task {other!r}: a held-out "
                    "task must use volumes and images that no pretraining task sees"
                )
    return {name: found for name, found in ids.items() if found is not None}
