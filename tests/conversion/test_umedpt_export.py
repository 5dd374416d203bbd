"""The authors' export: the stand-in converts bit-identically without torchvision or its own module; damaged,
malicious and encoder-less zips are refused with one line; unknown members are listed, never dropped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from conversion_helpers import (
    STANDIN_EXPECTED,
    STANDIN_ZIP,
    CreatesFile,
    imports_forbidden,
    saved,
    standin_members,
    write_zip,
)
from safetensors.torch import load_file
from torch import nn
from umedpt_test_utils import run_python_script

from umedpt_hf.conversion.safe_pickle import ModuleTree
from umedpt_hf.conversion.sources import read_source
from umedpt_hf.conversion.umedpt_export import encoder_tensors, read_export

SRC = Path(__file__).resolve().parents[2] / "src"

FRESH_INTERPRETER = textwrap.dedent(
    """
    import importlib.util, sys
    from pathlib import Path

    FORBIDDEN = ("torchvision", "mmm_standin_blocks", "timm")
    for name in FORBIDDEN:
        sys.modules[name] = None  # `import name` now fails, whatever is installed
        assert importlib.util.find_spec(name) is None
    import torch
    from safetensors.torch import load_file
    from umedpt_hf.conversion import convert_checkpoint
    from umedpt_hf.conversion.umedpt_export import read_export

    export, expected_file, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    expected = load_file(expected_file)
    blocks = read_export(export).blocks
    found = {f"{block}.{key}": tensor for block, tree in blocks.items() for key, tensor in tree.tensors.items()}
    assert found.keys() == expected.keys(), sorted(found.keys() ^ expected.keys())
    for key, tensor in expected.items():
        assert found[key].dtype == tensor.dtype and torch.equal(found[key], tensor), key
    convert_checkpoint(export, out)
    print("bit-identical", len(expected))
    """
)


def test_standin_reads_bit_identically_in_a_fresh_interpreter_without_torchvision(tmp_path):
    result = run_python_script(
        FRESH_INTERPRETER,
        STANDIN_ZIP,
        STANDIN_EXPECTED,
        tmp_path / "out",
        folder=tmp_path,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bit-identical 161" in result.stdout
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_converted_weights_are_the_expected_tensors_mapped(converted_standin):
    expected = load_file(str(STANDIN_EXPECTED))
    weights = load_file(str(converted_standin / "model.safetensors"))
    tv = "encoder.model.wrapped_model.features."
    assert torch.equal(weights["backbone.embeddings.patch_embeddings.projection.weight"], expected[tv + "0.0.weight"])
    assert torch.equal(weights["backbone.encoder.layers.3.blocks.1.output.dense.bias"], expected[tv + "7.1.mlp.3.bias"])
    qkv = expected[tv + "3.0.attn.qkv.weight"]
    assert torch.equal(weights["backbone.encoder.layers.1.blocks.0.attention.self.key.weight"], qkv[32:64])
    assert torch.equal(weights["squeezer.norm.weight"], expected["squeezer.norm.weight"])
    assert torch.equal(weights["squeezer.norm.bias"], expected["squeezer.norm.bias"])


def test_a_zip_whose_pickle_would_run_code_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    members = standin_members()
    members["squeezer.pt"] = saved({"norm.weight": torch.ones(2), "hook": CreatesFile(str(target))})
    export = write_zip(tmp_path / "encoder-evil.pt.zip", members)
    with imports_forbidden(), pytest.raises(ValueError) as error:
        read_source(export)
    message = str(error.value)
    assert "open" in message and "squeezer.pt" in message and "\n" not in message
    assert not target.exists()


def test_a_zip_without_an_encoder_is_refused(tmp_path):
    export = write_zip(tmp_path / "squeezer-only.pt.zip", {"squeezer.pt": standin_members()["squeezer.pt"]})
    with pytest.raises(ValueError, match=r"no encoder\.pt member \(found: squeezer\)"):
        read_source(export)


def test_a_truncated_zip_is_refused(tmp_path):
    data = STANDIN_ZIP.read_bytes()
    export = tmp_path / "encoder-1.0.4.pt.zip"
    export.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable zip"):
        read_source(export)


def test_a_truncated_member_is_refused(tmp_path):
    members = standin_members()
    members["encoder.pt"] = members["encoder.pt"][:100_000]
    export = write_zip(tmp_path / "encoder-cut.pt.zip", members)
    with pytest.raises(ValueError, match=r"encoder\.pt.*(damaged|truncated)"):
        read_source(export)


def test_unknown_members_and_blocks_are_listed_not_dropped(tmp_path):
    members = standin_members()
    members["decoder.pt"] = saved(nn.Sequential(nn.Conv2d(128, 16, 1), nn.GroupNorm(1, 16)))
    members["LICENSE.txt"] = b"non-commercial research licence"
    source = read_source(write_zip(tmp_path / "encoder-more.pt.zip", members))
    listed = {item["name"]: item for item in source.not_converted}
    assert listed["decoder.pt"]["tensors"] == 4 and listed["decoder.pt"]["parameters"] == 128 * 16 + 16 + 32
    assert "LICENSE.txt" in listed
    assert "encoder.model.wrapped_model.norm.weight" in listed


def test_tensors_outside_the_swin_model_are_refused(tv_tiny):
    tree = ModuleTree(tensors={**{f"model.wrapped_model.{k}": v for k, v in tv_tiny.items()}, "remapper.0.weight": 1})
    with pytest.raises(ValueError, match=r"remapper\.0\.weight.*would change the pyramid"):
        encoder_tensors(tree, "encoder.pt")


def test_read_export_lists_the_stood_in_globals():
    contents = read_export(STANDIN_ZIP)
    assert set(contents.blocks) == {"encoder", "squeezer"}
    assert "torchvision.models.swin_transformer.SwinTransformer" in contents.stood_in
    assert "mmm_standin_blocks.Squeezer" in contents.stood_in
