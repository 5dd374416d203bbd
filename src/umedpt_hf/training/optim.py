"""AdamW with its own learning rate for the per-task heads, and a warm-up + cosine schedule."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from .arguments import MultiTaskTrainingArguments


def is_head_parameter(name: str, task_names: Iterable[str], heads_prefix: str | None = "heads.") -> bool:
    """A per-task head parameter: under `heads.` (UMedPTForMultiTask), else one name component is a task name."""
    if heads_prefix:
        return name.startswith(heads_prefix)
    parts = set(name.split("."))
    return any(task in parts for task in task_names)


def build_parameter_groups(
    model: nn.Module, learning_rate: float, head_learning_rate: float, weight_decay: float
) -> list[dict]:
    """Four AdamW groups: shared / head × decayed / not decayed (biases and 1-D normalisation weights)."""
    task_names = list(getattr(model, "task_names", []) or [])
    heads_prefix = "heads." if isinstance(getattr(model, "heads", None), nn.ModuleDict) else None
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        key = (is_head_parameter(name, task_names, heads_prefix), parameter.ndim > 1)
        groups.setdefault(key, []).append(parameter)
    result = []
    for (is_head, decays), params in sorted(groups.items()):
        result.append(
            {
                "params": params,
                "lr": head_learning_rate if is_head else learning_rate,
                "weight_decay": weight_decay if decays else 0.0,
                "group_name": f"{'head' if is_head else 'shared'}{'' if decays else '_no_decay'}",
            }
        )
    return result


def build_optimizer(model: nn.Module, args: MultiTaskTrainingArguments) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters, heads at `head_learning_rate`."""
    groups = build_parameter_groups(
        model, args.learning_rate, args.head_learning_rate or args.learning_rate, args.weight_decay
    )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)


def build_scheduler(
    optimizer: torch.optim.Optimizer, args: MultiTaskTrainingArguments, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to 0 over `max_steps` optimizer steps."""
    warmup = args.warmup_steps if args.warmup_steps > 0 else round(args.warmup_ratio * max_steps)
    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=max_steps)
