"""From a pretraining config to an exported model: database -> model + processor -> task loaders -> trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate.utils import set_seed

from .checkpointing import latest_checkpoint
from .config import ConfigError, PretrainConfig, check_against_database, database_dir
from .launch import check_mixed_precision, has_accelerator
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
    database = {}
    for name in [*config.task_names, *config.held_out_tasks]:  # one by one, so that an error names its task
        try:
            database.update(load_task_database(root, tasks=[name]))
        except ValueError as error:  # unknown task names, unreadable task entries
            raise ConfigError(str(error)) from None
        except (IndexError, KeyError) as error:  # e.g. datasets cannot load a split saved with no rows
            raise ConfigError(
                f"task {name!r} of the database {root} could not be read ({type(error).__name__}: {error}); "
                "check that its dataset folder is complete and that no split is empty"
            ) from None
    check_against_database(config, database)
    from umedpt_hf.data import check_held_out_disjoint

    try:  # held out means held out: no source volume or image shared with a pretraining task
        check_held_out_disjoint(database, config.task_names, config.held_out_tasks)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return database


MODEL_TASK_KEYS = ("type", "labels", "modality")


def build_model_and_processor(config: PretrainConfig, database: dict[str, Any]) -> tuple[Any, Any]:
    """A freshly initialised `UMedPTForMultiTask` with one head per pretraining task, and its processor."""
    from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
    from umedpt_hf.presets import config_from_preset

    # the model's task entries; preprocessing keys of a spec (e.g. a CT "window") go to the processor instead
    specs = {name: {key: database[name].spec[key] for key in MODEL_TASK_KEYS if key in database[name].spec}
             for name in config.task_names}  # fmt: skip
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


def build_validation_loaders(config: PretrainConfig, database: dict[str, Any], model_config: Any) -> dict[str, Any]:
    """One DataLoader per pretraining task over `data.eval_split`, without augmentation (none without eval_steps).

    The trainer takes each loader's dataset, collate function and batch size, and validates on a fixed subset of at
    most `training.eval_max_examples` examples per task.
    """
    if not config.training.eval_steps:
        return {}
    from umedpt_hf.data import make_task_dataloader

    processor = build_processor(config, database, model_config)
    return {
        task.name: make_task_dataloader(
            database[task.name],
            config.data.eval_split,
            processor.for_task(task.name),  # the training preprocessing, without augmentation
            batch_size=task.batch_size,
            shuffle=False,
        )
        for task in config.tasks
    }


def as_streaming_loaders(loaders: dict[str, Any], seed: int, num_shards: int = 8) -> dict[str, Any]:
    """`data.streaming`: each task's split read as a `datasets.IterableDataset` (sharded, shuffled per epoch)."""
    from torch.utils.data import DataLoader

    streamed = {}
    for name, loader in loaders.items():
        dataset = loader.dataset
        shards = max(1, min(num_shards, len(dataset)))
        buffer = 16 * (loader.batch_size or 1)
        iterable = dataset.to_iterable_dataset(num_shards=shards).shuffle(seed=seed, buffer_size=buffer)
        streamed[name] = DataLoader(
            iterable, batch_size=loader.batch_size, collate_fn=loader.collate_fn, drop_last=True
        )
    return streamed


def run_pretraining(
    config: PretrainConfig, resume: bool = False, overwrite: bool = False, callbacks: tuple = ()
) -> tuple[TrainOutput, Path]:
    """Validate, build, train (resuming from the newest checkpoint if asked), export to `output_dir/final`.

    `overwrite` starts a new run in an `output_dir` that holds another run (deleting only the files that run wrote).
    Publishing is the caller's: `umedpt_hf.hub.push_to_hub(final, repo_id)`.
    """
    try:
        check_mixed_precision(config.training.mixed_precision, config.training.cpu or not has_accelerator())
    except ValueError as error:
        raise ConfigError(str(error)) from None
    database = load_database(config)  # every config / data error surfaces here, before any training
    if resume and latest_checkpoint(config.output_dir) is None:
        raise FileNotFoundError(f"--resume: no complete checkpoint under {Path(config.output_dir) / 'checkpoints'}")
    if overwrite:
        config.training.overwrite_output_dir = True
    if config.training.dataloader_num_workers is None:
        config.training.dataloader_num_workers = config.data.num_workers  # one pool for all tasks
    model, processor = build_model_and_processor(config, database)
    loaders = build_task_loaders(config, database, model.config)
    if config.data.streaming:
        loaders = as_streaming_loaders(loaders, config.training.seed)
    trainer = MultiTaskTrainer(
        model,
        loaders,
        config.training,
        processor=processor,
        callbacks=callbacks,
        eval_loaders=build_validation_loaders(config, database, model.config),
        run_config=config.to_dict(),
    )
    result = trainer.train(resume_from=True if resume else None)
    return result, result.final or trainer.output_dir / "final"
