"""The timm export: keys and shapes equal timm's own key lists (tiny and full-size swinv2_tiny_window8_256), a config
that `timm.create_model` reads, and (where timm imports) timm's model reproducing UMedPT's pyramid exactly."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from conversion_helpers import TIMM_FULL_KEYS, TIMM_TINY_KEYS, max_abs_diff
from safetensors.torch import load_file
from transformers import AutoModel

from umedpt_hf import UMedPTModel, swinv2_t_config
from umedpt_hf.conversion import export_timm
from umedpt_hf.conversion.timm_export import timm_config, transformers_to_timm


def timm_importable() -> bool:
    if importlib.util.find_spec("timm") is None:
        return False
    try:
        import timm  # noqa: F401  (imports torchvision, which fails without a matching CUDA build)
    except Exception:  # any import-time failure means: no timm here
        return False
    return True


@pytest.fixture(scope="module")
def timm_folder(converted_standin, tmp_path_factory):
    return export_timm(converted_standin, tmp_path_factory.mktemp("timm") / "umedpt-standin-timm")


def test_tiny_export_has_timms_keys_and_shapes(timm_folder):
    expected = json.loads(TIMM_TINY_KEYS.read_text())["keys"]
    exported = {key: list(tensor.shape) for key, tensor in load_file(str(timm_folder / "model.safetensors")).items()}
    assert exported == expected


def test_full_size_swinv2_t_maps_onto_timms_swinv2_tiny_window8_256():
    reference = json.loads(TIMM_FULL_KEYS.read_text())
    expected = {key: shape for key, shape in reference["keys"].items() if not key.startswith("head.")}
    backbone = {key: tensor for key, tensor in UMedPTModel(swinv2_t_config()).backbone.state_dict().items()}
    mapped = transformers_to_timm(backbone, "swinv2_t")
    exported = {key: list(tensor.shape) for key, tensor in mapped.items()}
    assert exported == {key: shape for key, shape in expected.items() if not key.startswith("norm.")}
    config = timm_config(swinv2_t_config().backbone_config.to_dict(), {"do_normalize": True}, None)
    assert config["architecture"] == reference["model_name"] == "swinv2_tiny_window8_256"
    assert config["num_features"] == 768 and config["num_classes"] == 0
    assert config["pretrained_cfg"]["input_size"] == reference["pretrained_cfg"]["input_size"]
    assert config["pretrained_cfg"]["pool_size"] == reference["pretrained_cfg"]["pool_size"]
    assert config["pretrained_cfg"]["mean"] == reference["pretrained_cfg"]["mean"]


def test_config_reads_like_a_timm_hub_config(timm_folder):
    config = json.loads((timm_folder / "config.json").read_text())
    assert config["architecture"] == "swinv2_tiny_window8_256" and config["num_classes"] == 0
    args = config["model_args"]
    assert (args["embed_dim"], args["depths"], args["num_heads"]) == (16, [2, 2, 2, 2], [1, 2, 4, 8])
    assert (args["img_size"], args["window_size"]) == (256, 8)
    cfg = config["pretrained_cfg"]
    assert cfg["mean"] == [0.0, 0.0, 0.0] and cfg["std"] == [1.0, 1.0, 1.0]  # the authors' convention: no mean/std
    assert cfg["license"] == "umedpt-authors-noncommercial"
    assert (timm_folder / "README.md").read_text().startswith("---\nlibrary_name: timm\nlicense: other")


def test_qkv_is_fused_back_in_order(timm_folder, converted_standin):
    ours = load_file(str(converted_standin / "model.safetensors"))
    timm_state = load_file(str(timm_folder / "model.safetensors"))
    prefix = "backbone.encoder.layers.2.blocks.0.attention.self."
    fused = torch.cat([ours[prefix + "query.weight"], ours[prefix + "key.weight"], ours[prefix + "value.weight"]])
    assert torch.equal(timm_state["layers.2.blocks.0.attn.qkv.weight"], fused)
    assert torch.equal(timm_state["layers.2.blocks.0.attn.v_bias"], ours[prefix + "value.bias"])
    assert torch.equal(timm_state["layers.3.downsample.reduction.weight"],
                       ours["backbone.encoder.layers.2.downsample.reduction.weight"])  # fmt: skip


@pytest.mark.skipif(not timm_importable(), reason="timm does not import here (it needs a working torchvision)")
def test_timm_model_reproduces_the_pyramid_exactly(timm_folder, converted_standin, tv_io):
    import timm

    config = json.loads((timm_folder / "config.json").read_text())
    model = timm.create_model(config["architecture"], pretrained=False, num_classes=0, **config["model_args"])
    model.load_state_dict(load_file(str(timm_folder / "model.safetensors")), strict=True)
    models = [model.eval()]
    if "local-dir" in getattr(timm.models._factory, "_MODEL_SOURCES", ()):  # timm versions that read local folders
        models.append(timm.create_model(f"local-dir:{timm_folder}", pretrained=True).eval())
    ours = AutoModel.from_pretrained(converted_standin).eval()
    pixel_values = tv_io["input_256"]
    with torch.no_grad():
        expected = ours(pixel_values).feature_maps
        for timm_model in models:
            theirs = timm_model.forward_intermediates(pixel_values, intermediates_only=True)
            assert len(theirs) == 4
            assert max(max_abs_diff(a, b) for a, b in zip(theirs, expected)) <= 1e-5


def test_export_refuses_what_it_cannot_export(tmp_path, converted_standin):
    with pytest.raises(FileNotFoundError, match="not found"):
        export_timm(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "swin").mkdir()
    (tmp_path / "swin" / "config.json").write_text(json.dumps({"model_type": "swinv2"}))
    with pytest.raises(ValueError, match="not a UMedPT folder"):
        export_timm(tmp_path / "swin", tmp_path / "out")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "weights.bin").write_bytes(b"mine")
    with pytest.raises(ValueError, match="not empty"):
        export_timm(converted_standin, tmp_path / "taken")
    assert (tmp_path / "taken" / "weights.bin").read_bytes() == b"mine"
