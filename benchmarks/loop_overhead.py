"""Throughput of `MultiTaskTrainer` against a bare hand-written PyTorch loop on the same batches, in one run; bf16 and
torch.compile as ratios against eager fp32; host reads per round (loop) and per forward (model, by task type).

    python benchmarks/loop_overhead.py [--out FILE] [--device cpu|cuda] [--preset tiny|swinv2_t]
                                       [--variants fp32 bf16 compile]

Both loops do the same work per step: for each task one forward, `loss.backward()`; then clip, AdamW step, schedule
step, zero the gradients. Batches are made in memory beforehand, so data loading is excluded from both. For each
variant the trainer (fp32, bf16 autocast, or compiled) alternates step by step with the bare eager-fp32 loop (a
trainer callback runs one bare step after each trainer step, on its own model copy), so both see the same load on a
shared machine; the first `--warmup` steps (compilation included) are not timed. Ratio = trainer images/s divided by
bare eager-fp32 images/s. Writes JSON (default benchmarks/results/loop_overhead.json) and a PNG next to it.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from accelerate.state import AcceleratorState
from memory_vs_tasks import TASK_TYPES, device_name, synthetic_batch, task_specs

from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
from umedpt_hf.presets import config_from_preset
from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, build_optimizer, build_scheduler

RESULTS = Path(__file__).parent / "results"
VARIANTS = {"fp32": {}, "bf16": {"mixed_precision": "bf16"}, "compile": {"compile": True}}
HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__index__", "__bool__")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class BareLoop:
    """A hand-written loop: per task forward + `loss.backward()`, then clip, AdamW step, schedule step, zero grads."""

    def __init__(self, model: torch.nn.Module, batches: dict[str, list], args: MultiTaskTrainingArguments,
                 device: str, bf16: bool = False) -> None:  # fmt: skip
        self.model, self.batches, self.args, self.device = model.to(device).train(), batches, args, device
        self.bf16 = bf16
        self.optimizer = build_optimizer(model, args)
        self.scheduler = build_scheduler(self.optimizer, args, args.max_steps)

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
                    warmup: int, device: str, bare_bf16: bool = False) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per step of the trainer (as configured) and the bare eager loop (fp32, or bf16 autocast),
    alternating step by step.

    The trainer's time for step k is from the end of callback k-1 to the start of callback k: its whole loop body
    (batch fetch, forward/backward per task, the fused check, optimizer step, logging, progress output).
    """
    bare = BareLoop(copy.deepcopy(initial), batches, args, device, bf16=bare_bf16)
    times: dict[str, list[float]] = {"bare": [], "trainer": []}
    last_end: list[float] = []

    def alternate(trainer: MultiTaskTrainer, step: int, losses: Any) -> None:
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

    AcceleratorState._reset_state(True)  # each variant builds its own Accelerator (precision)
    MultiTaskTrainer(copy.deepcopy(initial), batches, args, callbacks=[alternate]).train()
    return times


