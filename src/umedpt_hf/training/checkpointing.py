"""Resumable checkpoints under `<output_dir>/checkpoints/step_XXXXXXXX`, without pickle.

A checkpoint holds the model (`model.safetensors`), the optimizer (`optimizer.safetensors` + `optimizer.json`), the
schedule (`scheduler.json`), each rank's random-number states (`rng_state_<rank>.safetensors` / `.json`) and loop
state (`loop_state_<rank>.json`: each task stream's position), and `trainer_state.json` (step, tasks, validation
state, options, and the size of every file). It is written into a temporary folder and renamed when complete; a folder
counts as a checkpoint only when `trainer_state.json` is in it. Loading reads safetensors and JSON only: a planted
pickle (under any name) is never unpickled, and a truncated or foreign file is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from .run_folder import TEMP_MARKER, RunFolder, make_temporary_folder, remove_temporary_folders
from .state_files import (
    CheckpointError,
    load_model_state,
    load_optimizer,
    load_rng_states,
    load_scheduler,
    model_state,
    read_json,
    save_optimizer,
    save_rng_states,
    save_scheduler,
    write_json,
)

STATE_FILE = "trainer_state.json"
CHECKPOINT_FORMAT = "umedpt_hf.checkpoint/1"
_STEP_DIR = re.compile(r"^step_(\d+)$")

__all__ = [
    "CHECKPOINT_FORMAT",
    "STATE_FILE",
    "CheckpointError",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_trainer_state",
    "resolve_resume",
    "save_checkpoint",
]


def checkpoints_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def checkpoint_step(path: Path) -> int:
    return int(Path(path).name.split("_")[-1])


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
    """The summary saved with a checkpoint (step, tasks, validation state, options, files)."""
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no {STATE_FILE})")
    state = read_json(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a trainer state (a JSON object)")
    return state


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


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    folder: RunFolder | None,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loop_state: Mapping[str, Any],
    summary: Mapping[str, Any],
    total_limit: int | None = None,
) -> Path:
    """Save a resumable checkpoint for `step` on every rank (all ranks call it; `folder` is the main process's)."""
    root = checkpoints_root(output_dir)
    final = root / f"step_{step:08d}"
    temporary = root / f".tmp_step_{step:08d}"
    if accelerator.is_main_process:
        remove_temporary_folders(root)
        make_temporary_folder(temporary)
    accelerator.wait_for_everyone()
    rank = accelerator.process_index
    save_rng_states(temporary, rank)
    write_json(temporary / f"loop_state_{rank}.json", dict(loop_state))
    if accelerator.is_main_process:
        save_file(model_state(accelerator.unwrap_model(model)), str(temporary / "model.safetensors"))
        save_optimizer(optimizer, temporary)
        save_scheduler(scheduler, temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        assert folder is not None
        (temporary / TEMP_MARKER).unlink()
        files = {path.name: path.stat().st_size for path in sorted(temporary.iterdir()) if path.is_file()}
        write_json(
            temporary / STATE_FILE,
            {"format": CHECKPOINT_FORMAT, "run_id": folder.run_id, **dict(summary), "files": files},
        )
        if final.exists():
            kept = folder.remove(final)
            if kept:
                raise CheckpointError(f"{final} holds files umedpt_hf did not write ({kept[:3]}); not replacing it")
        temporary.rename(final)
        folder.record([final])
        if total_limit:
            for old in list_checkpoints(folder.root)[:-total_limit]:
                if folder.owns(old / STATE_FILE):
                    folder.remove(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    accelerator: Accelerator, checkpoint: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore model, optimizer, schedule and this rank's RNG states; return (trainer state, this rank's loop state)."""
    checkpoint = Path(checkpoint)
    state = read_trainer_state(checkpoint)
    if state.get("format") != CHECKPOINT_FORMAT:
        pickles = sorted(p.name for p in checkpoint.iterdir() if p.suffix in (".pkl", ".bin"))
        raise CheckpointError(
            f"{checkpoint} is not a umedpt_hf {CHECKPOINT_FORMAT} checkpoint"
            + (
                f" (it holds pickle files {pickles[:3]}, which are never loaded: unpickling can run code)"
                if pickles
                else ""
            )
            + "; start a new run (--overwrite)"
        )
    files = state.get("files")
    if not isinstance(files, dict):
        raise CheckpointError(f"{checkpoint / STATE_FILE} lists no files")
    rank = accelerator.process_index
    needed = ["model.safetensors", "optimizer.safetensors", "optimizer.json", "scheduler.json"]
    needed += [f"rng_state_{rank}.safetensors", f"rng_state_{rank}.json", f"loop_state_{rank}.json"]
    for name in needed:
        path = checkpoint / name
        if name not in files:
            raise CheckpointError(
                f"{checkpoint} has no {name} (was it saved with another number of processes?); resume with the same "
                "launch set-up"
            )
        if not path.is_file() or path.stat().st_size != files[name]:
            size = path.stat().st_size if path.is_file() else "missing"
            raise CheckpointError(f"{path} is truncated or replaced ({size} bytes, {files[name]} written)")
    load_model_state(accelerator.unwrap_model(model), checkpoint / "model.safetensors")
    load_optimizer(optimizer, checkpoint)
    load_scheduler(scheduler, checkpoint)
    loop_state = read_json(checkpoint / f"loop_state_{rank}.json")
    load_rng_states(checkpoint, rank)
    return state, loop_state
