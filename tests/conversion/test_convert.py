"""`convert_checkpoint`: the converted folder loads with AutoModel, computes torchvision's features, and carries a
report and a card that account for every tensor, name the source, its SHA-256 and its licence."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from conversion_helpers import SIZES, STANDIN_EXPECTED, STANDIN_ZIP, TV_TINY, max_abs_diff
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from torch.nn import functional
from transformers import AutoImageProcessor, AutoModel, Swinv2Backbone, Swinv2Config, Swinv2Model

from umedpt_hf import UMedPTModel
from umedpt_hf.conversion import convert_checkpoint


def test_standin_folder_loads_with_automodel_and_gives_torchvisions_pyramid(converted_standin, tv_io):
    model = AutoModel.from_pretrained(converted_standin).eval()
    assert isinstance(model, UMedPTModel)
    expected = load_file(str(STANDIN_EXPECTED))
    for side in SIZES:
        with torch.no_grad():
            output = model(tv_io[f"input_{side}"])
        for stage, produced in enumerate(output.feature_maps, start=1):
            assert max_abs_diff(produced, tv_io[f"stage{stage}_{side}"]) <= 1e-5, (side, stage)
        # the authors' squeezer: GELU(GroupNorm(1, C)(avgpool(last map))), computed from the expected tensors
        pooled = tv_io[f"stage4_{side}"].mean(dim=(-2, -1), keepdim=True)
        weight, bias = expected["squeezer.norm.weight"], expected["squeezer.norm.bias"]
        reference = functional.gelu(functional.group_norm(pooled, 1, weight, bias, 1e-5)).flatten(1)
        assert max_abs_diff(output.pooler_output, reference) <= 1e-5


def test_report_accounts_for_every_source_tensor(converted_standin):
    report = json.loads((converted_standin / "conversion_report.json").read_text())
    expected = load_file(str(STANDIN_EXPECTED))
    assert report["source"]["sha256"] == hashlib.sha256(STANDIN_ZIP.read_bytes()).hexdigest()
    assert report["source"]["kind"] == "umedpt_export"
    assert sum(item["tensors"] for item in report["converted"]) == 167  # 165 backbone (qkv split) + 2 squeezer
    buffers = {key for key, reason in report["dropped"].items() if "buffer" in reason}
    key_biases = {key.split("[")[0] for key, reason in report["dropped"].items() if "key" in reason}
    listed = {item["name"] for item in report["not_converted"]}
    assert len(buffers) == 16 and len(key_biases) == 8
    assert listed == {"encoder.model.wrapped_model.norm.weight", "encoder.model.wrapped_model.norm.bias"}
    assert buffers | listed <= set(expected) and key_biases <= set(expected)
    assert report["parity"]["weights"] == {"tensors": 167, "max_abs_diff": 0.0, "bit_identical": True}
    assert report["parity"]["input_sizes"] == [160, 192, 224, 256]
    assert set(report["files"]) == {p.name for p in converted_standin.iterdir()}
    assert report["licence"]["id"] == "other" and "non-commercial" in report["licence"]["text"]


def test_card_names_source_hash_licence_parity_and_sizes(converted_standin):
    card = ModelCard.load(converted_standin / "README.md")
    metadata = card.data.to_dict()
    assert metadata["umedpt_converted"] is True
    assert metadata["license"] == "other" and metadata["license_name"] == "umedpt-authors-noncommercial"
    sha = hashlib.sha256(STANDIN_ZIP.read_bytes()).hexdigest()
    assert metadata["umedpt_source_sha256"] == sha
    text = card.text
    assert STANDIN_ZIP.name in text and sha in text
    assert "Apache-2.0" in text and "does not extend to the weights" in text
    assert "160×160, 192×192, 224×224, 256×256" in text
    assert "features at 224×224 px | max abs diff 0.0" in text
    assert "structural stand-in" in text  # what could not be verified offline is said


def test_processor_reproduces_the_authors_input_convention(converted_standin):
    processor = AutoImageProcessor.from_pretrained(converted_standin)
    assert processor.size == {"height": 224, "width": 224} and processor.do_normalize is False
    assert processor.parity_input_sizes == [160, 192, 224, 256]
    image = torch.rand(3, 300, 260)  # RGB in [0, 1]
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 224, 224)
    assert float(pixel_values.min()) >= 0.0 and float(pixel_values.max()) <= 1.0  # no mean/std shift


def test_torchvision_state_dict_converts_with_imagenet_convention(converted_tv, tv_io):
    model = AutoModel.from_pretrained(converted_tv).eval()
    with torch.no_grad():
        maps = model(tv_io["input_256"]).feature_maps
    assert max(max_abs_diff(m, tv_io[f"stage{i}_256"]) for i, m in enumerate(maps, start=1)) <= 1e-5
    report = json.loads((converted_tv / "conversion_report.json").read_text())
    assert report["source"]["kind"] == "torchvision_state_dict"
    assert {item["name"] for item in report["not_converted"]} == {
        "norm.weight",
        "norm.bias",
        "head.weight",
        "head.bias",
    }
    assert report["initialised"] == [
        {"name": "squeezer.norm.bias", "reason": "not in the source: default init"},
        {"name": "squeezer.norm.weight", "reason": "not in the source: default init"},
    ]
    processor = json.loads((converted_tv / "preprocessor_config.json").read_text())
    assert processor["do_normalize"] is True and processor["size"] == {"height": 256, "width": 256}
    assert "ImageNet" in ModelCard.load(converted_tv / "README.md").text


def test_pth_state_dict_converts_like_safetensors(tmp_path, tv_tiny, converted_tv):
    torch.save(tv_tiny, tmp_path / "swin_v2_tiny.pth")
    out = convert_checkpoint(tmp_path / "swin_v2_tiny.pth", tmp_path / "from-pth").path
    first, second = load_file(str(out / "model.safetensors")), load_file(str(converted_tv / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_transformers_folder_converts_to_the_same_features(tmp_path):
    config = Swinv2Config(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=4, image_size=64)
    torch.manual_seed(0)
    source = Swinv2Model(config).eval()
    source.save_pretrained(tmp_path / "swinv2")
    out = convert_checkpoint(tmp_path / "swinv2", tmp_path / "converted").path
    model = AutoModel.from_pretrained(out).eval()
    stages = ["stage1", "stage2", "stage3", "stage4"]
    reference = Swinv2Backbone.from_pretrained(tmp_path / "swinv2", out_features=stages).eval()
    pixel_values = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, maps = reference(pixel_values).feature_maps, model(pixel_values).feature_maps
    assert len(maps) == 4 and all(torch.equal(produced, wanted) for produced, wanted in zip(maps, expected))
    report = json.loads((out / "conversion_report.json").read_text())
    assert {item["name"] for item in report["not_converted"]} == {"layernorm.weight", "layernorm.bias"}
    assert report["parity"]["features"] == {"reference": "transformers"}


def test_reconverting_into_its_own_folder_is_allowed_foreign_files_are_not(tmp_path):
    out = tmp_path / "umedpt"
    convert_checkpoint(TV_TINY, out)
    convert_checkpoint(TV_TINY, out)  # the folder holds only what the converter wrote
    (out / "my_notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"not empty.*my_notes\.txt.*nothing was overwritten"):
        convert_checkpoint(TV_TINY, out)
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert not any(path.name.startswith(".staging") for path in out.iterdir())


def test_a_umedpt_folder_is_not_converted_again(converted_standin, tmp_path):
    with pytest.raises(ValueError, match="already a UMedPT folder"):
        convert_checkpoint(converted_standin, tmp_path / "again")
    assert not (tmp_path / "again").exists()
