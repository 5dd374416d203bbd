"""`MultiTaskTrainer`: the memory-decoupled multi-task loop of UMedPT on `accelerate.Accelerator`.

One optimizer step is one round over the sampler's tasks. For each task of the round one batch of that task only is
drawn, its forward pass and loss computed and `backward` called at once, so its activation graph is freed before the
next task runs; the gradients accumulate in the shared parameters. After the round: one fused check (non-finite
losses, non-finite gradient norm, a stop signal: the round's only host read), clip, optimizer step, scheduler step,
zero the gradients. Peak memory is that of the largest single task batch, whatever the number of tasks.

Under DDP the gradients are synchronised only on the last backward of a round (`no_sync` for the others), the model is
wrapped with `find_unused_parameters=True` (the other tasks' heads are unused in each pass), and every rank makes the
same number of backward calls per round (the sampler is a pure function of the round index).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, send_to_device, set_seed
from torch import nn

from .arguments import MultiTaskTrainingArguments
from .checkpointing import CheckpointError, checkpoint_step, load_checkpoint, resolve_resume, save_checkpoint
from .export import export_pretrained
from .launch import build_accelerator, check_launch, compile_model, enable_gradient_checkpointing, worker_budget
from .logging import TRACKING_PROJECT, Console, TrainingLogger, flat_hyperparameters
from .loss_book import LossWindow, RoundCheck, RoundLosses
from .optim import build_optimizer, build_scheduler
from .run_folder import RunFolder, claim_for_training
from .samplers import TaskSampler, build_sampler
from .signals import GracefulStop, TrainingInterrupted, follow_launcher, signal_name
from .streams import IndexedTaskStream, TaskBatchStream, as_task_stream, task_sizes
from .training_run import TrainingRun, nonfinite_gradients_error, nonfinite_loss_error
from .validation import BestModel, build_validation_sets, evaluate, validation_keys
from .worker_pool import WorkerPool

_WHOLE_GRADIENTS = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
StepCallback = Callable[["MultiTaskTrainer", int, Mapping[str, float]], None]

__all__ = ["MultiTaskTrainer", "NonFiniteLossError", "TrainOutput", "TrainingInterrupted", "build_accelerator"]


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
    final: Path | None = None
    best: Path | None = None
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class MultiTaskTrainer:
    """Train a `UMedPTForMultiTask` on several tasks with one backward pass per task batch.

    Args:
        model: A model whose `forward(pixel_values=..., task=..., labels=...)` returns an output with `.loss`.
        task_loaders: Task name -> its batches (`{"pixel_values", "labels"}` in the model's label format), each task
            with its own batch size and image size. A `DataLoader` over a map-style dataset is re-driven by the
            trainer (data order and augmentation are pure functions of `(seed, task, position)`, sharded over ranks,
            made by one shared worker pool, exactly resumable); a `DataLoader` over a `datasets.IterableDataset` is
            streamed (exactly resumable); other iterables are cycled.
        args: The loop's options.
        processor: Saved next to the exported model when given.
        accelerator: An existing Accelerator (it must use `find_unused_parameters=True` for multi-process runs).
        callbacks: Called as `callback(trainer, step, losses)` after every optimizer step on every rank (`losses`
            reads the round's losses from the device only when looked at).
        eval_loaders: Task name -> a DataLoader over its validation split (used every `args.eval_steps`).
        run_config: Plain data saved as `<output_dir>/pretrain_config.yaml` and given to the trackers.
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
        eval_loaders: Mapping[str, Any] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        if not task_loaders:
            raise ValueError("MultiTaskTrainer needs at least one task")
        model_tasks = getattr(model, "task_names", None)
        if model_tasks is not None:
            unknown = [name for name in task_loaders if name not in model_tasks]
            if unknown:
                known = list(model_tasks)
                raise ValueError(f"tasks {unknown} have data but no head in the model (model tasks: {known})")
        self.args, self.processor, self.callbacks, self.run_config = args, processor, list(callbacks), run_config
        self.accelerator = accelerator or build_accelerator(args)
        acc = self.accelerator
        check_launch(acc, args)
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
            enable_gradient_checkpointing(model)
        if args.compile:
            compile_model(model, args.compile_backend)
        optimizer = build_optimizer(model, args)
        self.scheduler = build_scheduler(optimizer, args, self.max_steps)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        tasks = getattr(getattr(model, "config", None), "tasks", None) or {}
        self.validation_sets = (
            build_validation_sets(eval_loaders, tasks, args.eval_max_examples, args.seed)
            if eval_loaders and args.eval_steps and acc.is_main_process
            else {}
        )
        self._validating = bool(eval_loaders) and bool(args.eval_steps)
        self.best = BestModel(args.early_stopping_patience)
        self.pool = WorkerPool(
            {name: s for name, s in self.streams.items() if isinstance(s, IndexedTaskStream)},
            {task: v.make_batch for task, v in self.validation_sets.items()},
            worker_budget(args, task_loaders),
            args.dataloader_prefetch_factor,
            pin_memory=args.dataloader_pin_memory and acc.device.type == "cuda",
        )
        self.step = 0
        self.output_dir = Path(args.output_dir)
        self.run_folder: RunFolder | None = None
        self.last_checkpoint: Path | None = None
        self.stop_agreed = False
        self.last_grad_norm: torch.Tensor | None = None
        self._check = RoundCheck(acc)

    # ------------------------------------------------------------------ the loop
    def train(self, resume_from: str | Path | bool | None = None) -> TrainOutput:
        """Run until `max_steps` (or early stopping); `resume_from=True` continues the run in `output_dir`.

        Writes checkpoints, `train_log.jsonl`, `curves.png`, `final/` (and `best/` with validation). SIGTERM / SIGINT
        finish the current round, save a checkpoint and raise `TrainingInterrupted`.
        """
        acc, args = self.accelerator, self.args
        self._claim_output_dir(resume_from)
        run = TrainingRun(self, TrainingLogger(self.output_dir, acc.is_main_process, acc))
        console = Console(self.max_steps, 0, args.progress_bar and acc.is_local_main_process)
        try:
            with GracefulStop() as stop:
                follow_launcher()
                checkpoint = resolve_resume(resume_from, self.output_dir)
                if checkpoint is not None:
                    self._load(checkpoint)
                else:
                    set_seed(args.seed)
                if self.run_folder is not None and self.run_config is not None:  # after a successful load only
                    self.run_folder.write_yaml("pretrain_config.yaml", self.run_config)
                run.start(flat_hyperparameters({**vars(args), "max_steps": self.max_steps}), TRACKING_PROJECT)
                console = Console(self.max_steps, self.step, args.progress_bar and acc.is_local_main_process)
                self.pool.start(self._schedule(self.step))
                window = LossWindow(self.task_names, acc.device)
                last: Mapping[str, float] = {}
                while self.step < self.max_steps and not self.stop_agreed:
                    if stop.requested and acc.num_processes == 1:  # between rounds: no need to start another
                        self.stop_agreed = True
                        break
                    losses, n_images, _ = self.training_step(self.step, stop.requested)
                    self.step += 1
                    run.images += n_images
                    window.add(losses)
                    last = losses.means()
                    console.step()
                    step = self.step
                    if step % args.logging_steps == 0 or step == self.max_steps:
                        console.show(run.log_training(window, self.last_grad_norm))
                    if self._evaluates_after(step) and run.validate(console) and self.best.should_stop:
                        run.stopped_early = True
                        console.note(f"early stopping at step {step}: {self.best.patience} evaluations without a "
                                     f"lower validation loss sum (best at step {self.best.best_step})")  # fmt: skip
                    if args.save_steps and step % args.save_steps == 0 and step < self.max_steps:
                        self.save_checkpoint()
                    for callback in self.callbacks:
                        callback(self, step, last)
                    if run.stopped_early:
                        break
                if self.last_checkpoint is None or self.step != checkpoint_step(self.last_checkpoint):
                    self.save_checkpoint()
                if self.stop_agreed:
                    raise TrainingInterrupted(
                        f"training stopped by {signal_name(stop.signal_number)} at step {self.step} of "
                        f"{self.max_steps}; checkpoint {self.last_checkpoint} is complete: continue with --resume",
                        stop.signal_number or 15,
                    )
                final = self.export(self.output_dir / "final")
                run.finish()
                return TrainOutput(
                    global_step=self.step,
                    last_losses=dict(last),
                    checkpoint=self.last_checkpoint,
                    log_file=run.logger.path,
                    images_seen=run.images,
                    seconds=time.perf_counter() - run.started,
                    final=final,
                    best=self.output_dir / "best" if self.best.best_step is not None else None,
                    stopped_early=run.stopped_early,
                )
        finally:
            self.pool.close()
            console.close()
            run.close()
            if self.run_folder is not None:
                self.run_folder.release_lock()

    def training_step(self, step: int, stop_requested: bool = False) -> tuple[RoundLosses, int, torch.Tensor | None]:
        """One round (one optimizer step); returns the round's losses, images used on this rank, gradient norm."""
        losses, n_images = self.accumulate_gradients(step)
        return losses, n_images, self.optimizer_step(losses, stop_requested)

    def accumulate_gradients(self, step: int) -> tuple[RoundLosses, int]:
        """Forward and backward every task batch of round `step`; the gradients accumulate in `.grad`."""
        acc = self.accelerator
        self.model.train()
        tasks = self.sampler.tasks_for_round(step)
        entries: list[tuple[str, torch.Tensor]] = []
        n_images = 0
        if self.args.mode == "per_task":
            for i, task in enumerate(tasks):
                batch = self._next_batch(task)
                n_images += int(batch["pixel_values"].shape[0])
                with nullcontext() if i == len(tasks) - 1 else acc.no_sync(self.model):
                    loss = self._task_loss(task, batch)
                    acc.backward(loss)  # this task's graph is freed here
                entries.append((task, loss.detach()))
            return RoundLosses(entries), n_images
        total = None
        for task in tasks:
            batch = self._next_batch(task)
            n_images += int(batch["pixel_values"].shape[0])
            loss = self._task_loss(task, batch)
            entries.append((task, loss.detach()))
            total = loss if total is None else total + loss
        acc.backward(total)  # all T graphs were alive until here
        return RoundLosses(entries), n_images

    def optimizer_step(self, losses: RoundLosses | None = None, stop_requested: bool = False) -> torch.Tensor | None:
        """Check, clip, step the optimizer and the schedule, zero the gradients; returns the gradient norm (device).

        The norm is computed once on the device and reused for clipping where gradients are whole on every rank
        (single process, DDP); other set-ups (fp16 loss scaling, FSDP, DeepSpeed) go through
        `accelerator.clip_grad_norm_`. With `check_finite`, NaN/inf losses or gradient norm stop training before the
        weights change; that check, and under several processes the agreement to stop on a signal, is one read.
        """
        args, acc = self.args, self.accelerator
        grad_norm, parameters = None, []
        whole = acc.mixed_precision != "fp16" and acc.distributed_type in _WHOLE_GRADIENTS
        if whole and (args.max_grad_norm or args.check_finite):
            parameters = [p for p in self.model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        elif not whole and args.max_grad_norm:
            grad_norm = acc.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
        self.stop_agreed = stop_requested
        if args.check_finite or acc.num_processes > 1:
            checked = losses.stacked() if args.check_finite and losses is not None and losses.entries else None
            bad_loss, bad_norm, self.stop_agreed = self._check.read(
                checked, grad_norm if args.check_finite else None, stop_requested
            )
            if bad_loss:
                raise nonfinite_loss_error(self, losses, NonFiniteLossError)
            if bad_norm:
                raise nonfinite_gradients_error(self, grad_norm, NonFiniteLossError)
        if whole and args.max_grad_norm and grad_norm is not None:
            torch.nn.utils.clip_grads_with_norm_(parameters, args.max_grad_norm, grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_grad_norm = grad_norm
        return grad_norm

    def _next_batch(self, task: str) -> dict[str, Any]:
        stream = self.streams[task]
        if task in self.pool.streams:
            batch = self.pool.get(("train", task, stream.consumed))
            stream.consumed += 1
        else:
            batch = stream.next_batch()
        if not isinstance(batch, Mapping) or "pixel_values" not in batch or "labels" not in batch:
            got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ValueError(f"task {task!r}: a batch must be a dict with 'pixel_values' and 'labels', got {got}")
        return send_to_device(dict(batch), self.accelerator.device, non_blocking=self.pool.pin_memory)

    def _task_loss(self, task: str, batch: Mapping[str, Any]) -> torch.Tensor:
        outputs = self.model(pixel_values=batch["pixel_values"], task=task, labels=batch["labels"])
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs.loss
        if loss is None:
            raise ValueError(f"task {task!r}: the model returned no loss although labels were given")
        return loss

    def _schedule(self, start_step: int) -> Iterator[tuple[str, str, int]]:
        """The batch keys the loop will ask the worker pool for, in order, from round `start_step` on."""
        consumed = {task: self.streams[task].consumed for task in self.pool.streams}
        for step in range(start_step, self.max_steps):
            for task in self.sampler.tasks_for_round(step):
                if task in consumed:
                    yield ("train", task, consumed[task])
                    consumed[task] += 1
            if self._evaluates_after(step + 1):
                yield from validation_keys(self.validation_sets)

    def _evaluates_after(self, step: int) -> bool:
        """Validation follows round `step` (on every rank: the main process evaluates, the others wait)."""
        every = self.args.eval_steps
        return self._validating and (step % every == 0 or step == self.max_steps)

    def validate(self) -> dict[str, float]:
        """Validation losses and metrics on the fixed subsets (main process; empty elsewhere)."""
        if not self.validation_sets:
            return {}
        device = self.accelerator.device
        return evaluate(
            self.accelerator.unwrap_model(self.model),
            self.validation_sets,
            lambda key: send_to_device(self.pool.get(key), device),
            self.accelerator.autocast,
        )

    # ------------------------------------------------------------------ the run folder and saving
    def _claim_output_dir(self, resume_from: str | Path | bool | None) -> None:
        """Refuse a folder with another run (unless resuming or overwriting), take its lock (main process)."""
        resume = resume_from is True or (
            resume_from not in (None, False) and Path(resume_from).resolve().is_relative_to(self.output_dir.resolve())
        )
        self.run_folder = claim_for_training(self.accelerator, self.output_dir, resume, self.args.overwrite_output_dir)

    def _load(self, checkpoint: Path) -> None:
        acc = self.accelerator
        state, loop_state = load_checkpoint(acc, checkpoint, self.model, self.optimizer, self.scheduler)
        saved = list(state.get("task_names", []))
        if saved != self.task_names:
            raise CheckpointError(
                f"the checkpoint {checkpoint} was trained on tasks {saved} but this run has tasks {self.task_names}; "
                "resume with the same task list (or start a new output_dir)"
            )
        try:
            self.step = int(state["step"])
            for name, stream in self.streams.items():
                stream.load_state_dict(loop_state["streams"][name])
            self.best.load_state_dict(state.get("validation") or {})
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"{checkpoint}: the loop state is malformed ({type(error).__name__}: {error})"
            ) from None
        self.last_checkpoint = checkpoint

    def save_checkpoint(self) -> Path:
        """Save a resumable checkpoint of the current step (all ranks must call it)."""
        summary = {
            "step": self.step,
            "max_steps": self.max_steps,
            "task_names": self.task_names,
            "validation": self.best.state_dict(),
            "args": {key: getattr(self.args, key) for key in sorted(MultiTaskTrainingArguments.field_names())},
        }
        loop_state = {"streams": {name: stream.state_dict() for name, stream in self.streams.items()}}
        self.last_checkpoint = save_checkpoint(
            self.accelerator, self.output_dir, self.run_folder, self.step, self.model, self.optimizer,
            self.scheduler, loop_state, summary, self.args.save_total_limit,
        )  # fmt: skip
        return self.last_checkpoint

    def export(self, directory: str | Path | None = None) -> Path:
        """`save_pretrained` the model (safetensors) and the processor into `directory` (default `output_dir/final`).

        Publishing is separate: `umedpt_hf.hub.push_to_hub(folder, repo_id)` (the CLI's `--push-to-hub`).
        """
        target = Path(directory) if directory is not None else self.output_dir / "final"
        return export_pretrained(self.accelerator, self.model, self.processor, self.run_folder, target)
