"""Training logs: one JSON object per line, experiment trackers through accelerate (`report_to`), the console.

The JSON-lines file `<output_dir>/train_log.jsonl` is always written (main process). `report_to` names trackers that
accelerate supports (tensorboard, wandb, mlflow, trackio, comet_ml, aim, clearml, dvclive, swanlab) or "all"
(whatever is installed); they receive the same scalars through `accelerator.log`. On a terminal a tqdm bar shows the
progress with the loss and images per second; otherwise one plain line per logging step is printed instead.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

LOG_FILE = "train_log.jsonl"
TRACKING_PROJECT = "umedpt_hf"


def resolve_trackers(report_to: Sequence[str] | str | None) -> list[str]:
    """Validated tracker names for `Accelerator(log_with=...)`: unknown or uninstalled names are an error."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    names = [name for name in names if name not in ("none", "")]
    available = sorted(str(getattr(kind, "value", kind)) for kind in get_available_trackers())
    if names == ["all"]:
        return available
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise ValueError(
                f"training.report_to: unknown tracker {name!r}; accelerate supports {sorted(LOGGER_TYPE_TO_CLASS)}"
            )
        if name not in available:
            hint = " (pip install 'umedpt_hf[track]')" if name == "tensorboard" else f" (pip install {name})"
            raise ValueError(f"training.report_to: {name} is not installed{hint}; installed: {available or 'none'}")
    return names


class TrainingLogger:
    """Appends records to `<output_dir>/train_log.jsonl` and sends their scalars to the accelerate trackers."""

    def __init__(self, output_dir: str | Path, enabled: bool = True, accelerator: Any = None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / LOG_FILE
        self.accelerator = accelerator if accelerator is not None and accelerator.trackers else None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, record: Mapping[str, Any]) -> None:
        """Write one record; non-finite floats become null so that the file stays valid JSON."""
        if not self.enabled:
            return
        clean = {key: _jsonable(value) for key, value in record.items()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean) + "\n")
        if self.accelerator is not None and "step" in record:
            scalars = {
                key: value
                for key, value in clean.items()
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
            }
            self.accelerator.log(scalars, step=int(record["step"]))

    def close(self) -> None:
        if self.accelerator is not None:
            self.accelerator.end_training()
            self.accelerator = None


class Console:
    """Progress on the main process: a tqdm bar on a terminal, else one plain line per logging step."""

    def __init__(self, total: int, initial: int, enabled: bool, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.enabled = enabled
        self.interactive = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = (
            tqdm(total=total, initial=initial, desc="pretraining", dynamic_ncols=True, file=self.stream)
            if self.interactive
            else None
        )

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def show(self, record: Mapping[str, Any]) -> None:
        """The loss and images/s of a logging step (bar postfix, or one line)."""
        if not self.enabled:
            return
        loss, speed = record.get("loss"), record.get("images_per_second")
        if self.bar is not None:
            self.bar.set_postfix({"loss": _short(loss), "img/s": _short(speed, 1)}, refresh=True)
            return
        tasks = " ".join(f"{key[5:]}={_short(value)}" for key, value in record.items() if key.startswith("loss/"))
        line = f"step {record['step']}/{self.total} loss {_short(loss)} img/s {_short(speed, 1)} {tasks}".rstrip()
        print(line, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines training log."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def flat_hyperparameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars only (lists and None as text): what every tracker accepts as run configuration."""
    return {
        key: value if isinstance(value, (bool, int, float, str)) else str(value)
        for key, value in values.items()
        if not isinstance(value, Mapping)
    }


def _short(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return f"{value:.{digits}g}" if digits != 1 else f"{value:.1f}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
