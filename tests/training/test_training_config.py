"""(e) Bad configs fail with clear errors before any training starts; good ones parse into dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from umedpt_hf.data import DEFAULT_HELD_OUT_TASKS, DEFAULT_PRETRAINING_TASKS
from umedpt_hf.training.config import ConfigError, apply_overrides, load_pretrain_config, parse_pretrain_config
from umedpt_hf.training.pipeline import run_pretraining

CONFIGS = Path(__file__).parents[2] / "examples" / "configs"


def _tiny_raw() -> dict:
    return yaml.safe_load((CONFIGS / "tiny.yaml").read_text())


def test_shipped_configs_parse():
    tiny = load_pretrain_config(CONFIGS / "tiny.yaml")
    assert tiny.task_names == ["modality_cls", "head_ct_tissue_seg", "dsb2018_nuclei_det"]
    assert tiny.tasks[2].image_size == 64 and tiny.tasks[0].image_size == 32 and tiny.tasks[0].batch_size == 4
    mini = load_pretrain_config(CONFIGS / "umedpt_mini.yaml")
    assert sorted(mini.task_names) == sorted(DEFAULT_PRETRAINING_TASKS)
    assert sorted(mini.held_out_tasks) == sorted(DEFAULT_HELD_OUT_TASKS)
    assert mini.training.mode == "per_task" and mini.training.output_dir == mini.output_dir


def test_overrides_are_parsed_as_yaml():
    raw = apply_overrides(
        _tiny_raw(), ["training.max_steps=7", "data.augment=true", "training.head_learning_rate=1e-2"]
    )
    config = parse_pretrain_config(raw)
    assert config.training.max_steps == 7 and config.data.augment is True
    assert config.training.head_learning_rate == pytest.approx(1e-2)
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        apply_overrides(_tiny_raw(), ["max_steps"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: raw["tasks"].__setitem__(0, {"name": "modality_cls", "batch_size": 0}),
            "batch_size must be a positive",
        ),
        (lambda raw: raw["data"].__setitem__("batch_size", -2), "data.batch_size must be a positive"),
        (lambda raw: raw["tasks"].append({"name": "x", "type": "regression"}), "unknown task type 'regression'"),
        (lambda raw: raw["tasks"].append("modality_cls"), "listed twice"),
        (lambda raw: raw["tasks"].append({"name": "y", "image_size": 50}), "multiple of 32"),
        (lambda raw: raw.__setitem__("tasks", []), "non-empty list"),
        (lambda raw: raw["training"].__setitem__("mode", "sequential"), "training.mode must be one of"),
        (lambda raw: raw["training"].__setitem__("sampler", "random"), "training.sampler must be one of"),
        (lambda raw: raw["training"].__setitem__("max_step", 3), r"unknown key\(s\) \['max_step'\] in training"),
        (lambda raw: raw["training"].__setitem__("learning_rate", 0), "learning_rate must be > 0"),
        (lambda raw: raw.__setitem__("held_out_tasks", ["modality_cls"]), "both pretraining tasks and held_out_tasks"),
        (lambda raw: raw["model"].__setitem__("preset", "vit_huge"), "model.preset must be one of"),
        (lambda raw: raw.__setitem__("optimiser", {}), r"unknown key\(s\) \['optimiser'\]"),
        (
            lambda raw: raw["model"].__setitem__("overrides", {"fpn_channel": 64}),
            r"unknown key\(s\) \['fpn_channel'\] in model.overrides: not UMedPTConfig fields",
        ),
        (lambda raw: raw["model"].__setitem__("overrides", {"tasks": {}}), "set tasks and num_channels outside"),
        (lambda raw: raw["training"].__setitem__("eval_steps", -1), "eval_steps must be an integer >= 0"),
        (lambda raw: raw["training"].__setitem__("early_stopping_patience", 2), "needs validation"),
        (lambda raw: raw["training"].__setitem__("report_to", "neptune"), "unknown tracker 'neptune'"),
        (lambda raw: raw["data"].__setitem__("num_workers", True), "data.num_workers must be an integer"),
    ],
)
def test_bad_config_values_are_named(change, message):
    raw = _tiny_raw()
    change(raw)
    with pytest.raises(ConfigError, match=message):
        parse_pretrain_config(raw)


def test_known_overrides_are_accepted():
    raw = _tiny_raw()
    raw["model"]["overrides"] = {"fpn_channels": 64, "classifier_dropout": 0.2}
    assert parse_pretrain_config(raw).model.overrides == {"fpn_channels": 64, "classifier_dropout": 0.2}


def test_fp16_on_a_cpu_is_refused_before_anything_runs(tmp_path):
    config = _config_on(tmp_path / "nowhere", tmp_path / "run", "training.mixed_precision=fp16", "training.cpu=true")
    with pytest.raises(ConfigError, match="fp16 has no effect on a CPU"):
        run_pretraining(config)
    assert not (tmp_path / "run").exists()


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrain_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tasks: [a, b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pretrain_config(broken)


def _config_on(database: Path, output_dir: Path, *overrides: str):
    return parse_pretrain_config(
        apply_overrides(_tiny_raw(), [f"data.database={database}", f"output_dir={output_dir}", *overrides])
    )


def test_unknown_task_name_is_caught_before_training(tiny_database, tmp_path):
    config = _config_on(tiny_database, tmp_path / "run")
    config.tasks[0].name = "chest_xray_pneumonia"
    with pytest.raises(ConfigError, match="chest_xray_pneumonia"):
        run_pretraining(config)
    assert not (tmp_path / "run").exists()


def test_declared_type_must_match_the_database(tiny_database, tmp_path):
    config = _config_on(tiny_database, tmp_path / "run")
    config.tasks[0].type = "segmentation"
    with pytest.raises(ConfigError, match="config says type 'segmentation' but the database has 'classification'"):
        run_pretraining(config)
    assert not (tmp_path / "run").exists()


def test_missing_dataset_column_is_caught_before_training(database_without_mask_column, tmp_path):
    raw = _tiny_raw()
    raw.update(tasks=["seg_without_mask"], held_out_tasks=[])
    raw["data"]["database"] = str(database_without_mask_column)
    raw["output_dir"] = str(tmp_path / "run")
    with pytest.raises(ValueError, match="mask"):
        run_pretraining(parse_pretrain_config(raw))
    assert not (tmp_path / "run").exists()


def test_missing_database_says_how_to_build_it(tmp_path):
    config = _config_on(tmp_path / "nowhere", tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="umedpt data build"):
        run_pretraining(config)


def test_a_window_in_tasks_json_reaches_the_processor_not_the_model_config(tiny_database, tmp_path):
    """A CT window set in a tasks.json entry is preprocessing: the exported processor records it; the model's task
    entries keep only type, labels and modality."""
    import json
    import shutil

    from umedpt_hf.training.pipeline import build_model_and_processor, load_database

    root = tmp_path / "db"
    shutil.copytree(tiny_database, root)
    manifest = json.loads((root / "tasks.json").read_text())
    for entry in manifest["tasks"]:
        if entry["name"] == "head_ct_tissue_seg":
            entry["window"] = "bone"
    (root / "tasks.json").write_text(json.dumps(manifest))
    config = parse_pretrain_config(
        {"output_dir": str(tmp_path / "run"), "data": {"database": str(root)}, "tasks": ["head_ct_tissue_seg"]}
    )
    model, processor = build_model_and_processor(config, load_database(config))
    assert set(model.config.tasks["head_ct_tissue_seg"]) == {"type", "labels", "modality"}
    assert processor.task_preprocessing["head_ct_tissue_seg"]["window"] == "bone"
