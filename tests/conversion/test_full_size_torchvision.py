"""Full-size swin_v2_t with random weights, converted and compared with torchvision's own forward. Runs only where
torchvision imports (a GPU machine with a CUDA build of torch has it); the fixture tests cover this machine."""

from __future__ import annotations

import pytest
import torch
from conversion_helpers import max_abs_diff
from transformers import AutoModel

from umedpt_hf.conversion import convert_checkpoint


def torchvision_or_skip():
    try:
        import torchvision
    except Exception as error:  # not installed, or a build that does not match torch
        pytest.skip(f"torchvision does not import here ({type(error).__name__})")
    return torchvision


def torchvision_pyramid(model, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The authors' pyramid: outputs of features[1], [3], [5], [7] (NHWC -> NCHW), no final norm."""
    maps, hidden = [], pixel_values
    for index, block in enumerate(model.features):
        hidden = block(hidden)
        if index % 2 == 1:
            maps.append(hidden.permute(0, 3, 1, 2))
    return maps


@pytest.fixture(scope="module")
def swin_v2_t_pair(tmp_path_factory):
    """torchvision's swin_v2_t with random (perturbed) weights, and its conversion loaded with AutoModel."""
    torchvision = torchvision_or_skip()
    torch.manual_seed(0)
    reference = torchvision.models.swin_v2_t(weights=None).eval()
    with torch.no_grad():  # move norms, logit scales and key biases away from their init so that they matter
        for parameter in reference.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("swin_v2_t")
    torch.save(reference.state_dict(), folder / "swin_v2_t_random.pth")
    out = convert_checkpoint(folder / "swin_v2_t_random.pth", folder / "converted").path
    return reference, AutoModel.from_pretrained(out).eval()


def test_full_size_parameter_count(swin_v2_t_pair):
    _, model = swin_v2_t_pair
    assert sum(parameter.numel() for parameter in model.backbone.parameters()) == 27_576_618


@pytest.mark.parametrize("side", [160, 192, 224, 256])
def test_full_size_swin_v2_t_matches_torchvision(swin_v2_t_pair, side):
    reference, model = swin_v2_t_pair
    pixel_values = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(side))
    with torch.no_grad():
        expected = torchvision_pyramid(reference, pixel_values)
        produced = model(pixel_values).feature_maps
    diffs = [max_abs_diff(ours, theirs) for ours, theirs in zip(produced, expected)]
    assert max(diffs) <= 1e-4, diffs
