"""Fixtures of the conversion tests: the reference tensors and converted folders shared by several tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conversion_helpers import STANDIN_ZIP, TV_TINY, TV_TINY_IO, imports_forbidden
from safetensors.torch import load_file


@pytest.fixture(scope="session")
def tv_tiny() -> dict[str, torch.Tensor]:
    return load_file(str(TV_TINY))


@pytest.fixture(scope="session")
def tv_io() -> dict[str, torch.Tensor]:
    return load_file(str(TV_TINY_IO))


@pytest.fixture(scope="session")
def converted_standin(tmp_path_factory) -> Path:
    """The stand-in export converted once (read-only for the tests that share it)."""
    from umedpt_hf.conversion import convert_checkpoint

    out = tmp_path_factory.mktemp("converted") / "umedpt-standin"
    with imports_forbidden():
        convert_checkpoint(STANDIN_ZIP, out)
    return out


@pytest.fixture(scope="session")
def converted_tv(tmp_path_factory) -> Path:
    """The tiny torchvision state_dict converted once."""
    from umedpt_hf.conversion import convert_checkpoint

    out = tmp_path_factory.mktemp("converted") / "umedpt-tv-tiny"
    convert_checkpoint(TV_TINY, out)
    return out
