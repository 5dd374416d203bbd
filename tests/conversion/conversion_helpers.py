"""Helpers of the conversion tests: the reference files (made with torchvision's own Swin-V2 code, copied from the
shared fixtures) and a guard that fails any import of torchvision, timm or the stand-in's module."""

from __future__ import annotations

import contextlib
import io
import sys
import zipfile
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


@contextlib.contextmanager
def imports_forbidden(names: tuple[str, ...] = FORBIDDEN_IMPORTS) -> Iterator[None]:
    """Inside the block, `import name` fails for each of `names` (None in sys.modules: Python's own way to make a
    module unimportable). A module another test already imported cannot be withdrawn; `test_umedpt_export.py`
    checks the strict case in a fresh interpreter."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in blocked:
            sys.modules.pop(name, None)


def max_abs_diff(first: torch.Tensor, second: torch.Tensor) -> float:
    assert first.shape == second.shape, (first.shape, second.shape)
    return float((first.double() - second.double()).abs().max())


class CreatesFile:
    """A pickle payload: unpickling it with plain pickle creates (truncates) the file at `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def saved(obj) -> bytes:
    """What `torch.save(obj)` writes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip like the authors' export (stored members)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def standin_members() -> dict[str, bytes]:
    with zipfile.ZipFile(STANDIN_ZIP) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
