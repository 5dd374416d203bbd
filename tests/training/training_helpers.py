"""Small synthetic multi-task data in the model's label formats, for the training tests (importable by scripts)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from umedpt_hf.modeling_umedpt import UMedPTForMultiTask
from umedpt_hf.presets import tiny_config

TASK_SPECS = {
    "xray_cls": {"type": "classification", "labels": ["normal", "effusion", "nodule"], "modality": "xray"},
    "ct_seg": {"type": "segmentation", "labels": ["background", "bone"], "modality": "ct"},
    "cell_det": {"type": "detection", "labels": ["nucleus", "mitosis"], "modality": "microscopy"},
    "histo_multi": {"type": "multilabel", "labels": ["tumour", "stroma", "fat"], "modality": "histology"},
}


class SyntheticTaskDataset(Dataset):
    """`n` examples {"pixel_values", "labels"} of one task type, generated from a seed (same data every time)."""

    def __init__(self, spec: dict, n: int, size: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        self.spec, self.n, self.size, self.seed, self.dtype = spec, n, size, seed, dtype

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(self.seed * 10_000 + index)
        image = torch.randn(3, self.size, self.size, generator=g)
        kind, num = self.spec["type"], len(self.spec["labels"])
        if kind == "classification":
            label: Any = torch.randint(0, num, (), generator=g)
        elif kind == "multilabel":
            label = (torch.rand(num, generator=g) > 0.5).float()
        elif kind == "segmentation":
            label = (image[0] > 0.3).long()
            label[:2] = 255  # an ignored band
        else:
            count = int(torch.randint(0, 3, (), generator=g))
            centres = torch.rand(count, 2, generator=g) * 0.5 + 0.25
            sides = torch.rand(count, 2, generator=g) * 0.3 + 0.1
            label = {
                "class_labels": torch.randint(0, num, (count,), generator=g),
                "boxes": torch.cat([centres, sides], dim=1),
            }
        if kind == "multilabel":
            label = label.to(self.dtype)
        elif kind == "detection":
            label["boxes"] = label["boxes"].to(self.dtype)
        return {"pixel_values": image.to(self.dtype), "labels": label}


def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; stack tensor labels, keep detection targets as a list of dicts."""
    labels = [example["labels"] for example in examples]
    return {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": labels if isinstance(labels[0], dict) else torch.stack(labels),
    }


def make_loaders(
    names: list[str],
    sizes: dict[str, int] | None = None,
    batch_size: int = 4,
    image_size: int = 32,
    shuffle: bool = True,
    dtype: torch.dtype = torch.float32,
) -> dict[str, DataLoader]:
    sizes = sizes or {}
    return {
        name: DataLoader(
            SyntheticTaskDataset(TASK_SPECS[name], sizes.get(name, 12), image_size, seed=i + 1, dtype=dtype),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate,
        )
        for i, name in enumerate(names)
    }


def make_model(names: list[str], seed: int = 0, dtype: torch.dtype = torch.float32) -> UMedPTForMultiTask:
    torch.manual_seed(seed)
    return UMedPTForMultiTask(tiny_config(tasks={name: TASK_SPECS[name] for name in names})).to(dtype)


def parameters_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)
