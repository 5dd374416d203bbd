from __future__ import annotations

import pytest
from transformers import AutoConfig, ConvNextConfig

from umedpt_hf import UMedPTConfig, tiny_config


def test_default_backbone_is_swinv2_tiny_with_window_8_and_all_stages():
    config = UMedPTConfig()
    assert config.backbone_config.model_type == "swinv2"
    assert config.backbone_config.window_size == 8
    assert config.backbone_config.out_features == ["stage1", "stage2", "stage3", "stage4"]
    assert config.hidden_size == 768
    assert config.pixel_embedding_dim == 16 and config.fpn_channels == 128 and config.detection_tower_depth == 4


def test_round_trip_through_json(tmp_path, four_tasks):
    config = tiny_config(tasks=four_tasks, num_channels=1)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, UMedPTConfig)
    assert loaded.tasks == config.tasks
    assert loaded.num_channels == 1 and loaded.backbone_config.num_channels == 1
    assert loaded.backbone_config.embed_dim == 32


def test_single_stage_backbone_request_is_widened_to_the_pyramid():
    backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], out_features=["stage4"])
    config = UMedPTConfig(backbone_config=backbone)
    assert config.backbone_config.out_features == ["stage1", "stage2", "stage3", "stage4"]
    assert config.hidden_size == 64


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "regression", "labels": ["a", "b"]}, "unknown type 'regression'"),
        ({"type": "classification", "labels": []}, "non-empty list"),
        ({"type": "classification"}, "non-empty list"),
        ({"type": "classification", "labels": ["a"]}, "at least 2 labels"),
        ({"type": "segmentation", "labels": ["bg", "bg"]}, "duplicate label names"),
        ({"type": "detection", "labels": ["cell"], "colour": "red"}, "unknown keys"),
        ("classification", "must be a dict"),
    ],
)
def test_bad_task_specs_raise_naming_the_task(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        UMedPTConfig(tasks={"my_task": spec})
    assert "my_task" in str(error.value)


def test_bad_task_name_and_channels():
    with pytest.raises(ValueError, match="invalid"):
        UMedPTConfig(tasks={"a.b": {"type": "classification", "labels": ["x", "y"]}})
    with pytest.raises(ValueError, match="num_channels"):
        UMedPTConfig(num_channels=2)


def test_add_task_rejects_duplicates(four_tasks):
    config = tiny_config(tasks=four_tasks)
    with pytest.raises(ValueError, match="already exists"):
        config.add_task("nuclei", {"type": "detection", "labels": ["cell"]})


def test_backbone_outputs_default_to_the_pyramid_and_none_means_the_last_stage(tmp_path):
    config = UMedPTConfig()
    assert config.stage_names == ["stem", "stage1", "stage2", "stage3", "stage4"] and config.num_hidden_layers == 4
    assert config.out_features == config.pyramid_stage_names == ["stage1", "stage2", "stage3", "stage4"]
    assert UMedPTConfig(out_features=None).out_features == ["stage4"]  # as every transformers backbone config
    assert UMedPTConfig(out_indices=[2, 3]).out_features == ["stage2", "stage3"]
    config = UMedPTConfig(out_features=["stage3", "stage4"], squeezer_projection_dim=32, replace_batch_norm=False)
    config.save_pretrained(tmp_path)
    loaded = UMedPTConfig.from_pretrained(tmp_path)
    assert loaded.out_indices == [3, 4] and loaded.squeezer_projection_dim == 32 and loaded.hidden_size == 32
    assert loaded.replace_batch_norm is False and UMedPTConfig().replace_batch_norm is True
