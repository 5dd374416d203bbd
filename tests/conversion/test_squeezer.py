"""The authors' squeezer (avgpool -> optional 1×1 conv -> GroupNorm(1, D) -> GELU) becomes UMedPT's squeezer exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional

from umedpt_hf.conversion.safe_pickle import ModuleTree
from umedpt_hf.conversion.squeezer import convert_squeezer

GROUP_NORM = "torch.nn.modules.normalization.GroupNorm"


def authors_squeezer(channels: int, width: int | None, bias: bool = True) -> tuple[nn.Module, ModuleTree]:
    """A reference squeezer built from torch modules, and the ModuleTree our reader makes of its pickle."""
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, width, 1, bias=bias) if width else None
    norm = nn.GroupNorm(1, width or channels)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)

    class Reference(nn.Module):
        def forward(self, deepest_map):
            pooled = functional.adaptive_avg_pool2d(deepest_map, 1)
            return functional.gelu(norm(conv(pooled) if conv is not None else pooled)).flatten(1)

    tensors = {"norm.weight": norm.weight.detach(), "norm.bias": norm.bias.detach()}
    if conv is not None:
        tensors["conv.weight"] = conv.weight.detach()
        if bias:
            tensors["conv.bias"] = conv.bias.detach()
    tree = ModuleTree(
        tensors=tensors,
        classes={"": "mmm.blocks.Squeezer", "norm": GROUP_NORM, "activation": "torch.nn.modules.activation.GELU"},
        attributes={"norm": {"num_groups": 1, "eps": 1e-5}, "activation": {"approximate": "none"}},
    )
    return Reference(), tree


def ours(tensors: dict[str, torch.Tensor], deepest_map: torch.Tensor) -> torch.Tensor:
    """UMedPT's squeezer on the converted tensors: avgpool -> projection -> LayerNorm -> GELU."""
    vector = deepest_map.mean(dim=(-2, -1))
    if "projection.weight" in tensors:
        vector = functional.linear(vector, tensors["projection.weight"], tensors["projection.bias"])
    vector = functional.layer_norm(vector, vector.shape[-1:], tensors["norm.weight"], tensors["norm.bias"], 1e-5)
    return functional.gelu(vector)


@pytest.mark.parametrize(("width", "bias"), [(None, True), (48, True), (48, False)])
def test_groupnorm_of_the_pooled_vector_is_our_layernorm(width, bias):
    reference, tree = authors_squeezer(32, width, bias)
    tensors, projection = convert_squeezer(tree, 32, "squeezer.pt")
    assert projection == width
    if width:
        assert tensors["projection.weight"].shape == (width, 32)
        assert torch.equal(tensors["projection.bias"], tree.tensors.get("conv.bias", torch.zeros(width)))
    deepest_map = torch.randn(3, 32, 5, 5)
    torch.testing.assert_close(ours(tensors, deepest_map), reference(deepest_map), rtol=0, atol=1e-5)


def test_the_model_squeezer_with_a_projection(tmp_path):
    from umedpt_hf import UMedPTConfig, UMedPTModel, tiny_config

    if not hasattr(UMedPTConfig, "squeezer_projection_dim"):
        pytest.skip("UMedPTConfig has no squeezer_projection_dim yet (added on the model branch)")
    reference, tree = authors_squeezer(256, 48)
    tensors, projection = convert_squeezer(tree, 256, "squeezer.pt")
    model = UMedPTModel(tiny_config(squeezer_projection_dim=projection)).eval()
    assert model.config.hidden_size == 48
    model.squeezer.load_state_dict(tensors, strict=True)
    deepest_map = torch.randn(2, 256, 2, 2)
    torch.testing.assert_close(model.squeezer(deepest_map), reference(deepest_map), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda t: t.attributes["norm"].update(num_groups=4), "4 groups"),
        (lambda t: t.attributes["norm"].update(eps=1e-6), "eps 1e-06"),
        (lambda t: t.attributes["activation"].update(approximate="tanh"), "approximate='tanh'"),
        (lambda t: t.classes.update(norm="torch.nn.modules.batchnorm.BatchNorm1d"), "BatchNorm1d"),
        (lambda t: t.tensors.update({"gate.weight": torch.ones(1)}), r"gate\.weight"),
        (lambda t: t.tensors.update({"conv.weight": torch.ones(8, 16, 1, 1)}), "1×1 conv from the encoder's 32"),
    ],
)
def test_what_does_not_fit_is_refused(change, phrase):
    _, tree = authors_squeezer(32, None)
    change(tree)
    with pytest.raises(ValueError, match=phrase):
        convert_squeezer(tree, 32, "squeezer.pt")


def test_an_export_whose_squeezer_projects_converts_exactly(tmp_path, tv_io):
    """Where the model has `squeezer_projection_dim`, the converted image vector is the authors' projected one;
    before that, the conversion says which field is missing (it never drops the projection)."""
    from conversion_helpers import saved, standin_members, write_zip
    from transformers import AutoModel

    from umedpt_hf import UMedPTConfig
    from umedpt_hf.conversion import convert_checkpoint

    torch.manual_seed(0)
    conv, norm = nn.Conv2d(128, 48, 1), nn.GroupNorm(1, 48)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    members = standin_members()
    members["squeezer.pt"] = saved(nn.ModuleDict({"pool": nn.AdaptiveAvgPool2d(1), "conv": conv, "norm": norm,
                                                  "activation": nn.GELU()}))  # fmt: skip
    export = write_zip(tmp_path / "encoder-projecting.pt.zip", members)
    if not hasattr(UMedPTConfig, "squeezer_projection_dim"):
        with pytest.raises(ValueError, match=r"projects to 48 channels.*squeezer_projection_dim"):
            convert_checkpoint(export, tmp_path / "out")
        return
    out = convert_checkpoint(export, tmp_path / "out")
    assert out.report["architecture"]["squeezer_projection_dim"] == 48 and out.report["model"]["hidden_size"] == 48
    model = AutoModel.from_pretrained(out.path).eval()
    with torch.no_grad():
        pooled = model(tv_io["input_224"]).pooler_output
        reference = functional.gelu(norm(conv(tv_io["stage4_224"].mean(dim=(-2, -1), keepdim=True)))).flatten(1)
    torch.testing.assert_close(pooled, reference, rtol=0, atol=1e-5)
