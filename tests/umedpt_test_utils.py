"""Helpers shared by tests (a uniquely named module: each test folder has its own conftest.py)."""

from __future__ import annotations

import torch
from transformers import ConvNextConfig, Dinov2Config, ResNetConfig, SwinConfig, Swinv2Config

# tiny configs of every backbone type the README advertises (no stochastic depth: runs are deterministic)
BACKBONES = {
    "swin": SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0),
    "swinv2": Swinv2Config(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0
    ),
    "convnext": ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
    "dinov2": Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=64, patch_size=8
    ),
    "resnet": ResNetConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], embedding_size=8),
}

# the smallest decoders and heads that keep every task type working (for tests over other backbones)
SMALL_DECODERS = {
    "pixel_decoder_channels": [16, 8],
    "pixel_embedding_dim": 8,
    "fpn_channels": 16,
    "detection_tower_depth": 1,
    "classifier_dropout": 0.0,
}


def make_task_batch(task_type: str, num_labels: int, batch_size: int = 2, size: int = 64, seed: int = 0) -> dict:
    """A random batch in the model's label format for one task type."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    if task_type == "classification":
        labels = torch.randint(0, num_labels, (batch_size,), generator=generator)
    elif task_type == "multilabel":
        labels = torch.randint(0, 2, (batch_size, num_labels), generator=generator).float()
    elif task_type == "segmentation":
        labels = torch.randint(0, num_labels, (batch_size, size, size), generator=generator)
    else:
        labels = [
            {
                "class_labels": torch.zeros(index, dtype=torch.long),
                "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.25], [0.7, 0.6, 0.1, 0.1]])[:index],
            }
            for index in range(batch_size)
        ]
    return {"pixel_values": pixel_values, "labels": labels}


def run_python_script(script: str, *args: str, folder, without_package: bool = False, env: dict | None = None):
    """Run `script` (Python source) in a fresh interpreter with `args`; returns the CompletedProcess.

    `without_package=True` runs with `-S` (no site-packages .pth hooks, so no editable install of umedpt_hf) and puts
    back only the venv's site-packages: remote code must work there without the package."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = Path(folder) / "script.py"
    path.write_text(script)
    if without_package:
        site_packages = [p for p in sys.path if p.endswith("site-packages")]
        base = {"PYTHONPATH": ":".join(site_packages), "HF_HUB_OFFLINE": "1", "HF_HOME": str(Path(folder) / "hf")}
    else:
        base = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, *(["-S"] if without_package else []), str(path), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**base, **(env or {})}, timeout=300)
