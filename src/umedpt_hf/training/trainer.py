"""`MultiTaskTrainer`: the memory-decoupled multi-task loop of UMedPT on `accelerate.Accelerator`.

One optimizer step is one round over the sampler's tasks. For each task of the round one batch of that task only is
drawn, its forward pass and loss computed and `backward` called at once, so its activation graph is freed before the
next task runs; the gradients accumulate in the shared parameters. After the round: clip, optimizer step, scheduler
step, zero the gradients. Peak memory is that of the largest single task batch, whatever the number of tasks.

Under DDP the gradients are synchronised only on the last backward of a round (`no_sync` for the others), the model is
wrapped with `find_unused_parameters=True` (the other tasks' heads are unused in each pass), and every rank makes the
same number of backward calls per round (the sampler is a pure function of the round index).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, send_to_device, set_seed
from torch import nn
from tqdm.auto import tqdm

from .arguments import MultiTaskTrainingArguments
from .checkpointing import LoopState, remove_partial_checkpoints, resolve_resume, save_checkpoint
from .logging import TrainingLogger
from .optim import build_optimizer, build_scheduler
from .samplers import TaskSampler, build_sampler
from .streams import TaskBatchStream, as_task_stream, task_sizes

_WHOLE_GRADIENTS = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
StepCallback = Callable[["MultiTaskTrainer", int, dict[str, float]], None]


class NonFiniteLossError(FloatingPointError):
    """A task's loss became NaN or infinite; the message names the task, the step and the last good checkpoint."""


