"""Helper process for the training tests: trains the tiny model on synthetic tasks and saves its parameters.

Run directly (single process, optionally killing itself with SIGKILL after a step) or under torchrun (DDP, gloo).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from safetensors.torch import save_file
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments

TASKS = ["xray_cls", "ct_seg", "cell_det"]
SIZES = {"xray_cls": 16, "ct_seg": 8, "cell_det": 12}


def training_arguments(output_dir: str, max_steps: int, save_steps: int) -> MultiTaskTrainingArguments:
    return MultiTaskTrainingArguments(
        output_dir=output_dir,
        max_steps=max_steps,
        save_steps=save_steps,
        save_total_limit=None,
        learning_rate=1e-3,
        head_learning_rate=2e-3,
        warmup_steps=1,
        logging_steps=1,
        progress_bar=False,
        cpu=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--kill-after", type=int, default=0, help="SIGKILL this process after that step")
    parser.add_argument("--stop-after", type=int, default=0, help="exit with code 3 after that step (every rank)")
    parser.add_argument("--resume", action="store_true")
    options = parser.parse_args()

    def kill(trainer: MultiTaskTrainer, step: int, losses: dict) -> None:
        if step == options.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == options.stop_after:
            raise SystemExit(3)

    model = make_model(TASKS)
    args = training_arguments(options.out, options.max_steps, options.save_steps)
    callbacks = [kill] if options.kill_after or options.stop_after else []
    trainer = MultiTaskTrainer(model, make_loaders(TASKS, SIZES), args, callbacks=callbacks)
    result = trainer.train(resume_from=True if options.resume else None)
    if trainer.accelerator.is_main_process:
        out = Path(options.out)
        params = {
            name: p.detach().contiguous()
            for name, p in trainer.accelerator.unwrap_model(trainer.model).named_parameters()
        }
        save_file(params, str(out / "params.safetensors"))
        info = {"num_processes": trainer.accelerator.num_processes, "step": result.global_step}
        (out / "run_info.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main()
