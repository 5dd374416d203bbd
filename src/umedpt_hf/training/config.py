"""The pretraining YAML config: parsed into dataclasses and checked before any training starts.

```yaml
output_dir: outputs/umedpt_mini
model: {preset: tiny, num_channels: 3, overrides: {}}
data: {database: null, image_size: 64, batch_size: 8, split: train, eval_split: validation, augment: true,
       num_workers: 0, streaming: false}   # num_workers: the total worker budget, shared by all tasks
tasks:                      # names, or dicts with per-task batch_size / image_size / type (checked) / split
  - brain_tissue
  - {name: nuclei_detection, batch_size: 4, image_size: 96}
held_out_tasks: [head_ct_bone]
training: {max_steps: 200, learning_rate: 1.0e-4, head_learning_rate: 1.0e-3, ...}  # MultiTaskTrainingArguments
push_to_hub: null
```
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .arguments import MultiTaskTrainingArguments
from .logging import resolve_trackers

TASK_TYPES = ("classification", "multilabel", "segmentation", "detection")
LABEL_COLUMNS = {"classification": "label", "multilabel": "labels", "segmentation": "mask", "detection": "objects"}
MODEL_PRESETS = ("tiny", "swinv2_t")
IMAGE_SIDE_MULTIPLE = 32


class ConfigError(ValueError):
    """A pretraining config is invalid; the message names the key and what is expected."""


@dataclass
class ModelSection:
    preset: str = "tiny"
    num_channels: int = 3
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # encoder weights to start from (umedpt_hf.conversion.init_encoder_from)


@dataclass
class DataSection:
    database: str | None = None  # None: umedpt_hf.data.default_database_dir() ($UMEDPT_DATA_DIR or the user cache)
    image_size: int = 64
    batch_size: int = 8
    split: str = "train"
    augment: bool = False
    num_workers: int = 0  # worker processes in total, shared by all tasks (one pool)
    eval_split: str = "validation"  # the split validated every training.eval_steps
    streaming: bool = False  # read each split as a datasets.IterableDataset (exact resume kept)


@dataclass
class TaskEntry:
    name: str
    batch_size: int
    image_size: int
    split: str
    type: str | None = None


@dataclass
class PretrainConfig:
    """A validated pretraining config (see the module docstring for the YAML layout)."""

    output_dir: str
    model: ModelSection
    data: DataSection
    tasks: list[TaskEntry]
    held_out_tasks: list[str]
    training: MultiTaskTrainingArguments
    push_to_hub: str | None = None
    source: str | None = None

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for `yaml.safe_dump` (saved next to the run)."""
        training = asdict(self.training)
        training.pop("output_dir")
        return {
            "output_dir": self.output_dir,
            "model": asdict(self.model),
            "data": asdict(self.data),
            "tasks": [{k: v for k, v in asdict(task).items() if v is not None} for task in self.tasks],
            "held_out_tasks": list(self.held_out_tasks),
            "training": training,
            "push_to_hub": self.push_to_hub,
        }


TOP_LEVEL_KEYS = {"output_dir", "model", "data", "tasks", "held_out_tasks", "training", "push_to_hub"}


def load_pretrain_config(path: str | Path, overrides: Sequence[str] = ()) -> PretrainConfig:
    """Read a YAML config, apply `section.key=value` overrides (values parsed as YAML), validate it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a pretraining config must be a mapping, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    config = parse_pretrain_config(raw)
    config.source = str(path)
    return config


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`["training.max_steps=10", "data.image_size=32"]` -> a copy of `raw` with those values set."""
    result = copy.deepcopy(dict(raw))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {key!r} is not a section")
        node[keys[-1]] = yaml.safe_load(value)
    return result


