"""The GPU rows in one command: Swin-V2-T (preset swinv2_t) at 224 px in bf16 on one GPU, in about 8 minutes.

    bash benchmarks/gpu_suite.sh                       # one CUDA GPU -> benchmarks/results/gpu_suite.json + .png
    bash benchmarks/gpu_suite.sh --device cpu --quick  # the same sections on CPU, tiny preset, CI-size

Sections (each a ratio or figure taken in this one run, on this one device):
1. encoder inference images/s (UMedPTModel, bf16 autocast, no grad);
2. training images/s of `MultiTaskTrainer` against a bare loop on the same in-memory batches (step-interleaved), and
   of the compiled trainer (`training.compile`) against the same bare eager loop;
3. peak memory of one training round for T = 1, 4, 16 tasks, per_task (UMedPT) and joint (sum of losses);
4. the same encoder architecture in torchvision (`swin_v2_t`) and timm (`swinv2_tiny_window8_256` at 224 px), where
   they import: inference and encoder-training images/s.
Needs only torch, transformers, accelerate (and torchvision / timm for section 4) with the repository's `src/` on
PYTHONPATH: no datasets, albumentations or scikit-learn (matplotlib only for the PNG). Sections that would overrun
`--budget-seconds` are skipped and say so in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"


def settings(options: argparse.Namespace) -> dict[str, Any]:
    """Sizes of the run: the full GPU setting, or a CI-size one with --quick."""
    if options.quick:
        return {"preset": "tiny", "image_size": 64, "batch_size": 4, "inference_batch": 8, "steps": 6, "warmup": 2,
                "tasks": 4, "memory_tasks": [1, 2], "inference_iterations": 3}  # fmt: skip
    return {"preset": "swinv2_t", "image_size": 224, "batch_size": 32, "inference_batch": 128, "steps": 30,
            "warmup": 3, "tasks": 4, "memory_tasks": [1, 4, 16], "inference_iterations": 20}  # fmt: skip


class Clock:
    def __init__(self, budget: float) -> None:
        self.start, self.budget = time.perf_counter(), budget

    @property
    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def images_per_second(step, batch: int, iterations: int, warmup: int, device: str) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    _sync(device)
    return batch * iterations / (time.perf_counter() - start)


def encoder_inference(run: dict, device: str) -> dict[str, Any]:
    from umedpt_hf.modeling_umedpt import UMedPTModel
    from umedpt_hf.presets import config_from_preset

    model = UMedPTModel(config_from_preset(run["preset"])).to(device).eval()
    images = torch.randn(run["inference_batch"], 3, run["image_size"], run["image_size"], device=device)

    @torch.no_grad()
    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            model(images)

    ips = images_per_second(step, len(images), run["inference_iterations"], 2, device)
    parameters = sum(p.numel() for p in model.parameters())
    _free(device)
    return {"images_per_second": round(ips, 1), "batch": run["inference_batch"], "parameters": parameters}


def trainer_against_bare(run: dict, device: str, compile_too: bool, clock: Clock) -> dict[str, Any]:
    """Step-interleaved images/s: trainer (bf16) vs bare loop (bf16); compiled trainer vs the same bare loop."""
    from accelerate.state import AcceleratorState
    from loop_overhead import interleaved_run
    from memory_vs_tasks import synthetic_batch, task_specs

    from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
    from umedpt_hf.presets import config_from_preset
    from umedpt_hf.training import MultiTaskTrainingArguments

    torch.manual_seed(0)
    specs = task_specs(run["tasks"])
    initial = UMedPTForMultiTask(config_from_preset(run["preset"], tasks=specs))
    generator = torch.Generator().manual_seed(0)
    batches = {
        name: [synthetic_batch(spec, run["batch_size"], run["image_size"], generator) for _ in range(2)]
        for name, spec in specs.items()
    }
    per_step = run["batch_size"] * run["tasks"]
    result: dict[str, Any] = {"tasks": run["tasks"], "batch_per_task": run["batch_size"]}
    variants: dict[str, dict] = {"eager": {}, "compiled": {"compile": True}}
    with tempfile.TemporaryDirectory() as scratch:
        for name, extra in variants.items():
            if name == "compiled" and not compile_too:
                result[name] = {"skipped": "not asked for (--quick without --compile, or --no-compile)"}
                continue
            if name == "compiled" and clock.left < 180:
                result[name] = {"skipped": f"{clock.left:.0f} s left of the time budget (compiling needs more)"}
                continue
            args = MultiTaskTrainingArguments(
                output_dir=f"{scratch}/{name}", max_steps=run["steps"], save_steps=0, logging_steps=10,
                progress_bar=False, mixed_precision="bf16", cpu=device == "cpu", save_total_limit=1, **extra,
            )  # fmt: skip
            AcceleratorState._reset_state(True)
            try:
                times = interleaved_run(initial, batches, args, run["warmup"], device, bare_bf16=True)
            except Exception as error:  # a failed variant (e.g. no compiler) is a result, not a crash of the suite
                result[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
                continue
            result[name] = {
                "trainer_images_per_second": round(per_step * len(times["trainer"]) / sum(times["trainer"]), 1),
                "bare_images_per_second": round(per_step * len(times["bare"]) / sum(times["bare"]), 1),
                "ratio_trainer_over_bare": round(sum(times["bare"]) / sum(times["trainer"]), 3),
                "timed_steps": len(times["trainer"]),
            }
            _free(device)
    del initial, batches
    _free(device)
    return result


def memory_against_tasks(run: dict, device: str, clock: Clock) -> dict[str, Any]:
    """Peak memory of a training round above the baseline (weights, gradients, AdamW states), MiB."""
    from memory_vs_tasks import measure, run_fresh

    options = argparse.Namespace(device=device, preset=run["preset"], image_size=run["image_size"],
                                 batch_size=run["batch_size"], steps=1, mixed_precision="bf16",
                                 malloc_mmap_threshold=65536)  # fmt: skip
    result: dict[str, Any] = {"per_task": {}, "joint": {}, "batch_per_task": run["batch_size"]}
    for num_tasks in run["memory_tasks"]:
        for mode in ("per_task", "joint"):
            if clock.left < 20:
                result[mode][str(num_tasks)] = "skipped: time budget"
                continue
            try:  # CUDA and --quick: in this process; a full CPU run: a fresh process each (resident set)
                in_process = device == "cuda" or run["preset"] == "tiny"
                measured = measure(num_tasks, mode, options) if in_process else run_fresh(num_tasks, mode, options)
                result[mode][str(num_tasks)] = round(measured["peak_above_baseline_mib"], 1)
                result["method"] = measured["method"]
            except torch.cuda.OutOfMemoryError:
                result[mode][str(num_tasks)] = "out of memory"
            _free(device)
    return result


def other_libraries(run: dict, device: str) -> dict[str, Any]:
    """The same encoder architecture in torchvision and timm: inference and encoder-training images/s."""
    from umedpt_hf.modeling_umedpt import UMedPTModel
    from umedpt_hf.presets import config_from_preset

    size, batch = run["image_size"], run["batch_size"]
    builders = {"umedpt_hf (transformers Swinv2)": lambda: _Pooled(UMedPTModel(config_from_preset(run["preset"])))}
    found: dict[str, Any] = {}
    try:
        import torchvision

        builders["torchvision swin_v2_t"] = lambda: torchvision.models.swin_v2_t(weights=None)
    except Exception as error:
        found["torchvision swin_v2_t"] = {"available": False, "reason": f"{type(error).__name__}: {error}"[:200]}
    try:
        import timm

        builders["timm swinv2_tiny_window8_256"] = lambda: timm.create_model(
            "swinv2_tiny_window8_256", pretrained=False, img_size=size
        )
    except Exception as error:
        found["timm swinv2_tiny_window8_256"] = {"available": False, "reason": f"{type(error).__name__}: {error}"[:200]}
    for name, build in builders.items():
        if run["preset"] != "swinv2_t" and not name.startswith("umedpt_hf"):
            found[name] = {"available": True, "skipped": "--quick uses the tiny preset: no like-for-like model"}
            continue
        try:
            found[name] = {"available": True, **_encoder_speeds(build().to(device), size, batch, run, device)}
        except Exception as error:
            found[name] = {"available": True, "error": f"{type(error).__name__}: {str(error)[:200]}"}
        _free(device)
    return found


class _Pooled(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images).pooler_output


def _encoder_speeds(model: torch.nn.Module, size: int, batch: int, run: dict, device: str) -> dict[str, Any]:
    images = torch.randn(batch, 3, size, size, device=device)
    model.eval()

    @torch.no_grad()
    def infer() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            model(images)

    inference = images_per_second(infer, batch, run["inference_iterations"], 2, device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = model(images).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    training = images_per_second(train, batch, max(3, run["steps"] // 3), 2, device)
    parameters = sum(p.numel() for p in model.parameters())
    return {"inference_images_per_second": round(inference, 1), "training_images_per_second": round(training, 1),
            "parameters": parameters}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no PNG"
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    training = result.get("training", {})
    labels, values = [], []
    for name, variant in training.items():
        if isinstance(variant, dict) and "trainer_images_per_second" in variant:
            labels += [f"bare ({name})", f"trainer ({name})"]
            values += [variant["bare_images_per_second"], variant["trainer_images_per_second"]]
    axes[0].bar(labels, values)
    axes[0].set_title("training images/s (bf16)")
    axes[0].tick_params(axis="x", rotation=20)
    memory = result.get("memory", {})
    for mode in ("per_task", "joint"):
        points = [(int(t), v) for t, v in memory.get(mode, {}).items() if isinstance(v, (int, float))]
        if points:
            axes[1].plot([t for t, _ in points], [v for _, v in points], marker="o", label=mode)
    axes[1].set_title("peak memory above baseline (MiB) vs tasks")
    axes[1].legend()
    encoders = {k: v for k, v in result.get("encoders", {}).items() if "inference_images_per_second" in v}
    axes[2].bar(list(encoders), [v["inference_images_per_second"] for v in encoders.values()])
    axes[2].set_title("encoder inference images/s (bf16)")
    axes[2].tick_params(axis="x", rotation=20)
    figure.suptitle(f"{result['device']} — {result['settings']['preset']} @ {result['settings']['image_size']} px")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="UMedPT GPU benchmark suite (Swin-V2-T, 224 px, bf16)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny preset, small sizes (CI)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled-trainer measurement")
    parser.add_argument("--compile", action="store_true", help="include it with --quick too (minutes on a CPU)")
    parser.add_argument("--budget-seconds", type=float, default=450.0)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args(argv)
    if options.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here; run with --device cpu --quick for the CPU check", file=sys.stderr)
        return 2
    from memory_vs_tasks import device_name

    out = options.out or RESULTS / ("gpu_suite.json" if options.device == "cuda" else "gpu_suite_cpu_quick.json")
    run, clock, device = settings(options), Clock(options.budget_seconds), options.device
    if device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    result: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__, "settings": run,
                              "mixed_precision": "bf16", "sections_seconds": {}}  # fmt: skip
    with contextlib.suppress(ImportError):
        import transformers

        result["transformers"] = transformers.__version__
    compile_too = not options.no_compile and (options.compile or not options.quick)
    sections = [
        ("inference", lambda: encoder_inference(run, device)),
        ("training", lambda: trainer_against_bare(run, device, compile_too, clock)),
        ("memory", lambda: memory_against_tasks(run, device, clock)),
        ("encoders", lambda: other_libraries(run, device)),
    ]
    for name, section in sections:
        started = time.perf_counter()
        print(f"[{time.perf_counter() - clock.start:6.1f}s] {name}", file=sys.stderr, flush=True)
        try:
            result[name] = section() if clock.left > 10 else {"skipped": "time budget used up"}
        except Exception as error:
            result[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            traceback.print_exc()
        result["sections_seconds"][name] = round(time.perf_counter() - started, 1)
    result["total_seconds"] = round(time.perf_counter() - clock.start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    problem = plot(result, out.with_suffix(".png"))
    if problem:
        result["png"] = problem
        out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
