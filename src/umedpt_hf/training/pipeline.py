"""From a pretraining config to an exported model: database -> model + processor -> task loaders -> trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate.utils import set_seed

from .checkpointing import latest_checkpoint
from .config import PretrainConfig, check_against_database, database_dir, save_config
from .trainer import MultiTaskTrainer, TrainOutput


def load_database(config: PretrainConfig) -> dict[str, Any]:
    """The config's tasks (and held-out tasks, to check they exist) from the task database, validated."""
    from umedpt_hf.data import load_task_database

    root = database_dir(config)
    if not (root / "tasks.json").is_file():
        raise FileNotFoundError(
            f"no task database at {root} (no tasks.json); build it with `umedpt data build --out {root}` "
            "or set data.database"
        )
    from .config import ConfigError

    try:
        database = load_task_database(root, tasks=[*config.task_names, *config.held_out_tasks])
    except ValueError as error:  # unknown task names, unreadable task entries
        raise ConfigError(str(error)) from None
    check_against_database(config, database)
    return database


def build_model_and_processor(config: PretrainConfig, database: dict[str, Any]) -> tuple[Any, Any]:
    """A freshly initialised `UMedPTForMultiTask` with one head per pretraining task, and its processor."""
    from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
    from umedpt_hf.presets import config_from_preset

    specs = {name: dict(database[name].spec) for name in config.task_names}
    model_config = config_from_preset(
        config.model.preset, tasks=specs, num_channels=config.model.num_channels, **config.model.overrides
    )
    set_seed(config.training.seed)
    model = UMedPTForMultiTask(model_config)
    if config.model.init_from:  # a Swin-V2 checkpoint (Hub id or folder), torchvision state_dict, UMedPT folder
        from umedpt_hf.conversion import init_encoder_from

        init_encoder_from(model, config.model.init_from)
    return model, build_processor(config, database, model_config)


def build_processor(config: PretrainConfig, database: dict[str, Any], model_config: Any) -> Any:
    """The processor exported with the model: each pretraining task's preprocessing (modality rule, window, size,
    label count) recorded as its loader applies it; the loaders use its `for_task` views."""
    from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor

    size = config.data.image_size
    return UMedPTImageProcessor.from_model_config(
        model_config,
        task_specs={task.name: database[task.name].spec for task in config.tasks},
        task_sizes={task.name: task.image_size for task in config.tasks},
        size={"height": size, "width": size},
    )


def build_task_loaders(config: PretrainConfig, database: dict[str, Any], model_config: Any) -> dict[str, Any]:
    """One DataLoader per pretraining task, each with its own batch size and its preprocessing (`build_processor`)."""
    from umedpt_hf.data import make_task_dataloader

    processor = build_processor(config, database, model_config)
    loaders = {}
    for task in config.tasks:
        loaders[task.name] = make_task_dataloader(
            database[task.name],
            task.split,
            processor.for_task(task.name),
            batch_size=task.batch_size,
            shuffle=True,
            augment=config.data.augment,
            seed=config.training.seed,
            num_workers=config.data.num_workers,
            drop_last=True,
        )
    return loaders


def run_pretraining(
    config: PretrainConfig, resume: bool = False, push_to_hub: str | None = None, callbacks: tuple = ()
) -> tuple[TrainOutput, Path]:
    """Validate, build, train (resuming from the newest checkpoint if asked), export to `output_dir/final`."""
    database = load_database(config)  # every config / data error surfaces here, before any training
    if resume and latest_checkpoint(config.output_dir) is None:
        raise FileNotFoundError(f"--resume: no complete checkpoint under {Path(config.output_dir) / 'checkpoints'}")
    model, processor = build_model_and_processor(config, database)
    loaders = build_task_loaders(config, database, model.config)
    trainer = MultiTaskTrainer(model, loaders, config.training, processor=processor, callbacks=callbacks)
    if trainer.accelerator.is_main_process:
        save_config(config, Path(config.output_dir) / "pretrain_config.yaml")
    result = trainer.train(resume_from=True if resume else None)
    final = trainer.export(push_to_hub=push_to_hub or config.push_to_hub)
    return result, final
