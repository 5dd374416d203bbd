"""Resumable checkpoints: `accelerator.save_state` written atomically under `<output_dir>/checkpoints/step_XXXXXXXX`.

A checkpoint holds the model, optimizer, scheduler, RNG states of every rank, and the loop state (step and each task
stream's position). It is written into a temporary folder and renamed when complete, so a run killed while saving never
leaves a half-written "latest" checkpoint; a folder counts as a checkpoint only when `trainer_state.json` is in it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from .streams import TaskBatchStream

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class LoopState:
    """The loop's own resumable state, registered with `accelerator.register_for_checkpointing`."""

    def __init__(self, streams: Mapping[str, TaskBatchStream]) -> None:
        self.streams = streams
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "task_names": list(self.streams),
            "streams": {name: stream.state_dict() for name, stream in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved, current = list(state["task_names"]), list(self.streams)
        if saved != current:
            raise ValueError(
                f"the checkpoint was trained on tasks {saved} but this run has tasks {current}; resume with the same "
                "task list (or start a new output_dir)"
            )
        self.step = int(state["step"])
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])


def checkpoints_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def read_trainer_state(checkpoint: str | Path) -> dict[str, Any]:
    """The human-readable summary saved next to a checkpoint."""
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no {STATE_FILE})")
    return json.loads(path.read_text())


def remove_partial_checkpoints(output_dir: str | Path) -> None:
    """Delete temporary folders left by a run killed while saving (main process only)."""
    root = checkpoints_root(output_dir)
    if root.is_dir():
        for path in root.glob(".tmp_step_*"):
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    summary: Mapping[str, Any],
    total_limit: int | None = None,
) -> Path:
    """Save a resumable checkpoint for `step` on every rank; return its folder."""
    root = checkpoints_root(output_dir)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(dict(summary), indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if total_limit:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resolve_resume(resume_from: str | Path | bool | None, output_dir: str | Path) -> Path | None:
    """`True` -> newest checkpoint of `output_dir` (None if there is none); a path -> that checkpoint."""
    if resume_from in (None, False):
        return None
    if resume_from is True:
        return latest_checkpoint(output_dir)
    path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"cannot resume from {path}: not a complete checkpoint (no {STATE_FILE})")
    return path
