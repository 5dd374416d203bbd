"""Memory-decoupled multi-task pretraining on `accelerate`: one backward pass per task batch, one step per round."""

from __future__ import annotations

from .arguments import MultiTaskTrainingArguments
from .checkpointing import latest_checkpoint, list_checkpoints, read_trainer_state
from .config import ConfigError, PretrainConfig, load_pretrain_config, parse_pretrain_config
from .launch import build_accelerator
from .logging import TrainingLogger, read_log
from .optim import build_optimizer, build_parameter_groups, build_scheduler
from .pipeline import run_pretraining
from .run_folder import OutputDirError
from .samplers import RoundRobinSampler, SizeProportionalSampler, TaskSampler, build_sampler
from .signals import TrainingInterrupted
from .state_files import CheckpointError
from .streaming import StreamingTaskStream
from .streams import IndexedTaskStream, IterableTaskStream, TaskBatchStream, as_task_stream
from .trainer import MultiTaskTrainer, NonFiniteLossError, TrainOutput

__all__ = [
    "CheckpointError",
    "ConfigError",
    "IndexedTaskStream",
    "IterableTaskStream",
    "MultiTaskTrainer",
    "MultiTaskTrainingArguments",
    "NonFiniteLossError",
    "OutputDirError",
    "PretrainConfig",
    "RoundRobinSampler",
    "SizeProportionalSampler",
    "StreamingTaskStream",
    "TaskBatchStream",
    "TaskSampler",
    "TrainOutput",
    "TrainingInterrupted",
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
