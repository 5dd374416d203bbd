"""Data-scarcity results for a model card: read the evaluation JSON, tabulate it, plot it, turn it into ``model-index``.

Schema of one entry (a file holds one entry or a list of them)::

    {"task": "aal_lobes", "metric": "accuracy", "type": "classification",      # "type" optional
     "encoders": {"umedpt": {"0.01": [0.61, 0.63, 0.60], "1.0": [0.82, 0.84, 0.83]},   # training fraction -> seeds
                  "imagenet": {...}}}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import EvalResult

HUB_TASK_TYPES = {
    "classification": "image-classification",
    "multilabel": "image-classification",
    "segmentation": "image-segmentation",
    "detection": "object-detection",
}


@dataclass(frozen=True)
class ScarcityResult:
    """One task's scores for each encoder at each fraction of the training data (one score per seed)."""

    task: str
    metric: str
    scores: dict[str, dict[float, list[float]]]
    task_type: str | None = None

    @property
    def fractions(self) -> list[float]:
        return sorted({fraction for per_fraction in self.scores.values() for fraction in per_fraction})


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def _parse_entry(entry: object, where: str) -> ScarcityResult:
    if not isinstance(entry, dict):
        raise ValueError(
            f"{where}: expected an object with 'task', 'metric' and 'encoders', got {type(entry).__name__}"
        )
    missing = [key for key in ("task", "metric", "encoders") if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}; expected {{'task', 'metric', 'encoders'}}")
    if not isinstance(entry["encoders"], dict) or not entry["encoders"]:
        raise ValueError(f"{where}: 'encoders' must map encoder names to {{fraction: [scores per seed]}}")
    scores: dict[str, dict[float, list[float]]] = {}
    for encoder, per_fraction in entry["encoders"].items():
        if not isinstance(per_fraction, dict) or not per_fraction:
            raise ValueError(f"{where}: encoder {encoder!r} must map fractions such as '0.01' to lists of scores")
        scores[encoder] = {}
        for fraction, values in per_fraction.items():
            try:
                key = float(fraction)
            except ValueError:
                raise ValueError(f"{where}: fraction {fraction!r} of encoder {encoder!r} is not a number") from None
            if not 0 < key <= 1:
                raise ValueError(f"{where}: fraction {fraction!r} of encoder {encoder!r} is not in (0, 1]")
            if isinstance(values, (int, float)):
                values = [values]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            if not values or not numbers:
                raise ValueError(
                    f"{where}: scores of {encoder!r} at {fraction} must be a non-empty list of finite numbers"
                )
            scores[encoder][key] = [float(v) for v in values]
    return ScarcityResult(str(entry["task"]), str(entry["metric"]), scores, entry.get("type"))


def load_scarcity_results(source: str | Path | dict | list) -> list[ScarcityResult]:
    """Read and validate an evaluation JSON file (or its already-parsed content)."""
    where = "evaluation results"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation JSON not found: {path}")
        where = str(path)
        try:
            source = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
    entries = source if isinstance(source, list) else [source]
    if not entries:
        raise ValueError(f"{where} holds no results (an empty list)")
    return [_parse_entry(entry, f"{where}[{i}]") for i, entry in enumerate(entries)]


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def as_schema(result: ScarcityResult) -> dict:
    """The evaluation JSON form of a result (``umedpt_hf.evaluation.report`` draws tables and plots from it)."""
    encoders = {
        name: {repr(fraction): values for fraction, values in sorted(per_fraction.items())}
        for name, per_fraction in result.scores.items()
    }
    return {"task": result.task, "metric": result.metric, "encoders": encoders}


def scarcity_table(results: list[ScarcityResult]) -> str:
    """A markdown table: one row per task and encoder, one column per fraction, cells 'mean ± std' over seeds."""
    from umedpt_hf.evaluation.report import markdown_table

    return markdown_table([as_schema(result) for result in results]).rstrip("\n")


def model_encoder_name(results: list[ScarcityResult], preferred: str | None = None) -> str | None:
    """Which encoder in the results is the model being published: ``preferred``, else one named like 'umedpt'."""
    names = list(dict.fromkeys(name for result in results for name in result.scores))
    if preferred is not None:
        if preferred not in names:
            raise ValueError(f"encoder {preferred!r} is not in the evaluation results (found {names})")
        return preferred
    umedpt = [name for name in names if "umedpt" in name.lower()]
    if umedpt:
        return umedpt[0]
    return names[0] if len(names) == 1 else None


def eval_results_for(
    results: list[ScarcityResult], encoder: str, task_types: dict[str, str] | None = None
) -> list[EvalResult]:
    """``EvalResult``s (what ``model-index`` is made of) of one encoder: the mean score at each data fraction."""
    task_types = task_types or {}
    out = []
    for result in results:
        per_fraction = result.scores.get(encoder)
        if not per_fraction:
            continue
        task_type = result.task_type or task_types.get(result.task) or "classification"
        for fraction in sorted(per_fraction):
            mean, _ = _mean_std(per_fraction[fraction])
            out.append(
                EvalResult(
                    task_type=HUB_TASK_TYPES.get(task_type, "image-classification"),
                    dataset_type=result.task,
                    dataset_name=result.task,
                    dataset_split="test",
                    metric_type=result.metric,
                    metric_name=f"{result.metric} ({_percent(fraction)} of training data, "
                    f"mean of {len(per_fraction[fraction])} seeds)",
                    metric_value=round(mean, 4),
                )
            )
    return out


def plot_scarcity(results: list[ScarcityResult], path: str | Path) -> Path:
    """Score against fraction of training data (log x), one panel per task, one line per encoder; saves a PNG."""
    from umedpt_hf.evaluation.report import plot_results

    return plot_results([as_schema(result) for result in results], path, title="Data scarcity: score vs labels used")
