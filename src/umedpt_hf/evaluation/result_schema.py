"""The data-scarcity result schema and its JSON file.

One result is an object with the required keys

- `task` (str), `metric` (str),
- `encoders`: {encoder name: {fraction key: [score per seed]}}, fraction keys decimal strings in (0, 1]
  ("0.01", ..., "1.0");

and the optional keys

- `type`: the task type ("classification", "multilabel", "segmentation", "detection"; the model card maps it to the
  Hub's task names);
- `role`: "held_out" (the evaluated model was not pretrained on the task) or "in_domain" (it was);
- `chance`: the chance level of `metric` (see `evaluation.chance`), or null where there is none;
- `train_examples`: {fraction key: [labelled training examples per seed]}.

A file holds one result or a list of them. The file holds no timestamps or durations: the same model, data and seed
give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .metrics import TASK_TYPES
from .sampling import check_fraction

Result = dict[str, Any]
REQUIRED_KEYS = ("task", "metric", "encoders")
OPTIONAL_KEYS = ("type", "role", "chance", "train_examples")
ROLES = ("held_out", "in_domain")


def _check_per_fraction(name: str, curve: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(curve, Mapping) or not curve:
        raise ValueError(f"{name}: expected a non-empty object {{fraction: [{what} per seed]}}")
    for key, values in curve.items():
        if not isinstance(key, str):
            raise ValueError(f"{name}: fraction keys must be strings, got {key!r}")
        check_fraction(key)
        if not isinstance(values, list) or not values or not all(isinstance(v, kind) for v in values):
            raise ValueError(f"{name}, fraction {key}: expected a non-empty list of {what} per seed")


def validate_result(result: Mapping[str, Any]) -> None:
    """Raise ValueError unless `result` follows the schema exactly."""
    if not isinstance(result, Mapping):
        raise ValueError(f"a data-scarcity result must be a JSON object, got {type(result).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    unknown = sorted(set(result) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if missing or unknown:
        raise ValueError(
            f"a data-scarcity result has exactly the keys {', '.join(REQUIRED_KEYS)} (optional: "
            f"{', '.join(OPTIONAL_KEYS)}); got {sorted(result)}"
        )
    if not isinstance(result["task"], str) or not isinstance(result["metric"], str):
        raise ValueError("'task' and 'metric' must be strings")
    encoders = result["encoders"]
    if not isinstance(encoders, Mapping) or not encoders:
        raise ValueError("'encoders' must be a non-empty object {encoder name: {fraction: [scores]}}")
    for name, curve in encoders.items():
        _check_per_fraction(f"encoder {name!r}", curve, (int, float), "scores")
    if "type" in result and result["type"] not in TASK_TYPES:
        raise ValueError(f"'type' must be one of {', '.join(TASK_TYPES)}, got {result['type']!r}")
    if "role" in result and result["role"] not in ROLES:
        raise ValueError(f"'role' must be one of {', '.join(ROLES)}, got {result['role']!r}")
    chance = result.get("chance")
    if chance is not None and (not isinstance(chance, (int, float)) or not math.isfinite(chance)):
        raise ValueError(f"'chance' must be a finite number or null, got {chance!r}")
    if "train_examples" in result:
        _check_per_fraction("train_examples", result["train_examples"], int, "example counts")


def as_result_list(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Result]:
    """One result or several as a validated list (shallow copies)."""
    results = [results] if isinstance(results, Mapping) else list(results)
    for result in results:
        validate_result(result)
    return [dict(result) for result in results]


def write_json(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Validate and write one result (an object) or several (a list). NaN has no JSON form: a NaN score raises."""
    results_list = as_result_list(results)
    for result in results_list:
        for name, curve in result["encoders"].items():
            for key, scores in curve.items():
                if not all(math.isfinite(score) for score in scores):
                    raise ValueError(f"{result['task']}/{name}/{key}: a score is NaN or infinite; cannot write JSON")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = results_list[0] if isinstance(results, Mapping) else results_list
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def read_json(path: str | Path) -> list[Result]:
    """Read a results file (one object or a list) as a validated list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    try:
        payload = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    return as_result_list(payload)


def role_label(result: Mapping[str, Any]) -> str:
    """How tables and plots name a result's role: "held out", "in-domain" or "" when the result has none."""
    return {"held_out": "held out", "in_domain": "in-domain"}.get(result.get("role", ""), "")
