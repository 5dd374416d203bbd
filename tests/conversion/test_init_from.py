"""`init_encoder_from` and `model.init_from`: a transformers Swin-V2 folder, a torchvision state_dict and a converted
UMedPT folder load their exact tensors; what does not fit is named; the pretraining pipeline calls it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conversion_helpers import STANDIN_EXPECTED, TV_TINY, max_abs_diff
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from safetensors.torch import load_file
from transformers import Swinv2Config, Swinv2ForImageClassification

from umedpt_hf import UMedPTConfig, UMedPTForMultiTask, UMedPTModel, tiny_config
from umedpt_hf.conversion import init_encoder_from

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"
TASKS = {"chest": {"type": "classification", "labels": ["normal", "effusion"], "modality": "xray"}}


def fixture_geometry_model() -> UMedPTForMultiTask:
    """A UMedPT model whose encoder has the tiny torchvision fixture's architecture (torchvision's window geometry)."""
    backbone = Swinv2Config(
        embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=8, image_size=256,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )  # fmt: skip
    return UMedPTForMultiTask(UMedPTConfig(backbone_config=backbone, tasks=TASKS)).eval()


def test_local_transformers_folder_loads_its_exact_tensors(tmp_path):
    model = UMedPTForMultiTask(tiny_config(tasks=TASKS))
    backbone = model.config.backbone_config
    source = Swinv2ForImageClassification(
        Swinv2Config(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], window_size=8, num_labels=5)
    )
    source.save_pretrained(tmp_path / "imagenet-swinv2")
    report = init_encoder_from(model, tmp_path / "imagenet-swinv2")
    assert report.kind == "transformers_swinv2" and not report.squeezer_loaded
    theirs = source.swinv2.state_dict()
    ours = model.umedpt.backbone.state_dict()
    loaded = [key for key in ours if key in theirs]
    assert len(loaded) == len(report.loaded) > 100
    assert all(torch.equal(ours[key], theirs[key]) for key in loaded)
    assert backbone.window_size == 8


def test_torchvision_state_dict_loads_exact_tensors_and_features(tmp_path, tv_tiny, tv_io):
    torch.save(tv_tiny, tmp_path / "swin_v2_tiny.pth")
    for source in (TV_TINY, tmp_path / "swin_v2_tiny.pth"):
        model = fixture_geometry_model()
        init_encoder_from(model, source)
        state = model.umedpt.state_dict()
        qkv = tv_tiny["features.3.1.attn.qkv.weight"]
        assert torch.equal(state["backbone.encoder.layers.1.blocks.1.attention.self.value.weight"], qkv[64:])
        assert torch.equal(state["backbone.embeddings.norm.weight"], tv_tiny["features.0.2.weight"])
        with torch.no_grad():
            maps = model.umedpt(tv_io["input_224"]).feature_maps
        assert max(max_abs_diff(m, tv_io[f"stage{i}_224"]) for i, m in enumerate(maps, start=1)) <= 1e-5


def test_converted_umedpt_folder_loads_backbone_and_squeezer(converted_standin):
    model = fixture_geometry_model()
    report = init_encoder_from(model, converted_standin)
    assert report.kind == "umedpt_folder" and report.squeezer_loaded
    expected = load_file(str(STANDIN_EXPECTED))
    assert torch.equal(model.umedpt.squeezer.norm.weight.detach(), expected["squeezer.norm.weight"])
    converted = load_file(str(converted_standin / "model.safetensors"))
    state = model.umedpt.state_dict()
    assert all(torch.equal(state[key], tensor) for key, tensor in converted.items())


def test_a_plain_umedpt_model_works_too(converted_standin):
    model = UMedPTModel(fixture_geometry_model().config)
    assert init_encoder_from(model, converted_standin).squeezer_loaded


def test_mismatched_shapes_name_the_tensors():
    model = UMedPTForMultiTask(tiny_config(tasks=TASKS))  # embed 32, depths 1-1-2-1: not the fixture's 16, 2-2-2-2
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError) as error:
        init_encoder_from(model, TV_TINY)
    message = str(error.value)
    assert "backbone.embeddings.patch_embeddings.projection.weight (16, 3, 4, 4) vs (32, 3, 4, 4)" in message
    assert "init_from" in message and "tv_swinv2_tiny.safetensors" in message and "\n" not in message
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # nothing half-loaded


def test_missing_path_and_unreachable_hub_id_are_one_line_errors():
    model = UMedPTForMultiTask(tiny_config(tasks=TASKS))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        init_encoder_from(model, "./no/such/folder")
    with pytest.raises(ValueError, match=r"'no-such-org/swinv2-x'.*could not be fetched"):
        init_encoder_from(model, "no-such-org/swinv2-x")  # HF_HUB_OFFLINE=1 in the tests


def test_not_a_umedpt_model_is_refused():
    with pytest.raises(TypeError, match="UMedPT model"):
        init_encoder_from(torch.nn.Linear(2, 2), TV_TINY)


def write_database(root: Path) -> Path:
    """A one-task database in the canonical layout (tasks.json + a saved DatasetDict)."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32), dtype=np.uint8) for _ in range(4)]
    features = Features({"image": Image(), "label": ClassLabel(names=TASKS["chest"]["labels"])})
    split = Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features=features)
    DatasetDict({"train": split, "validation": split, "test": split}).save_to_disk(str(root / "chest"))
    entry = {"name": "chest", "path": "chest", **TASKS["chest"]}
    (root / "tasks.json").write_text(json.dumps({"database": "test", "version": 1, "tasks": [entry]}))
    return root


def test_pretraining_pipeline_initialises_from_the_config(tmp_path):
    from umedpt_hf.training.config import parse_pretrain_config
    from umedpt_hf.training.pipeline import build_model_and_processor, load_database

    source = Swinv2ForImageClassification(
        Swinv2Config(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], window_size=8)
    )
    source.save_pretrained(tmp_path / "swinv2")
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"preset": "tiny", "init_from": str(tmp_path / "swinv2")},
        "data": {"database": str(write_database(tmp_path / "db")), "image_size": 64},
        "tasks": ["chest"],
        "training": {"max_steps": 1},
    }
    config = parse_pretrain_config(raw)
    model, _ = build_model_and_processor(config, load_database(config))
    weight = model.umedpt.backbone.embeddings.patch_embeddings.projection.weight
    assert torch.equal(weight, source.swinv2.embeddings.patch_embeddings.projection.weight)


def test_init_from_must_be_a_string():
    from umedpt_hf.training.config import ConfigError, parse_pretrain_config

    with pytest.raises(ConfigError, match=r"model\.init_from"):
        parse_pretrain_config({"model": {"init_from": 3}, "tasks": ["chest"]})


def test_paper_scale_config_parses():
    from umedpt_hf.training.config import load_pretrain_config

    config = load_pretrain_config(EXAMPLES / "umedpt_swinv2_t.yaml")
    assert config.model.preset == "swinv2_t"
    assert config.model.init_from == "microsoft/swinv2-tiny-patch4-window8-256"
    assert config.data.image_size == 224 and config.training.mixed_precision == "bf16"
