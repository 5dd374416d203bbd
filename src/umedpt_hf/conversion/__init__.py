"""Bring foreign encoder checkpoints into UMedPT, safely and exactly (never executing a pickle):

- `convert_checkpoint(src, out_dir)`: the authors' export, a torchvision Swin-V2 state_dict or a transformers
  Swin-V2 folder -> a UMedPT folder (safetensors, config with auto_map, processor, model card, conversion report).
- `init_encoder_from(model, source)`: load such an encoder into a UMedPT model before (pre)training.
- `export_timm(model_dir, out_dir)`: a UMedPT folder's Swin-V2 encoder in timm's `SwinTransformerV2` layout.

The model files never import this package; its names load lazily so that importing one does not pull the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "convert_checkpoint": "convert",
    "ConversionResult": "convert",
    "init_encoder_from": "init_from",
    "export_timm": "timm_export",
    "read_source": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