@dataclass
class TrainOutput:
    """What `MultiTaskTrainer.train` returns."""

    global_step: int
    last_losses: dict[str, float]
    checkpoint: Path | None
    log_file: Path
    images_seen: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def build_accelerator(args: MultiTaskTrainingArguments) -> Accelerator:
    """An Accelerator set up for per-task backward passes under DDP (`find_unused_parameters=True`).

    Launched with several processes on a machine without an accelerator (e.g. `torchrun` on CPUs), it asks for the
    CPU explicitly: accelerate starts a gloo process group (MULTI_CPU) only then.
    """
    return Accelerator(
        cpu=args.cpu or (_launched_world_size() > 1 and not _has_accelerator()),
        mixed_precision=args.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


class MultiTaskTrainer:
    """Train a `UMedPTForMultiTask` on several tasks with one backward pass per task batch.

    Args:
        model: A model whose `forward(pixel_values=..., task=..., labels=...)` returns an output with `.loss`.
        task_loaders: Task name -> its batches (`{"pixel_values", "labels"}` in the model's label format), each task
            with its own batch size and image size. A `DataLoader` over a map-style dataset is re-driven by the
            trainer so that the data order is a pure function of `(seed, task, position)`, sharded over ranks and
            exactly resumable; other iterables are cycled.
        args: The loop's options.
        processor: Saved next to the exported model when given.
        accelerator: An existing Accelerator (it must use `find_unused_parameters=True` for multi-process runs).
        callbacks: Called as `callback(trainer, step, losses)` after every optimizer step on every rank.
    """

    def __init__(
        self,
        model: nn.Module,
        task_loaders: Mapping[str, Iterable[Any]],
        args: MultiTaskTrainingArguments,
        *,
        processor: Any = None,
        accelerator: Accelerator | None = None,
        callbacks: Sequence[StepCallback] = (),
    ) -> None:
        if not task_loaders:
            raise ValueError("MultiTaskTrainer needs at least one task")
        model_tasks = getattr(model, "task_names", None)
        if model_tasks is not None:
            unknown = [name for name in task_loaders if name not in model_tasks]
            if unknown:
                known = list(model_tasks)
                raise ValueError(f"tasks {unknown} have data but no head in the model (model tasks: {known})")
        self.args = args
        self.processor = processor
        self.callbacks = list(callbacks)
        self.accelerator = accelerator or build_accelerator(args)
        acc = self.accelerator
        if _launched_world_size() > 1 and acc.num_processes == 1:
            raise ValueError(
                f"launched with WORLD_SIZE={_launched_world_size()} but the Accelerator runs a single process; every "
                "process would train alone into the same output_dir. Pass Accelerator(cpu=True) on CPU-only machines "
                "or let MultiTaskTrainer build its own (build_accelerator)"
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
        self.task_names = list(task_loaders)
        self.streams: dict[str, TaskBatchStream] = {
            name: as_task_stream(
                source, key=name, seed=args.seed, process_index=acc.process_index, num_processes=acc.num_processes
            )
            for name, source in task_loaders.items()
        }
        self.sampler: TaskSampler = build_sampler(
            args.sampler, self.task_names, task_sizes(self.streams, self.task_names), args.tasks_per_round, args.seed
        )
        batches = {name: stream.batches_per_epoch for name, stream in self.streams.items()}
        self.rounds_per_epoch = self.sampler.rounds_per_epoch(batches)
        self.max_steps = args.max_steps or max(1, math.ceil(args.num_epochs * self.rounds_per_epoch))
        if args.gradient_checkpointing:
            _enable_gradient_checkpointing(model)
        optimizer = build_optimizer(model, args)
        self.scheduler = build_scheduler(optimizer, args, self.max_steps)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.state = LoopState(self.streams)
        acc.register_for_checkpointing(self.scheduler, self.state)
        self.output_dir = Path(args.output_dir)
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ the loop
    def train(self, resume_from: str | Path | bool | None = None) -> TrainOutput:
        """Run until `max_steps`; `resume_from=True` continues from the newest checkpoint in `output_dir`."""
        acc, args = self.accelerator, self.args
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_checkpoints(self.output_dir)
        acc.wait_for_everyone()
        checkpoint = resolve_resume(resume_from, self.output_dir)
        if checkpoint is not None:
            acc.load_state(str(checkpoint))
            self.last_checkpoint = checkpoint
        else:
            set_seed(args.seed)
        logger = TrainingLogger(self.output_dir, enabled=acc.is_main_process)
        bar = tqdm(
            total=self.max_steps,
            initial=self.state.step,
            desc="pretraining",
            disable=not (args.progress_bar and acc.is_local_main_process),
            dynamic_ncols=True,
        )
        window_sum = torch.zeros(len(self.task_names), dtype=torch.float64)
        window_count = torch.zeros(len(self.task_names), dtype=torch.float64)
        images, start, last_losses = 0, time.perf_counter(), {}
        try:
            while self.state.step < self.max_steps:
                losses, n_images, grad_norm = self.training_step(self.state.step)
                self.state.step += 1
                images += n_images
                last_losses = {task: sum(values) / len(values) for task, values in losses.items()}
                for task, values in losses.items():
                    index = self.task_names.index(task)
                    window_sum[index] += sum(values)
                    window_count[index] += len(values)
                bar.update(1)
                bar.set_postfix({task: f"{value:.3f}" for task, value in last_losses.items()}, refresh=False)
                step = self.state.step
                if step % args.logging_steps == 0 or step == self.max_steps:
                    self._log(logger, window_sum, window_count, grad_norm, images, start)
                    window_sum.zero_()
                    window_count.zero_()
                if args.save_steps and step % args.save_steps == 0 and step < self.max_steps:
                    self.save_checkpoint()
                for callback in self.callbacks:
                    callback(self, step, last_losses)
            if self.last_checkpoint is None or self.state.step != _checkpoint_step(self.last_checkpoint):
                self.save_checkpoint()
        finally:
            bar.close()
            logger.close()
        return TrainOutput(
            global_step=self.state.step,
            last_losses=last_losses,
            checkpoint=self.last_checkpoint,
            log_file=logger.path,
            images_seen=images,
            seconds=time.perf_counter() - start,
        )

    def training_step(self, step: int) -> tuple[dict[str, list[float]], int, float | None]:
        """One round (one optimizer step); returns per-task losses, images used on this rank, gradient norm."""
        losses, n_images = self.accumulate_gradients(step)
        return losses, n_images, self.optimizer_step()

    def accumulate_gradients(self, step: int) -> tuple[dict[str, list[float]], int]:
        """Forward and backward every task batch of round `step`; the gradients accumulate in `.grad`."""
        acc = self.accelerator
        self.model.train()
        tasks = self.sampler.tasks_for_round(step)
        losses: dict[str, list[float]] = {}
        n_images = 0
        if self.args.mode == "per_task":
            for i, task in enumerate(tasks):
                batch = self._next_batch(task)
                n_images += int(batch["pixel_values"].shape[0])
                last = i == len(tasks) - 1
                with nullcontext() if last else acc.no_sync(self.model):
                    loss = self._task_loss(task, batch, step)
                    acc.backward(loss)  # this task's graph is freed here
                losses.setdefault(task, []).append(float(loss.detach()))
            return losses, n_images
        total = None
        for task in tasks:
            batch = self._next_batch(task)
            n_images += int(batch["pixel_values"].shape[0])
            loss = self._task_loss(task, batch, step)
            losses.setdefault(task, []).append(float(loss.detach()))
            total = loss if total is None else total + loss
        acc.backward(total)  # all T graphs were alive until here
        return losses, n_images

    def optimizer_step(self) -> float | None:
        """Clip, step the optimizer and the schedule, zero the gradients; returns the gradient norm.

        With `check_finite`, a NaN/inf gradient norm (finite losses can still overflow in the backward pass, e.g. under
        bf16) stops training before the weights are touched, naming the parameters whose gradients are not finite.
        The norm is computed once (fused) and reused for clipping where gradients are whole on every rank (single
        process, DDP); other set-ups (fp16 loss scaling, FSDP, DeepSpeed) go through `accelerator.clip_grad_norm_`.
        """
        args, acc = self.args, self.accelerator
        grad_norm = None
        if acc.mixed_precision != "fp16" and acc.distributed_type in _WHOLE_GRADIENTS:
            if args.max_grad_norm or args.check_finite:
                parameters = [p for p in self.model.parameters() if p.grad is not None]
                total = torch.nn.utils.get_total_norm([p.grad for p in parameters])
                grad_norm = float(total)
                if args.check_finite and not math.isfinite(grad_norm):
                    self._raise_nonfinite_gradients(grad_norm)
                if args.max_grad_norm:
                    torch.nn.utils.clip_grads_with_norm_(parameters, args.max_grad_norm, total)
        elif args.max_grad_norm:
            grad_norm = float(acc.clip_grad_norm_(self.model.parameters(), args.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _next_batch(self, task: str) -> dict[str, Any]:
        batch = self.streams[task].next_batch()
        if not isinstance(batch, Mapping) or "pixel_values" not in batch or "labels" not in batch:
            got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ValueError(f"task {task!r}: a batch must be a dict with 'pixel_values' and 'labels', got {got}")
        return send_to_device(dict(batch), self.accelerator.device)

    def _task_loss(self, task: str, batch: Mapping[str, Any], step: int) -> torch.Tensor:
        outputs = self.model(pixel_values=batch["pixel_values"], task=task, labels=batch["labels"])
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs.loss
        if loss is None:
            raise ValueError(f"task {task!r}: the model returned no loss although labels were given")
        if self.args.check_finite:
            value = float(loss.detach())
            if not math.isfinite(value):
                where = self.last_checkpoint or "none saved yet"
                raise NonFiniteLossError(
                    f"the loss of task {task!r} is {value} at training step {step + 1} (of {self.max_steps}); "
                    f"training stopped before the optimizer step. Last good checkpoint: {where}. Check this task's "
                    "data (NaN/inf pixels or labels) or lower the learning rate."
                )
        return loss

    def _raise_nonfinite_gradients(self, total: float) -> None:
        """Raise NonFiniteLossError for a NaN/inf gradient norm, naming the worst parameters."""
        model = self.accelerator.unwrap_model(self.model)
        named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(grad.detach().float()) for _, grad in named])
        ranked = sorted(zip(norms.tolist(), (name for name, _ in named)), key=lambda item: _badness(item[0]))
        worst = ", ".join(f"{name} ({value:.3g})" for value, name in ranked[:5])
        raise NonFiniteLossError(
            f"the gradient norm is {total} at training step {self.state.step + 1} (of {self.max_steps}) although "
            f"every task's loss was finite; largest or non-finite gradients: {worst}. Training stopped before the "
            f"optimizer step. Last good checkpoint: {self.last_checkpoint or 'none saved yet'}. Try fp32 "
            "(mixed_precision='no'), larger images or a lower learning rate."
        )

    def _log(
        self,
        logger: TrainingLogger,
        window_sum: torch.Tensor,
        window_count: torch.Tensor,
        grad_norm: float | None,
        images: int,
        start: float,
    ) -> None:
        acc = self.accelerator
        totals = torch.stack([window_sum, window_count]).to(acc.device)
        totals = acc.reduce(totals, reduction="sum").cpu()
        record: dict[str, Any] = {"step": self.state.step, "epoch": self.state.step / self.rounds_per_epoch}
        for index, task in enumerate(self.task_names):
            if totals[1, index] > 0:
                record[f"loss/{task}"] = float(totals[0, index] / totals[1, index])
        seen = [value for key, value in record.items() if key.startswith("loss/")]
        record["loss"] = sum(seen) / len(seen) if seen else None
        for group in self.optimizer.param_groups:
            record[f"lr/{group.get('group_name', 'group')}"] = group["lr"]
        record["grad_norm"] = grad_norm
        record["images_per_second"] = images * acc.num_processes / max(time.perf_counter() - start, 1e-9)
        logger.log(record)

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self) -> Path:
        """Save a resumable checkpoint of the current step (all ranks must call it)."""
        summary = {
            "step": self.state.step,
            "max_steps": self.max_steps,
            "task_names": self.task_names,
            "streams": {name: stream.state_dict() for name, stream in self.streams.items()},
            "args": {key: getattr(self.args, key) for key in sorted(MultiTaskTrainingArguments.field_names())},
        }
        self.last_checkpoint = save_checkpoint(
            self.accelerator, self.output_dir, self.state.step, summary, self.args.save_total_limit
        )
        return self.last_checkpoint

    def export(self, directory: str | Path | None = None, push_to_hub: str | None = None) -> Path:
        """`save_pretrained` the model (safetensors) and the processor into `directory` (default `output_dir/final`)."""
        acc = self.accelerator
        target = Path(directory) if directory is not None else self.output_dir / "final"
        acc.wait_for_everyone()
        model = acc.unwrap_model(self.model)
        if acc.is_main_process:
            model.save_pretrained(target, is_main_process=True)
            if self.processor is not None:
                self.processor.save_pretrained(target)
        acc.wait_for_everyone()
        if push_to_hub and acc.is_main_process:
            _push(target, push_to_hub)
        return target


def _enable_gradient_checkpointing(model: nn.Module) -> None:
    enable = getattr(model, "activation_checkpointing_enable", None) or getattr(
        model, "gradient_checkpointing_enable", None
    )
    if enable is None:
        name = type(model).__name__
        raise ValueError(f"{name} has no gradient checkpointing; set training.gradient_checkpointing=false")
    enable()


def _launched_world_size() -> int:
    """WORLD_SIZE set by torchrun / accelerate launch (1 when not launched)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def _badness(norm: float) -> tuple[int, float]:
    """Sort key: NaN first, then inf, then the largest finite norms."""
    return (0, 0.0) if math.isnan(norm) else (1, 0.0) if math.isinf(norm) else (2, -norm)


def _checkpoint_step(path: Path) -> int:
    return int(path.name.split("_")[-1])


def _push(folder: Path, repo_id: str) -> None:
    try:
        from umedpt_hf.hub import push_to_hub
    except ImportError as error:
        raise ImportError(f"--push-to-hub needs umedpt_hf.hub.push_to_hub, which failed to import: {error}") from None
    push_to_hub(folder, repo_id)
