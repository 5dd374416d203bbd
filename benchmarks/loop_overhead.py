"""Throughput of `MultiTaskTrainer` against a bare hand-written PyTorch loop on the same batches, in one run.

    python benchmarks/loop_overhead.py [--out FILE] [--device cpu|cuda] [--preset tiny|swinv2_t]

Both loops do the same work per step: for each task one forward, `loss.backward()`; then clip, AdamW step, schedule
step, zero the gradients. Batches are made in memory beforehand, so data loading is excluded from both. The loops
alternate step by step (a trainer callback runs one bare step after each trainer step, on its own model copy), so both
see the same load on a shared machine; the first `--warmup` steps are not timed. Result: trainer images/s divided by
bare images/s over all timed steps. Writes JSON (default benchmarks/results/loop_overhead.json).
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


class BareLoop:
    """A hand-written loop: per task forward + `loss.backward()`, then clip, AdamW step, schedule step, zero grads."""

    def __init__(self, model: torch.nn.Module, batches: dict[str, list], args: MultiTaskTrainingArguments,
                 device: str) -> None:  # fmt: skip
        self.model, self.batches, self.args, self.device = model.to(device).train(), batches, args, device
        self.optimizer = build_optimizer(model, args)
        self.scheduler = build_scheduler(self.optimizer, args, args.max_steps)
        self.bf16 = args.mixed_precision == "bf16"

    def step(self, step: int) -> None:
        for task, task_batches in self.batches.items():
            batch = task_batches[step % len(task_batches)]
            pixel_values = batch["pixel_values"].to(self.device)
            labels = _to(batch["labels"], self.device)
            with torch.autocast(device_type=self.device, dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.model(pixel_values=pixel_values, task=task, labels=labels).loss
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


def interleaved_run(initial: torch.nn.Module, batches: dict[str, list], args: MultiTaskTrainingArguments,
                    warmup: int, device: str) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per step of both loops, alternating step by step so that both see the same machine load.

    `MultiTaskTrainer.train` runs; after each of its steps a callback runs one step of the bare loop (on its own copy
    of the model). The trainer's time for step k is from the end of callback k-1 to the start of callback k: its whole
    loop body (batch fetch, forward/backward per task, checks, optimizer step, logging, progress bar).
    """
    bare = BareLoop(copy.deepcopy(initial), batches, args, device)
    times: dict[str, list[float]] = {"bare": [], "trainer": []}
    last_end: list[float] = []

    def alternate(trainer: MultiTaskTrainer, step: int, losses: dict) -> None:
        _sync(device)
        now = time.perf_counter()
        if last_end and step > warmup:
            times["trainer"].append(now - last_end[-1])
        bare.step(step - 1)
        _sync(device)
        done = time.perf_counter()
        if step > warmup:
            times["bare"].append(done - now)
        last_end.append(time.perf_counter())

    MultiTaskTrainer(copy.deepcopy(initial), batches, args, callbacks=[alternate]).train()
    return times


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
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--mixed-precision", choices=("no", "bf16"), default="no")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    specs = task_specs(options.tasks)
    initial = UMedPTForMultiTask(config_from_preset(options.preset, tasks=specs))
    generator = torch.Generator().manual_seed(0)
    batches = {
        name: [synthetic_batch(spec, options.batch_size, options.image_size, generator) for _ in range(2)]
        for name, spec in specs.items()
    }
    bare: list[float] = []
    trainer: list[float] = []
    with tempfile.TemporaryDirectory() as output_dir:
        args = MultiTaskTrainingArguments(
            output_dir=output_dir, max_steps=options.steps, save_steps=0, logging_steps=5, progress_bar=True,
            mixed_precision=options.mixed_precision, cpu=options.device == "cpu",
        )  # fmt: skip
        for _ in range(options.repeats):
            times = interleaved_run(initial, batches, args, options.warmup, options.device)
            bare += times["bare"]
            trainer += times["trainer"]
    images_per_step = sum(task_batches[0]["pixel_values"].shape[0] for task_batches in batches.values())
    step_ratios = [b / t for b, t in zip(bare, trainer)]
    result = {
        "device": device_name(options.device),
        "preset": options.preset,
        "tasks": options.tasks,
        "batch_size": options.batch_size,
        "image_size": options.image_size,
        "mixed_precision": options.mixed_precision,
        "torch_threads": torch.get_num_threads(),
        "timed_steps": len(trainer),
        "bare_images_per_second": round(images_per_step * len(bare) / sum(bare), 2),
        "trainer_images_per_second": round(images_per_step * len(trainer) / sum(trainer), 2),
        "ratio": round(sum(bare) / sum(trainer), 3),
        "median_step_ratio": round(statistics.median(step_ratios), 3),
        "step_ratio_quartiles": [round(q, 3) for q in statistics.quantiles(step_ratios, n=4)],
        "note": "steps alternate between the two loops (same machine load); ratio = trainer images/s / bare images/s "
        "over all timed steps. The trainer's time includes its NaN checks, logging and progress bar; both exclude data "
        "loading (in-memory batches) and the end-of-run checkpoint",
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
