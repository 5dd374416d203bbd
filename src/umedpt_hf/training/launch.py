"""The Accelerator for the multi-task loop, and the checks of settings that cannot take effect on this machine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration
from torch import nn

from .arguments import MultiTaskTrainingArguments
from .logging import resolve_trackers


def build_accelerator(args: MultiTaskTrainingArguments) -> Accelerator:
    """An Accelerator set up for per-task backward passes under DDP (`find_unused_parameters=True`).

    Launched with several processes on a machine without an accelerator (e.g. `torchrun` on CPUs), it asks for the
    CPU explicitly: accelerate starts a gloo process group (MULTI_CPU) only then. `report_to` becomes `log_with`, with
    the trackers' files under `<output_dir>/tracking`.
    """
    use_cpu = args.cpu or (launched_world_size() > 1 and not has_accelerator())
    check_mixed_precision(args.mixed_precision, use_cpu or not has_accelerator())
    trackers = resolve_trackers(args.report_to)
    output_dir = Path(args.output_dir)
    return Accelerator(
        cpu=use_cpu,
        mixed_precision=args.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "tracking")),
    )


def check_mixed_precision(mixed_precision: str, on_cpu: bool) -> None:
    """fp16 autocast does nothing on a CPU: refuse it there instead of training silently in fp32."""
    if mixed_precision == "fp16" and on_cpu:
        raise ValueError(
            "training.mixed_precision: fp16 has no effect on a CPU (it would silently train in fp32); use bf16 "
            "(autocast works on CPUs) or no"
        )


def compile_model(model: nn.Module, backend: str = "inductor") -> None:
    """`torch.compile` the encoder and the shared decoders in place (parameter names and state dict unchanged).

    Fails with one clear line when torch.compile cannot work here (no C++ compiler for the CPU backend, an
    unsupported Python), found by compiling a two-operation probe first.
    """
    probe_compile(backend)
    # the decoders a model has built (a classification-only model builds none)
    blocks = ("umedpt", "pixel_decoder", "detection_decoder")
    names = [name for name in blocks if getattr(model, name, None) is not None]
    if not names:
        raise ValueError(f"training.compile: {type(model).__name__} has no encoder or decoders to compile")
    dynamo_config = torch._dynamo.config
    for limit in ("recompile_limit", "cache_size_limit"):  # one graph per task image size: allow many sizes
        if hasattr(dynamo_config, limit):
            setattr(dynamo_config, limit, max(64, getattr(dynamo_config, limit)))
    for name in names:
        getattr(model, name).compile(backend=backend)


def probe_compile(backend: str = "inductor") -> None:
    try:
        probe = torch.compile(lambda x: torch.relu(x) + 1, backend=backend)
        probe(torch.zeros(2))
    except Exception as error:  # any backend failure means compile cannot work on this machine
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"training.compile: torch.compile does not work on this machine ({type(error).__name__}: {reason}); "
            "set training.compile=false"
        ) from None


def launched_world_size() -> int:
    """WORLD_SIZE set by torchrun / accelerate launch (1 when not launched)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def enable_gradient_checkpointing(model: nn.Module) -> None:
    enable = getattr(model, "activation_checkpointing_enable", None) or getattr(
        model, "gradient_checkpointing_enable", None
    )
    if enable is None:
        name = type(model).__name__
        raise ValueError(f"{name} has no gradient checkpointing; set training.gradient_checkpointing=false")
    enable()


def check_launch(acc: Accelerator, args: MultiTaskTrainingArguments) -> None:
    """Refuse set-ups in which the loop would silently do something else than asked."""
    if launched_world_size() > 1 and acc.num_processes == 1:
        raise ValueError(
            f"launched with WORLD_SIZE={launched_world_size()} but the Accelerator runs a single process; every "
            "process would train alone into the same output_dir. Pass Accelerator(cpu=True) on CPU-only machines "
            "or let MultiTaskTrainer build its own (build_accelerator)"
        )
    check_mixed_precision(acc.mixed_precision, acc.device.type == "cpu")
    if acc.distributed_type.value in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
        raise ValueError(
            f"{acc.distributed_type.value} is not supported: the loop's pickle-free checkpoints hold whole weights and "
            "optimizer states (one process or DDP)"
        )
    if acc.num_processes > 1:
        handler = acc.ddp_handler
        if handler is None or not handler.find_unused_parameters:
            raise ValueError(
                "multi-process training needs Accelerator(kwargs_handlers=[DistributedDataParallelKwargs("
                "find_unused_parameters=True)]): the other tasks' heads are unused in each backward pass"
            )
        if args.mode == "joint":
            raise ValueError("mode='joint' is the single-process memory baseline; use mode='per_task' under DDP")


def worker_budget(args: MultiTaskTrainingArguments, loaders: Mapping[str, Any]) -> int:
    """Worker processes in total: the option, else the largest `num_workers` among the given DataLoaders."""
    if args.dataloader_num_workers is not None:
        return args.dataloader_num_workers
    return max((int(getattr(loader, "num_workers", 0) or 0) for loader in loaders.values()), default=0)
