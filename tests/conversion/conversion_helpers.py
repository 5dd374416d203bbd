"""Helpers of the conversion tests: the reference files (made with torchvision's own Swin-V2 code, copied from the
shared fixtures) and a guard that fails any import of torchvision, timm or the stand-in's module."""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

DATA = Path(__file__).parent / "data"
STANDIN_ZIP = DATA / "mmm_standin_tiny.pt.zip"
STANDIN_EXPECTED = DATA / "mmm_standin_tiny_expected.safetensors"
TV_TINY = DATA / "tv_swinv2_tiny.safetensors"
TV_TINY_IO = DATA / "tv_swinv2_tiny_io.safetensors"
TV_SWIN_V2_T_KEYS = DATA / "tv_swin_v2_t_keys.json"
TIMM_TINY_KEYS = DATA / "timm_swinv2_tiny_keys.json"
TIMM_FULL_KEYS = DATA / "timm_swinv2_tiny_window8_256_keys.json"
SIZES = (256, 224, 192)
FORBIDDEN_IMPORTS = ("torchvision", "mmm_standin_blocks", "timm")


class _ImportBlocker(importlib.abc.MetaPathFinder):
    """Fails the test if anything tries to import one of the named top-level modules."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.attempts: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            self.attempts.append(fullname)
            raise ImportError(f"test guard: importing {fullname} is forbidden here")
        return None


@contextlib.contextmanager
def imports_forbidden(names: tuple[str, ...] = FORBIDDEN_IMPORTS) -> Iterator[_ImportBlocker]:
    """No module of `names` may be imported inside the block. (Modules another test loaded earlier stay usable;
    `test_umedpt_export.py` checks the strict case in a fresh interpreter.)"""
    blocker = _ImportBlocker(names)
    sys.meta_path.insert(0, blocker)
    try:
        yield blocker
    finally:
        sys.meta_path.remove(blocker)
    assert not blocker.attempts, f"tried to import {blocker.attempts}"


def max_abs_diff(first: torch.Tensor, second: torch.Tensor) -> float:
    assert first.shape == second.shape, (first.shape, second.shape)
    return float((first.double() - second.double()).abs().max())
