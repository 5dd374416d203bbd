"""Memory-decoupled multi-task pretraining on `accelerate`: one backward pass per task batch, one step per round."""

from __future__ import annotations

from .arguments import MultiTaskTrainingArguments
from .checkpointing import latest_checkpoint, list_checkpoints, read_trainer_state
from .config import ConfigError, PretrainConfig, load_pretrain_config, parse_pretrain_config
from .logging import TrainingLogger, read_log
from .optim import build_optimizer, build_parameter_groups, build_scheduler
from .pipeline import run_pretraining
from .samplers import RoundRobinSampler, SizeProportionalSampler, TaskSampler, build_sampler
from .streams import IndexedTaskStream, IterableTaskStream, TaskBatchStream, as_task_stream
from .trainer import MultiTaskTrainer, NonFiniteLossError, TrainOutput, build_accelerator

__all__ = [
    "ConfigError",
    "IndexedTaskStream",
    "IterableTaskStream",
    "MultiTaskTrainer",
    "MultiTaskTrainingArguments",
    "NonFiniteLossError",
    "PretrainConfig",
    "RoundRobinSampler",
    "SizeProportionalSampler",
    "TaskBatchStream",
    "TaskSampler",
    "TrainOutput",
    "TrainingLogger",
    "as_task_stream",
    "build_accelerator",
    "build_optimizer",
    "build_parameter_groups",
    "build_sampler",
    "build_scheduler",
    "latest_checkpoint",
    "list_checkpoints",
    "load_pretrain_config",
    "parse_pretrain_config",
    "read_log",
    "read_trainer_state",
    "run_pretraining",
]