def count_host_reads(initial: torch.nn.Module, batches: dict[str, list], output_dir: str, device: str) -> dict:
    """Host reads (`.item()`, `float()`, `bool()`, `.tolist()`, `.cpu()`, ...) by the file that asked: per round from
    the loop (rounds without logging), and per forward + backward from the model code, for each task type."""
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name, original):
        def read(self, *args, **kwargs):
            counts[sys._getframe(1).f_code.co_filename] += 1
            return original(self, *args, **kwargs)

        return read

    def where(filename: str) -> str:
        return "loop" if "/umedpt_hf/training/" in filename else "model" if "/umedpt_hf/" in filename else "other"

    marks: list[Counter] = []
    args = MultiTaskTrainingArguments(output_dir=output_dir, max_steps=5, logging_steps=100, save_steps=0,
                                      progress_bar=False, cpu=device == "cpu")  # fmt: skip
    AcceleratorState._reset_state(True)
    trainer = MultiTaskTrainer(copy.deepcopy(initial), batches, args, callbacks=[lambda *_: marks.append(+counts)])
    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        trainer.train()
        model = copy.deepcopy(initial).to(device)
        per_type: dict[str, float] = {}
        for task, task_batches in batches.items():
            kind = initial.config.tasks[task]["type"]
            before = +counts
            batch = task_batches[0]
            model(
                pixel_values=batch["pixel_values"].to(device), task=task, labels=_to(batch["labels"], device)
            ).loss.backward()
            per_type[kind] = sum(n for f, n in (counts - before).items() if where(f) == "model")
    finally:
        for name in HOST_READS:
            delattr(torch.Tensor, name)
    rounds = [sum(n for f, n in (b - a).items() if where(f) == "loop") for a, b in itertools.pairwise(marks[:-1])]
    return {"loop_per_round": max(rounds), "rounds_counted": len(rounds), "model_per_forward": per_type}


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
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=["fp32", "bf16", "compile"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return parser.parse_args(argv)


def plot(result: dict[str, Any], path: Path) -> None:
    """Each variant's ratio to the bare eager-fp32 loop it alternated with (absolute images/s vary with the load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["variants"])
    ratios = [result["variants"][name]["ratio"] for name in names]
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    bars = axis.bar([f"trainer {name}" for name in names], ratios, color="#3a7")
    axis.axhline(1.0, color="#555", linewidth=1, linestyle="--", label="bare eager fp32 loop")
    for bar, name in zip(bars, names):
        variant = result["variants"][name]
        trainer, bare = variant["trainer_images_per_second"], variant["bare_images_per_second"]
        label = f"×{variant['ratio']:.3f}\n{trainer:.0f} vs {bare:.0f} img/s"
        axis.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), label, ha="center", va="bottom", fontsize=8)
    axis.set_ylabel("images/s ÷ bare eager fp32 (same run)")
    axis.set_ylim(0, max(ratios) * 1.3)
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title(f"{result['preset']} @ {result['image_size']} px, {result['tasks']} tasks × batch "
                   f"{result['batch_size']}\n{result['device']}, {result['torch_threads']} thread(s)")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    images_per_step = sum(task_batches[0]["pixel_values"].shape[0] for task_batches in batches.values())
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in options.variants:
            args = MultiTaskTrainingArguments(
                output_dir=f"{scratch}/{name}", max_steps=options.steps, save_steps=0, logging_steps=5,
                progress_bar=True, cpu=options.device == "cpu", **VARIANTS[name],
            )  # fmt: skip
            try:
                times = interleaved_run(initial, batches, args, options.warmup, options.device)
            except ValueError as error:  # e.g. torch.compile cannot work here: say so in the JSON
                variants[name] = {"error": str(error)}
                print(f"{name}: {error}", file=sys.stderr)
                continue
            step_ratios = [b / t for b, t in zip(times["bare"], times["trainer"])]
            variants[name] = {
                "timed_steps": len(times["trainer"]),
                "bare_images_per_second": round(images_per_step * len(times["bare"]) / sum(times["bare"]), 2),
                "trainer_images_per_second": round(images_per_step * len(times["trainer"]) / sum(times["trainer"]), 2),
                "ratio": round(sum(times["bare"]) / sum(times["trainer"]), 3),
                "median_step_ratio": round(statistics.median(step_ratios), 3),
                "step_ratio_quartiles": [round(q, 3) for q in statistics.quantiles(step_ratios, n=4)],
            }
        host_reads = count_host_reads(initial, batches, f"{scratch}/reads", options.device)
    timed = {name: v for name, v in variants.items() if "ratio" in v}
    result = {
        "device": device_name(options.device),
        "torch": torch.__version__,
        "preset": options.preset,
        "tasks": options.tasks,
        "task_types": list(TASK_TYPES),
        "batch_size": options.batch_size,
        "image_size": options.image_size,
        "torch_threads": torch.get_num_threads(),
        "warmup_steps": options.warmup,
        "variants": timed,
        "failed_variants": {name: v["error"] for name, v in variants.items() if "error" in v},
        "ratio": timed.get("fp32", {}).get("ratio"),
        "host_reads": host_reads,
        "note": "per variant, the trainer alternates step by step with the bare eager-fp32 loop (same machine load); "
        "ratio = trainer images/s / bare eager-fp32 images/s over the timed steps, so the fp32 ratio is the loop's "
        "overhead and the bf16 / compile ratios are their speed-ups against eager fp32. Both exclude data loading "
        "(in-memory batches) and the end-of-run checkpoint and export",
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2))
    if timed:
        plot(result, options.out.with_suffix(".png"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
