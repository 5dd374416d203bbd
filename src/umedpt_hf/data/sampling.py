"""Keys for augmentation that do not depend on DataLoader workers: samplers that yield ``epoch * N + row`` and a
dataset view that maps a key back to its row and attaches the key to the example (`collate.AUGMENT_KEY`).

Each example's augmentation is then seeded from (seed, key): the same batches whatever ``num_workers`` is, a new
augmentation every epoch, and resumable from (seed, epoch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, RandomSampler, SequentialSampler

from .collate import AUGMENT_KEY


class KeyedDataset(Dataset):
    """A map-style view of a `datasets.Dataset` that accepts keys ``epoch * N + row`` and tags each example with
    its key; plain row indices (< N) work too. Other attributes are those of the wrapped dataset."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: int) -> dict[str, Any]:
        return {**self.dataset[int(key) % len(self.dataset)], AUGMENT_KEY: int(key)}

    def __getitems__(self, keys: list[int]) -> list[dict[str, Any]]:
        rows = [int(key) % len(self.dataset) for key in keys]
        examples = self.dataset.__getitems__(rows) if hasattr(self.dataset, "__getitems__") else None
        if examples is None:
            examples = [self.dataset[row] for row in rows]
        return [{**example, AUGMENT_KEY: int(key)} for example, key in zip(examples, keys)]


class _EpochKeys:
    """Counts epochs (one per ``__iter__``); `set_epoch` sets the next one, as for `DistributedSampler`."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _next_epoch(self) -> int:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return epoch


class KeyedRandomSampler(_EpochKeys, RandomSampler):
    """A seeded permutation of the rows per epoch, yielded as keys ``epoch * N + row``."""

    def __init__(self, data_source: Any, seed: int = 0) -> None:
        RandomSampler.__init__(self, data_source)
        self.seed, self.epoch = int(seed), 0

    def __iter__(self) -> Iterator[int]:
        size, epoch = len(self.data_source), self._next_epoch()
        order = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        return iter((epoch * size + order).tolist())


class KeyedSequentialSampler(_EpochKeys, SequentialSampler):
    """The rows in order, yielded as keys ``epoch * N + row``."""

    def __init__(self, data_source: Any) -> None:
        SequentialSampler.__init__(self, data_source)
        self.epoch = 0

    def __iter__(self) -> Iterator[int]:
        size, epoch = len(self.data_source), self._next_epoch()
        return iter(range(epoch * size, (epoch + 1) * size))
