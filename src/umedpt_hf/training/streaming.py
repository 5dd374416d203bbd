"""Tasks streamed as `datasets.IterableDataset` (from the Hub or from disk): databases larger than the disk.

Epoch `e` iterates the dataset after `set_epoch(e)` (a shuffled dataset reshuffles per epoch from its seed); each
`batch_size` consecutive examples form a batch, collated in the main process with the augmentation seeded from
`(seed, task, position)`. Exact resume: without a shuffle buffer the dataset's own `state_dict()` is saved and
restored (no data is re-read); with one (its content cannot be saved) the epoch is iterated again from its start,
in the same order, and the examples already used are skipped. Under several processes each rank reads its part
(`datasets.distributed.split_dataset_by_node`).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .streams import TaskBatchStream


def is_streaming_dataset(dataset: Any) -> bool:
    try:
        from datasets import IterableDataset
    except ImportError:
        return False
    return isinstance(dataset, IterableDataset)


class StreamingTaskStream(TaskBatchStream):
    """Batches of one task from a `datasets.IterableDataset`.

    Args:
        dataset: The task's split as an IterableDataset (e.g. `load_dataset(..., streaming=True)` or
            `Dataset.to_iterable_dataset(num_shards=...)`), optionally `.shuffle(seed=..., buffer_size=...)`.
        collate_fn: Examples -> batch (a `TaskCollator`; its `set_seed` is called with the batch's seed).
        batch_size: Examples per batch.
        num_examples: Size of the split when known (for epochs and the size-proportional sampler).
    """

    def __init__(
        self,
        dataset: Any,
        collate_fn: Callable[[list[Any]], Any],
        batch_size: int,
        *,
        key: str,
        seed: int = 0,
        drop_last: bool = True,
        num_examples: int | None = None,
        process_index: int = 0,
        num_processes: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"task {key!r}: batch_size must be >= 1, got {batch_size}")
        if num_processes > 1:
            from datasets.distributed import split_dataset_by_node

            dataset = split_dataset_by_node(dataset, rank=process_index, world_size=num_processes)
        self.dataset, self.collate_fn, self.batch_size = dataset, collate_fn, batch_size
        self.key, self.seed, self.drop_last = key, seed, drop_last
        known = num_examples if num_examples is not None else _known_size(dataset)
        self.num_examples = max(1, known or 1)
        self.batches_per_epoch = max(1, (known or batch_size) // batch_size // max(1, num_processes))
        self.epoch, self.used_in_epoch = 0, 0  # examples of the current epoch already in batches
        self._stream_id = zlib.crc32(key.encode("utf-8"))
        self._iterator: Iterator[Any] | None = None
        self._exact_state = hasattr(dataset, "state_dict") and not _has_shuffle_buffer(dataset)

    def next_batch(self) -> Any:
        examples = self._take(self.batch_size)
        if len(examples) < self.batch_size and (self.drop_last or not examples):  # the epoch is used up
            self._new_epoch()
            examples = self._take(self.batch_size)
            if len(examples) < self.batch_size and (self.drop_last or not examples):
                raise ValueError(
                    f"task {self.key!r}: the streamed dataset has fewer than batch_size={self.batch_size} examples "
                    "per epoch on this rank"
                )
        position = self.consumed
        self.consumed += 1
        self._reseed(position)
        return self.collate_fn(examples)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"consumed": self.consumed, "epoch": self.epoch, "used_in_epoch": self.used_in_epoch}
        if self._exact_state and self._iterator is not None:
            state["dataset"] = self.dataset.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consumed = int(state["consumed"])
        self.epoch, self.used_in_epoch = int(state.get("epoch", 0)), int(state.get("used_in_epoch", 0))
        self.dataset.set_epoch(self.epoch)
        if "dataset" in state and self._exact_state:
            self.dataset.load_state_dict(state["dataset"])
            self._iterator = iter(self.dataset)
        else:  # deterministic re-iteration of this epoch, skipping what was used
            self._iterator = itertools.islice(iter(self.dataset), self.used_in_epoch, None)

    def _take(self, count: int) -> list[Any]:
        if self._iterator is None:
            self.dataset.set_epoch(self.epoch)
            self._iterator = iter(self.dataset)
        examples = list(itertools.islice(self._iterator, count))
        self.used_in_epoch += len(examples)
        return examples

    def _new_epoch(self) -> None:
        self.epoch += 1
        self.used_in_epoch = 0
        self._iterator = None

    def _reseed(self, position: int) -> None:
        target = self.collate_fn if callable(getattr(self.collate_fn, "set_seed", None)) else None
        if target is not None:
            state = np.random.SeedSequence([self.seed, self._stream_id, position]).generate_state(1)[0]
            target.set_seed(int(state) & 0x7FFFFFFF)


def _has_shuffle_buffer(dataset: Any) -> bool:
    """True when the dataset shuffles through a buffer, or when that cannot be told (then resume re-iterates)."""
    pending = [getattr(dataset, "_ex_iterable", None)]
    if pending[0] is None:
        return True
    while pending:
        node = pending.pop()
        if node is None:
            continue
        if "Shuffled" in type(node).__name__:
            return True
        pending.append(getattr(node, "ex_iterable", None))
        pending.extend(getattr(node, "ex_iterables", None) or [])
    return False


def _known_size(dataset: Any) -> int | None:
    info = getattr(dataset, "info", None)
    splits = getattr(info, "splits", None) or {}
    split = getattr(dataset, "split", None)
    if split is not None and split in splits and splits[split].num_examples:
        return int(splits[split].num_examples)
    return None
