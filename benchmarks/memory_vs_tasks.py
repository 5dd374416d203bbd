"""Peak memory of one training step against the number of tasks T: per-task backward (UMedPT) vs joint (sum of losses).

    python benchmarks/memory_vs_tasks.py [--tasks 1 2 4 8 16] [--out FILE] [--device cpu|cuda] [--preset tiny|swinv2_t]

Each (T, mode) runs in a FRESH process: build the model with T heads (a mix of task types), the optimizer and the
real `MultiTaskTrainer`, take one warm-up step, allocate the gradient buffers, record the baseline (weights + gradients
+ AdamW states: what training needs whatever T is), then measure the peak of the next step(s) above it.
CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`.
CPU: the resident set's high-water mark (`VmHWM`, reset through `/proc/self/clear_refs`; `ru_maxrss` where that is not
allowed) minus the resident set after the warm-up step and `malloc_trim`, with glibc's mmap threshold fixed (see
`--malloc-mmap-threshold`) so that freed activations leave the resident set. Writes JSON
`{"device", "per_task": {T: MiB}, "joint": {T: MiB}, ...}` and a PNG plot next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TASK_TYPES = ("segmentation", "detection", "classification", "multilabel")  # T = 1 starts with the heaviest


# ---------------------------------------------------------------------------------------------- worker (one process)
def task_specs(num_tasks: int) -> dict[str, dict]:
    specs = {}
    for index in range(num_tasks):
        kind = TASK_TYPES[index % len(TASK_TYPES)]
        labels = [f"class_{k}" for k in range(3 + index % 3)]
        specs[f"task{index:02d}_{kind}"] = {"type": kind, "labels": labels, "modality": "ct"}
    return specs


def synthetic_batch(spec: dict, batch_size: int, size: int, generator: Any) -> dict[str, Any]:
    import torch

    num = len(spec["labels"])
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    kind = spec["type"]
    if kind == "classification":
        labels: Any = torch.randint(0, num, (batch_size,), generator=generator)
    elif kind == "multilabel":
        labels = (torch.rand(batch_size, num, generator=generator) > 0.5).float()
    elif kind == "segmentation":
        labels = torch.randint(0, num, (batch_size, size, size), generator=generator)
    else:
        labels = []
        for _ in range(batch_size):
            centres = torch.rand(3, 2, generator=generator) * 0.5 + 0.25
            sides = torch.rand(3, 2, generator=generator) * 0.3 + 0.1
            boxes = torch.cat([centres, sides], dim=1)
            labels.append({"class_labels": torch.randint(0, num, (3,), generator=generator), "boxes": boxes})
    return {"pixel_values": pixel_values, "labels": labels}


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(num_tasks: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from accelerate.state import AcceleratorState

    from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
    from umedpt_hf.presets import config_from_preset
    from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments

    device = args.device
    AcceleratorState._reset_state(True)  # several measurements in one process (CUDA) each build an Accelerator
    torch.manual_seed(0)
    specs = task_specs(num_tasks)
    model = UMedPTForMultiTask(config_from_preset(args.preset, tasks=specs))
    generator = torch.Generator().manual_seed(0)
    size, batch_size = args.image_size, args.batch_size
    batches = {name: [synthetic_batch(spec, batch_size, size, generator)] for name, spec in specs.items()}
    with tempfile.TemporaryDirectory() as output_dir:
        options = MultiTaskTrainingArguments(
            output_dir=output_dir,
            mode=mode,
            max_steps=args.steps + 1,
            mixed_precision=args.mixed_precision,
            save_steps=0,
            progress_bar=False,
            cpu=device == "cpu",
        )
        trainer = MultiTaskTrainer(model, batches, options)
        trainer.training_step(0)  # warm-up: AdamW states exist now
        for parameter in model.parameters():  # gradient buffers are part of the baseline, like weights and states
            parameter.grad = torch.zeros_like(parameter)
        if device == "cuda":
            torch.cuda.synchronize()
            baseline = torch.cuda.memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        else:
            _trim()
            baseline = _rss_mib()
            exact_reset = _reset_hwm()
        for step in range(1, args.steps + 1):
            trainer.training_step(step)
        if device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**20
            method = "torch.cuda.max_memory_allocated"
        else:
            peak = _hwm_mib()
            method = "VmHWM reset via clear_refs" if exact_reset else "ru_maxrss (includes the warm-up step)"
    return {"tasks": num_tasks, "mode": mode, "peak_above_baseline_mib": peak - baseline, "baseline_mib": baseline,
            "method": method}  # fmt: skip


# ---------------------------------------------------------------------------------------------- driver
def run_fresh(num_tasks: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--worker", "--num-tasks", str(num_tasks), "--mode", mode, "--device", args.device,
        "--preset", args.preset, "--batch-size", str(args.batch_size), "--image-size", str(args.image_size),
        "--steps", str(args.steps), "--mixed-precision", args.mixed_precision,
    ]  # fmt: skip
    env = dict(os.environ)
    if args.device == "cpu" and args.malloc_mmap_threshold:
        # a fixed threshold stops glibc from raising it dynamically and keeping freed activation blocks in the heap,
        # so that the resident set follows the live tensors instead of the allocator's fragmentation
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"T={num_tasks} {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    return f"CPU: {model}, {os.cpu_count()} cores"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for mode, label in (("per_task", "per-task backward (UMedPT)"), ("joint", "joint: sum of losses, one backward")):
        points = sorted((int(t), mib) for t, mib in result[mode].items())
        axis.plot([t for t, _ in points], [mib for _, mib in points], marker="o", label=label)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("number of tasks T")
    axis.set_ylabel("peak memory above baseline (MiB)")
    setting = f"{result['preset']} @ {result['image_size']} px, batch {result['batch_size']} per task"
    axis.set_title(f"{setting}\n{result['device']}")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="peak memory vs number of tasks, per-task vs joint backward")
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--out", type=Path, default=RESULTS / "memory_vs_tasks.json")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--preset", choices=("tiny", "swinv2_t"), default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="measured steps after the warm-up step")
    parser.add_argument("--mixed-precision", choices=("no", "bf16"), default="no")
    threshold_help = "CPU: glibc MALLOC_MMAP_THRESHOLD_ for the workers (0: the allocator's default)"
    parser.add_argument("--malloc-mmap-threshold", type=int, default=65536, help=threshold_help)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--num-tasks", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("per_task", "joint"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.num_tasks, args.mode, args)))
        return 0
    from tqdm.auto import tqdm

    cpu = args.device == "cpu"
    result: dict[str, Any] = {"device": device_name(args.device), "per_task": {}, "joint": {}, "preset": args.preset,
                              "image_size": args.image_size, "batch_size": args.batch_size,
                              "mixed_precision": args.mixed_precision, "task_types": list(TASK_TYPES),
                              "malloc_mmap_threshold": args.malloc_mmap_threshold if cpu else None}  # fmt: skip
    runs = [(t, mode) for t in args.tasks for mode in ("per_task", "joint")]
    for num_tasks, mode in tqdm(runs, desc="fresh processes"):
        measured = run_fresh(num_tasks, mode, args)
        result[mode][str(num_tasks)] = round(measured["peak_above_baseline_mib"], 1)
        result["method"] = measured["method"]
    first, last = str(min(args.tasks)), str(max(args.tasks))
    result["per_task_ratio_last_first"] = round(result["per_task"][last] / result["per_task"][first], 3)
    result["joint_ratio_last_first"] = round(result["joint"][last] / result["joint"][first], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
