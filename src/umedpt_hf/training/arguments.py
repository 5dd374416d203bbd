"""Options of the multi-task training loop (the `training:` section of a pretraining YAML config)."""

from __future__ import annotations

from dataclasses import dataclass, fields

TRAINING_MODES = ("per_task", "joint")
SAMPLERS = ("round_robin", "size_proportional")
MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass
class MultiTaskTrainingArguments:
    """How the memory-decoupled multi-task loop trains.

    Args:
        output_dir: Folder for checkpoints (`checkpoints/step_XXXXXXXX`), the JSON-lines log and the export (`final/`).
        mode: `"per_task"` (one backward per task batch, gradients accumulate; memory independent of the number of
            tasks) or `"joint"` (sum of all task losses, one backward: the baseline whose memory grows with the tasks).
        sampler: `"round_robin"` (every task once per round, shorter tasks cycled) or `"size_proportional"` (each
            round draws `tasks_per_round` tasks with probability proportional to their number of examples).
        tasks_per_round: Draws per round for the size-proportional sampler (default: the number of tasks).
        max_steps: Optimizer steps (= rounds). When unset, `num_epochs` epochs of the longest task.
        num_epochs: Epochs of the longest task when `max_steps` is unset.
        learning_rate: AdamW learning rate of the shared parameters (encoder and shared decoders).
        head_learning_rate: Learning rate of the per-task heads (default: `learning_rate`).
        weight_decay: AdamW weight decay (not applied to biases and normalisation weights).
        adam_beta1, adam_beta2, adam_epsilon: AdamW constants.
        warmup_steps: Linear warm-up steps (overrides `warmup_ratio` when > 0), followed by a cosine decay to 0.
        warmup_ratio: Warm-up as a fraction of `max_steps`.
        max_grad_norm: Gradient clipping by global norm after each round (`None` or 0: off).
        mixed_precision: `"no"`, `"bf16"` (autocast; works on CPU and GPU) or `"fp16"` (GPU only).
        gradient_checkpointing: Recompute activations in the backward pass (less memory, more compute).
        save_steps: Save a resumable checkpoint every this many steps (0: only at the end).
        save_total_limit: Keep only the newest checkpoints (`None`: keep all).
        logging_steps: Write a JSON-lines record every this many steps.
        seed: Seed of the weights' initialisation, dropout and the data order (a pure function of seed and position).
        cpu: Force the CPU even when an accelerator is present.
        progress_bar: Show a tqdm bar with the per-task losses on the main process.
        check_finite: Stop with a clear error when a task's loss or the gradient norm is NaN or infinite (one fused
            host read per round, before the optimizer step).
        overwrite_output_dir: Start a new run in an `output_dir` that holds another run, deleting only the files
            that run wrote (otherwise such a folder is refused unless resuming).
        dataloader_num_workers: Worker processes in total, shared by all tasks (`None`: the largest `num_workers`
            of the task DataLoaders given; 0: batches are made in the main process).
        dataloader_prefetch_factor: Batches each worker prepares ahead.
        dataloader_pin_memory: Pin batches in page-locked memory when training on a GPU.
        compile: `torch.compile` the encoder and the shared decoders.
        compile_backend: The `torch.compile` backend (`"inductor"`; `"aot_eager"` traces without generating code).
        eval_steps: Validate every this many steps (and at the end); 0: no validation.
        eval_max_examples: Cap of each task's fixed validation subset (`None`: the whole validation split).
        early_stopping_patience: Stop after this many evaluations without a lower sum of validation losses.
        report_to: Experiment trackers through accelerate (`["tensorboard"]`, `"all"`, `"none"`).
    """

    output_dir: str = "outputs/pretrain"
    mode: str = "per_task"
    sampler: str = "round_robin"
    tasks_per_round: int | None = None
    max_steps: int | None = None
    num_epochs: float = 1.0
    learning_rate: float = 1e-4
    head_learning_rate: float | None = None
    weight_decay: float = 0.05
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    save_steps: int = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    seed: int = 0
    cpu: bool = False
    progress_bar: bool = True
    check_finite: bool = True
    overwrite_output_dir: bool = False
    dataloader_num_workers: int | None = None
    dataloader_prefetch_factor: int = 2
    dataloader_pin_memory: bool = True
    compile: bool = False
    compile_backend: str = "inductor"
    eval_steps: int = 0
    eval_max_examples: int | None = 64
    early_stopping_patience: int | None = None
    report_to: list[str] | str = "none"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid option."""
        _one_of("mode", self.mode, TRAINING_MODES)
        _one_of("sampler", self.sampler, SAMPLERS)
        _one_of("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _positive_or_none("max_steps", self.max_steps)
        _positive_or_none("tasks_per_round", self.tasks_per_round)
        if not self.num_epochs > 0:
            raise ValueError(f"training.num_epochs must be > 0, got {self.num_epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise ValueError(f"training.head_learning_rate must be > 0, got {self.head_learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"training.weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("training.warmup_steps must be >= 0 and training.warmup_ratio in [0, 1)")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError(f"training.max_grad_norm must be >= 0 or null, got {self.max_grad_norm}")
        if self.save_steps < 0:
            raise ValueError(f"training.save_steps must be >= 0, got {self.save_steps}")
        _positive_or_none("save_total_limit", self.save_total_limit)
        if self.logging_steps < 1:
            raise ValueError(f"training.logging_steps must be >= 1, got {self.logging_steps}")
        if self.dataloader_num_workers is not None and (
            not isinstance(self.dataloader_num_workers, int) or self.dataloader_num_workers < 0
        ):
            raise ValueError(f"training.dataloader_num_workers must be >= 0 or null, got {self.dataloader_num_workers}")
        _positive_or_none("dataloader_prefetch_factor", self.dataloader_prefetch_factor)
        if not isinstance(self.eval_steps, int) or isinstance(self.eval_steps, bool) or self.eval_steps < 0:
            raise ValueError(f"training.eval_steps must be an integer >= 0, got {self.eval_steps!r}")
        _positive_or_none("eval_max_examples", self.eval_max_examples)
        _positive_or_none("early_stopping_patience", self.early_stopping_patience)
        if self.early_stopping_patience and not self.eval_steps:
            raise ValueError("training.early_stopping_patience needs validation: set training.eval_steps > 0")
        for name in ("overwrite_output_dir", "compile", "dataloader_pin_memory", "check_finite", "cpu"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"training.{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.report_to, (str, list)):
            raise ValueError(f"training.report_to must be a tracker name or a list of names, got {self.report_to!r}")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"training.{name} must be one of {list(allowed)}, got {value!r}")


def _positive_or_none(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"training.{name} must be a positive integer or null, got {value!r}")
