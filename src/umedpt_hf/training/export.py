"""Export the trained model and its processor with `save_pretrained`, atomically (temporary folder + rename)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from .run_folder import TEMP_MARKER, OutputDirError, RunFolder, make_temporary_folder, write_folder_atomically


def export_pretrained(
    accelerator: Accelerator, model: nn.Module, processor: Any, folder: RunFolder | None, target: str | Path
) -> Path:
    """`save_pretrained` the model (safetensors) and the processor into `target` (all ranks call it; main writes).

    Inside the run folder (`folder` given) a previous export of this run is replaced; elsewhere `target` must not
    exist yet or be empty, so that nothing the package did not write is ever overwritten.
    """
    target = Path(target)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)

        def write(temporary: Path) -> None:
            from transformers.utils import logging as transformers_logging

            bars = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()  # one shard: no bar between the training lines
            try:
                unwrapped.save_pretrained(temporary, is_main_process=True)
            finally:
                if bars:
                    transformers_logging.enable_progress_bar()
            if processor is not None:
                processor.save_pretrained(temporary)

        if folder is not None and _inside(target, folder.root):
            write_folder_atomically(folder, target, write)
        else:
            _write_new_folder(target, write)
    accelerator.wait_for_everyone()
    return target


def _write_new_folder(target: Path, write: Any) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutputDirError(f"{target} exists and is not empty; export into a new folder")
    temporary = target.parent / f".tmp_{target.name}_{uuid.uuid4().hex[:8]}"
    make_temporary_folder(temporary)
    write(temporary)
    (temporary / TEMP_MARKER).unlink()
    if target.exists():
        target.rmdir()
    temporary.rename(target)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
