"""Throughput of `MultiTaskTrainer` against a bare hand-written PyTorch loop on the same batches, in one run.

    python benchmarks/loop_overhead.py [--out FILE] [--device cpu|cuda] [--preset tiny|swinv2_t]

Both loops do the same work per step: for each task one forward, `loss.backward()`; then clip, AdamW step, schedule
step, zero the gradients. Batches are made in memory beforehand, so data loading is excluded from both. The two loops
alternate (`--repeats` times each, fresh model copies) and the first `--warmup` steps of every run are not timed; the
result is the ratio of the median images/s. Writes JSON (default benchmarks/results/loop_overhead.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from memory_vs_tasks import device_name, synthetic_batch, task_specs

from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
from umedpt_hf.presets import config_from_preset
from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, build_optimizer, build_scheduler

RESULTS = Path(__file__).parent / "results"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bare_loop(model: torch.nn.Module, batches: dict[str, list], args: MultiTaskTrainingArguments, steps: int,
              warmup: int, device: str) -> float:  # fmt: skip
    """Images/s of a hand-written loop: forward + backward per task, one step per round."""
    model.to(device).train()
    optimizer = build_optimizer(model, args)
    scheduler = build_scheduler(optimizer, args, steps)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.mixed_precision == "bf16")
    images, start = 0, 0.0
    for step in range(steps):
        if step == warmup:
            _sync(device)
            start, images = time.perf_counter(), 0
        for task, task_batches in batches.items():
            batch = task_batches[step % len(task_batches)]
            pixel_values = batch["pixel_values"].to(device)
            labels = _to(batch["labels"], device)
            with autocast:
                loss = model(pixel_values=pixel_values, task=task, labels=labels).loss
            loss.backward()
            images += pixel_values.shape[0]
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return images / (time.perf_counter() - start)


def trainer_loop(model: torch.nn.Module, batches: dict[str, list], args: MultiTaskTrainingArguments, warmup: int,
                 device: str) -> float:  # fmt: skip
    """Images/s of `MultiTaskTrainer.train` over the same steps (timed from the end of the warm-up steps)."""
    marks: dict[int, float] = {}

    def clock(trainer: MultiTaskTrainer, step: int, losses: dict) -> None:
        if step in (warmup, args.max_steps):
            _sync(device)
            marks[step] = time.perf_counter()

    trainer = MultiTaskTrainer(model, batches, args, callbacks=[clock])
    trainer.train()
    per_step = sum(task_batches[0]["pixel_values"].shape[0] for task_batches in batches.values())
    return per_step * (args.max_steps - warmup) / (marks[args.max_steps] - marks[warmup])


def _to(labels: Any, device: str) -> Any:
    if isinstance(labels, list):
        return [{key: value.to(device) for key, value in target.items()} for target in labels]
    return labels.to(device)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MultiTaskTrainer vs a bare PyTorch loop, images per second")
    parser.add_argument("--out", type=Path, default=RESULTS / "loop_overhead.json")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--preset", choices=("tiny", "swinv2_t"), default="tiny")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mixed-precision", choices=("no", "bf16"), default="no")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    torch.manual_seed(0)
    specs = task_specs(options.tasks)
    initial = UMedPTForMultiTask(config_from_preset(options.preset, tasks=specs))
    generator = torch.Generator().manual_seed(0)
    batches = {
        name: [synthetic_batch(spec, options.batch_size, options.image_size, generator) for _ in range(2)]
        for name, spec in specs.items()
    }
    bare, trainer = [], []
    with tempfile.TemporaryDirectory() as output_dir:
        args = MultiTaskTrainingArguments(
            output_dir=output_dir, max_steps=options.steps, save_steps=0, logging_steps=5, progress_bar=True,
            mixed_precision=options.mixed_precision, cpu=options.device == "cpu",
        )  # fmt: skip
        for repeat in range(options.repeats):
            bare.append(bare_loop(copy.deepcopy(initial), batches, args, options.steps, options.warmup, options.device))
            trainer.append(trainer_loop(copy.deepcopy(initial), batches, args, options.warmup, options.device))
            print(f"repeat {repeat}: bare {bare[-1]:.1f} img/s, trainer {trainer[-1]:.1f} img/s", file=sys.stderr)
    result = {
        "device": device_name(options.device),
        "preset": options.preset,
        "tasks": options.tasks,
        "batch_size": options.batch_size,
        "image_size": options.image_size,
        "mixed_precision": options.mixed_precision,
        "timed_steps_per_run": options.steps - options.warmup,
        "bare_images_per_second": [round(value, 2) for value in bare],
        "trainer_images_per_second": [round(value, 2) for value in trainer],
        "ratio": round(statistics.median(trainer) / statistics.median(bare), 3),
        "note": "the trainer's time includes its per-task finiteness check, logging and progress bar; both exclude "
        "data loading and the end-of-run checkpoint",
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
