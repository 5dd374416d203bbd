"""Build the embedded default database ``umedpt-mini`` offline from installed packages into a cache folder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from datasets.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
from tqdm.auto import tqdm

from .output import TASKS_FILE, BuildFolder, read_manifest
from .registry import DATABASE_NAME, DEFAULT_HELD_OUT_TASKS, default_database_dir
from .schema import SPLITS, task_features
from .sources import SOURCES, TASK_RECIPES, BuiltTask, TaskRecipe, locate_source
from .validate import validate_task_dataset

Locator = Callable[[str], Any]


def _say(message: str, echo: Callable[[str], None] | None) -> None:
    (echo or tqdm.write)(message)


def _select(only: Iterable[str] | None) -> list[TaskRecipe]:
    if not only:
        return list(TASK_RECIPES)
    known = {recipe.name: recipe for recipe in TASK_RECIPES}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the {DATABASE_NAME} tasks are {sorted(known)}")
    return [known[name] for name in only]


def _to_dataset_dict(built: BuiltTask) -> DatasetDict:
    features = task_features(built.spec["type"], built.spec["labels"], provenance=True)
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()  # one bar for the whole build, not one per split
    try:
        return DatasetDict({split: Dataset.from_dict(built.rows[split], features=features) for split in SPLITS})
    finally:
        if not was_disabled:
            enable_progress_bars()


def build_database(
    out_dir: str | Path | None = None,
    only: Iterable[str] | None = None,
    locate: Locator = locate_source,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build ``umedpt-mini`` into ``out_dir`` (default: `default_database_dir`) and return the ``tasks.json`` content.

    One `DatasetDict` (train / validation / test) per task in ``out_dir/<task>/`` (``save_to_disk``) and
    ``out_dir/tasks.json``, each entry naming its ``source_ids``. A missing source skips its tasks with a one-line
    message saying how to install it; ``locate(source_name)`` finds a source (None = not installed; injectable for
    tests). Raises FileNotFoundError when no source at all is installed, and ValueError for unknown task names.

    Nothing the build did not write is touched: a non-empty ``out_dir`` that an earlier build did not create is
    refused (`OutputFolderError`) unless ``overwrite`` (then the build writes next to its files, and still refuses
    a task folder or ``tasks.json`` that it did not write). What a build writes is recorded in
    ``out_dir/.umedpt_build.json``; task folders and ``tasks.json`` are replaced atomically.
    """
    out = Path(out_dir) if out_dir is not None else default_database_dir()
    recipes = _select(only)
    folder = BuildFolder.open(out, overwrite=overwrite)
    folder.claim([recipe.name for recipe in recipes] + [TASKS_FILE])
    needed = sorted({name for recipe in recipes for name in (*recipe.sources, *recipe.optional_sources)})
    located = {}
    for name in needed:
        found = locate(name)
        if found is None:
            source = SOURCES[name]
            _say(f"source {name!r} ({source.description}) not found; install it with: {source.install_hint}", echo)
        else:
            located[name] = found
    if not located:
        hints = "; ".join(f"{name}: {SOURCES[name].install_hint}" for name in needed)
        raise FileNotFoundError(
            f"no offline image source is installed, cannot build {DATABASE_NAME}. Install any of: {hints}"
        )
    folder.create()
    entries, skipped = [], {}
    started = time.perf_counter()
    for recipe in tqdm(recipes, desc=f"building {DATABASE_NAME}", unit="task", disable=not progress):
        missing = [name for name in recipe.sources if name not in located]
        if missing:
            hints = ", ".join(SOURCES[name].install_hint for name in missing)
            skipped[recipe.name] = f"needs {missing} ({hints})"
            _say(f"skipping task {recipe.name!r}: source {missing} missing; install with: {hints}", echo)
            continue
        task_started = time.perf_counter()
        try:
            built = recipe.build(located)
            data = _to_dataset_dict(built)
        except (ValueError, OSError) as error:
            skipped[recipe.name] = f"failed: {error}"
            _say(f"skipping task {recipe.name!r}: {error}", echo)
            continue
        empty = [split for split in SPLITS if len(data[split]) == 0]
        if empty:
            skipped[recipe.name] = f"empty splits {empty}"
            _say(f"skipping task {recipe.name!r}: splits {empty} are empty with the installed sources", echo)
            continue
        validate_task_dataset(data, built.spec, recipe.name)
        folder.save_task(data, recipe.name)
        sources = built.sources or list(recipe.sources)
        entries.append(
            {
                "name": recipe.name,
                **built.spec,
                "path": recipe.name,
                "format": "hf",
                "splits": {split: len(data[split]) for split in SPLITS},
                "source": "; ".join(SOURCES[name].description for name in sources),
                "source_ids": built.source_ids(),
                "licence": "; ".join(SOURCES[name].licence for name in sources),
                "label_origin": built.label_origin,
                "description": built.description,
                "held_out": recipe.name in DEFAULT_HELD_OUT_TASKS,
                "build_seconds": round(time.perf_counter() - task_started, 2),
            }
        )
    previous = read_manifest(out) if only and folder.wrote(TASKS_FILE) else None
    if previous:
        rebuilt = {recipe.name for recipe in recipes}
        kept = [e for e in previous.get("tasks", []) if e["name"] not in rebuilt and (out / e["path"]).is_dir()]
        order = {recipe.name: index for index, recipe in enumerate(TASK_RECIPES)}
        entries = sorted(kept + entries, key=lambda entry: order.get(entry["name"], len(order)))
    if not entries:
        raise FileNotFoundError(f"no {DATABASE_NAME} task could be built: {skipped}")
    manifest = {
        "database": DATABASE_NAME,
        "version": 2,
        "tasks": entries,
        "held_out_tasks": [name for name in DEFAULT_HELD_OUT_TASKS if any(e["name"] == name for e in entries)],
        "skipped": skipped,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    folder.write_json(TASKS_FILE, manifest)
    return manifest


def ensure_database(root: str | Path | None = None, **kwargs: Any) -> Path:
    """The database folder, built first if it has no ``tasks.json`` yet."""
    root = Path(root) if root is not None else default_database_dir()
    if not (root / TASKS_FILE).is_file():
        build_database(root, **kwargs)
    return root