def parse_pretrain_config(raw: Mapping[str, Any]) -> PretrainConfig:
    """Validate the structure and values of a config dict (no database access)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a pretraining config must be a mapping, got {type(raw).__name__}")
    _no_unknown_keys("the config", raw, TOP_LEVEL_KEYS)
    output_dir = str(raw.get("output_dir") or "outputs/pretrain")
    model = _section(ModelSection, raw.get("model"), "model")
    if model.preset not in MODEL_PRESETS:
        raise ConfigError(f"model.preset must be one of {list(MODEL_PRESETS)}, got {model.preset!r}")
    _check_model_overrides(model.overrides)
    if model.num_channels not in (1, 3):
        raise ConfigError(f"model.num_channels must be 1 or 3, got {model.num_channels!r}")
    if model.init_from is not None and not (isinstance(model.init_from, str) and model.init_from.strip()):
        raise ConfigError(f"model.init_from must be a Hub id or a path, got {model.init_from!r}")
    data = _section(DataSection, raw.get("data"), "data")
    _check_batch_size("data.batch_size", data.batch_size)
    _check_image_size("data.image_size", data.image_size)
    if not isinstance(data.num_workers, int) or isinstance(data.num_workers, bool) or data.num_workers < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {data.num_workers!r}")
    for name in ("augment", "streaming"):
        if not isinstance(getattr(data, name), bool):
            raise ConfigError(f"data.{name} must be true or false, got {getattr(data, name)!r}")
    tasks = _parse_tasks(raw.get("tasks"), data)
    held_out = raw.get("held_out_tasks") or []
    if not isinstance(held_out, list) or not all(isinstance(name, str) for name in held_out):
        raise ConfigError("held_out_tasks must be a list of task names")
    both = sorted({task.name for task in tasks} & set(held_out))
    if both:
        raise ConfigError(
            f"tasks {both} are both pretraining tasks and held_out_tasks; a held-out task must stay unseen"
        )
    if not isinstance(raw.get("training") or {}, Mapping):
        raise ConfigError("training must be a mapping of MultiTaskTrainingArguments options")
    training_raw = dict(raw.get("training") or {})
    _no_unknown_keys("training", training_raw, MultiTaskTrainingArguments.field_names() - {"output_dir"})
    training_raw = {key: _coerce_number(key, value) for key, value in training_raw.items()}
    try:
        training = MultiTaskTrainingArguments(output_dir=output_dir, **training_raw)
        resolve_trackers(training.report_to)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None
    push = raw.get("push_to_hub")
    return PretrainConfig(output_dir, model, data, tasks, list(held_out), training, push)


def check_against_database(config: PretrainConfig, database: Mapping[str, Any]) -> None:
    """Check the tasks against a loaded database (name -> TaskDataset): names, types, splits and columns."""
    known = sorted(database)
    for name in [*config.task_names, *config.held_out_tasks]:
        if name not in database:
            raise ConfigError(f"unknown task {name!r}: the database {database_dir(config)} has {known}")
    for task in config.tasks:
        spec = database[task.name].spec
        kind = spec.get("type")
        if kind not in TASK_TYPES:
            raise ConfigError(f"task {task.name!r} has unknown task type {kind!r}; expected one of {list(TASK_TYPES)}")
        if task.type is not None and task.type != kind:
            raise ConfigError(f"task {task.name!r}: the config says type {task.type!r} but the database has {kind!r}")
        splits = database[task.name].splits
        if task.split not in splits:
            raise ConfigError(f"task {task.name!r} has no split {task.split!r} (it has {sorted(splits)})")
        columns = set(splits[task.split].column_names)
        for column in ("image", LABEL_COLUMNS[kind]):
            if column not in columns:
                raise ConfigError(
                    f"task {task.name!r} ({kind}): the dataset column {column!r} is missing from split "
                    f"{task.split!r} (columns: {sorted(columns)})"
                )
        if len(splits[task.split]) == 0:
            raise ConfigError(f"task {task.name!r}: split {task.split!r} is empty")
        if config.training.eval_steps:
            split = config.data.eval_split
            if split not in splits or len(splits[split]) == 0:
                raise ConfigError(
                    f"task {task.name!r} has no (or an empty) validation split {split!r} (it has {sorted(splits)}); "
                    "set data.eval_split or training.eval_steps=0"
                )


def database_dir(config: PretrainConfig) -> Path:
    """`data.database`, or the default location of the built umedpt-mini database when it is null."""
    if config.data.database:
        return Path(config.data.database)
    from umedpt_hf.data import default_database_dir

    return default_database_dir()


def save_config(config: PretrainConfig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _parse_tasks(raw: Any, data: DataSection) -> list[TaskEntry]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("tasks must be a non-empty list of task names or {name: ..., batch_size: ...} entries")
    tasks, seen = [], set()
    for index, item in enumerate(raw):
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"tasks[{index}] must be a task name or a mapping with a 'name', got {item!r}")
        _no_unknown_keys(
            f"tasks[{index}] ({entry['name']})", entry, {"name", "batch_size", "image_size", "split", "type"}
        )
        task = TaskEntry(
            name=entry["name"],
            batch_size=entry.get("batch_size", data.batch_size),
            image_size=entry.get("image_size", data.image_size),
            split=entry.get("split", data.split),
            type=entry.get("type"),
        )
        if task.name in seen:
            raise ConfigError(f"task {task.name!r} is listed twice")
        seen.add(task.name)
        _check_batch_size(f"task {task.name!r}: batch_size", task.batch_size)
        _check_image_size(f"task {task.name!r}: image_size", task.image_size)
        if task.type is not None and task.type not in TASK_TYPES:
            raise ConfigError(
                f"task {task.name!r} has unknown task type {task.type!r}; expected one of {list(TASK_TYPES)}"
            )
        tasks.append(task)
    return tasks


def model_override_keys() -> set[str]:
    """The `UMedPTConfig` fields a config may set in `model.overrides` (its own fields, not the task list)."""
    import dataclasses

    from transformers import PreTrainedConfig

    from umedpt_hf.configuration_umedpt import UMedPTConfig

    own = {f.name for f in dataclasses.fields(UMedPTConfig)} - {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return own - {"tasks", "num_channels"}


def _check_model_overrides(overrides: Any) -> None:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"model.overrides must be a mapping of UMedPTConfig fields, got {type(overrides).__name__}")
    allowed = model_override_keys()
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        hint = " (set tasks and num_channels outside overrides)" if {"tasks", "num_channels"} & set(unknown) else ""
        raise ConfigError(
            f"unknown key(s) {unknown} in model.overrides: not UMedPTConfig fields, they would be ignored{hint}; "
            f"allowed: {sorted(allowed)}"
        )


def _coerce_number(key: str, value: Any) -> Any:
    """YAML reads `1e-4` (no dot) as a string: turn such strings into floats for the float options."""
    if key == "mixed_precision" and value is False:  # YAML 1.1 reads a bare `no` as false
        return "no"
    annotation = str(MultiTaskTrainingArguments.__dataclass_fields__[key].type)
    if isinstance(value, str) and "float" in annotation:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"training.{key} must be a number, got {value!r}") from None
    return value


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {type(raw).__name__}")
    _no_unknown_keys(name, raw, set(cls.__dataclass_fields__))
    return cls(**raw)


def _no_unknown_keys(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _check_batch_size(where: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")


def _check_image_size(where: str, value: Any) -> None:
    if not isinstance(value, int) or value < IMAGE_SIDE_MULTIPLE or value % IMAGE_SIDE_MULTIPLE:
        raise ConfigError(
            f"{where} must be a multiple of {IMAGE_SIDE_MULTIPLE} (the encoder's total stride), got {value!r}"
        )
