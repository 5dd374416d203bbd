"""The per-task preprocessing contract: each pretraining task's preprocessing, recorded as its training applied it.

`UMedPTImageProcessor.task_preprocessing` maps task names to entries such as
`{"modality": "ct", "window": "soft_tissue", "size": {"height": 128, "width": 128}, "num_labels": 3}`; the processor
reproduces an entry with `processor(images, task=name)` or `processor.for_task(name)`. `task_preprocessing_from_spec`
is the one rule that turns a task spec (type, labels, modality, optional window) into such an entry: the training
pipeline records the exported contract with it and the training collator calls the processor through it.

Imports only numpy and its siblings (copied next to saved weights for remote-code loading).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .image_intensity_umedpt import DEFAULT_CT_WINDOW, MODALITY_INTENSITY, resolve_intensity_scaling

# processor settings a task entry may fix, plus "num_labels" (the label values its masks and boxes may hold)
TASK_SETTING_KEYS = ("modality", "window", "intensity_scaling", "percentiles", "value_range", "size", "do_pad")
TASK_ENTRY_KEYS = (*TASK_SETTING_KEYS, "num_labels")
TARGET_TASK_TYPES = ("segmentation", "detection")


def processor_modality(modality: str | None) -> str | None:
    """The processor's modality name, or None (the automatic rule) for "mixed", "unknown" and other names it lacks."""
    return modality if modality in MODALITY_INTENSITY else None


def size_dict(size: Any) -> dict[str, int]:
    """An int (square) or a {"height", "width"} mapping -> {"height": int, "width": int} with positive sides."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"height": size, "width": size}
    if isinstance(size, Mapping) and {"height", "width"} <= set(size):
        height, width = size["height"], size["width"]
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)):
            return {"height": int(height), "width": int(width)}
    raise ValueError(f"size must be a positive int or {{'height': int, 'width': int}}, got {size!r}.")


def task_preprocessing_from_spec(spec: Mapping[str, Any], size: Any = None, window: Any = None) -> dict[str, Any]:
    """The preprocessing of one task from its spec: modality rule, CT window, label count and (optionally) size.

    `window` overrides the spec's "window"; a CT task without one records the default window explicitly.
    """
    modality = processor_modality(spec.get("modality"))
    window = window if window is not None else spec.get("window")
    if window is None and resolve_intensity_scaling(modality, None) == "window":
        window = DEFAULT_CT_WINDOW
    entry: dict[str, Any] = {"modality": modality, "window": json_form(window)}
    if spec.get("type") in TARGET_TASK_TYPES and spec.get("labels") is not None:
        entry["num_labels"] = len(spec["labels"])
    if size is not None:
        entry["size"] = size_dict(size)
    return entry


def normalise_task_preprocessing(table: Any) -> dict[str, dict[str, Any]]:
    """Check a {task: entry} table (entry keys from `TASK_ENTRY_KEYS`) and return it in its JSON form."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise ValueError(f"task_preprocessing must map task names to settings, got {type(table).__name__}.")
    normalised = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not isinstance(entry, Mapping):
            raise ValueError(f"task_preprocessing[{name!r}] must be a mapping of settings, got {entry!r}.")
        unknown = sorted(set(entry) - set(TASK_ENTRY_KEYS))
        if unknown:
            raise ValueError(
                f"task_preprocessing[{name!r}] has unknown setting(s) {unknown}; allowed: {list(TASK_ENTRY_KEYS)}."
            )
        entry = {key: json_form(value) for key, value in entry.items()}
        if entry.get("size") is not None:
            entry["size"] = size_dict(entry["size"])
        labels = entry.get("num_labels")
        if labels is not None and (not isinstance(labels, int) or isinstance(labels, bool) or labels < 1):
            raise ValueError(f"task_preprocessing[{name!r}]['num_labels'] must be a positive int, got {labels!r}.")
        normalised[name] = entry
    return normalised


def task_entry(table: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The entry of `task`, or a ValueError naming the tasks the processor knows."""
    if task not in table:
        known = sorted(table) or "none: this processor records no task preprocessing"
        raise ValueError(f"Unknown task {task!r} for this processor; its tasks: {known}.")
    return dict(table[task])


def json_form(value: Any) -> Any:
    """Tuples -> lists (and numpy scalars -> numbers), so that a saved and reloaded contract compares equal."""
    if isinstance(value, (list, tuple)):
        return json.loads(json.dumps([json_form(v) for v in value]))
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value
