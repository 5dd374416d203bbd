"""Endless, resumable streams of one task's batches.

The data order is a pure function of `(seed, task, position)`: batch `c` of a task is batch `c mod n` of the
permutation of epoch `c // n` (n = batches per epoch on this rank). A stream's whole state is the number of batches it
has handed out, so a resumed run continues exactly where the interrupted one stopped, without replaying data.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, RandomSampler


class TaskBatchStream:
    """Base class: `next_batch()` forever; `state_dict()` / `load_state_dict()` hold the position."""

    consumed: int = 0
    batches_per_epoch: int = 1
    num_examples: int = 1

    def next_batch(self) -> Any:
        raise NotImplementedError

    def state_dict(self) -> dict[str, int]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["consumed"])


class IndexedTaskStream(TaskBatchStream):
    """Batches of a map-style dataset (`len` + integer indexing), sharded over ranks.

    Rank `r` of `R` takes global batches `r, R + r, 2R + r, ...` of each epoch, so every rank makes the same number of
    draws per epoch (a task with fewer batches than ranks is shared by wrapping around). `num_workers` is only a hint
    for the trainer's shared worker pool (the stream itself collates in the calling process).
    """

    def __init__(
        self,
        dataset: Any,
        collate_fn: Callable[[list[Any]], Any],
        batch_size: int,
        *,
        key: str,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        num_workers: int = 0,
        process_index: int = 0,
        num_processes: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"task {key!r}: batch_size must be >= 1, got {batch_size}")
        self.num_examples = len(dataset)
        if self.num_examples == 0:
            raise ValueError(f"task {key!r}: the dataset is empty")
        self.dataset, self.collate_fn, self.batch_size = dataset, collate_fn, batch_size
        self.key, self.seed, self.shuffle, self.num_workers = key, seed, shuffle, num_workers
        self.process_index, self.num_processes = process_index, num_processes
        full_batches = self.num_examples // batch_size
        partial = math.ceil(self.num_examples / batch_size)
        self.global_batches = full_batches if drop_last and full_batches > 0 else partial
        self.batches_per_epoch = max(1, self.global_batches // num_processes)
        self._stream_id = zlib.crc32(key.encode("utf-8"))

    def indices(self, position: int) -> list[int]:
        """Dataset indices of this rank's batch number `position`."""
        epoch, k = divmod(position, self.batches_per_epoch)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self._stream_id, epoch]).permutation(self.num_examples)
        else:
            order = np.arange(self.num_examples)
        g = (k * self.num_processes + self.process_index) % self.global_batches
        return [int(i) for i in order[g * self.batch_size : (g + 1) * self.batch_size]]

    def next_batch(self) -> Any:
        position = self.consumed
        self.consumed += 1
        return self.make_batch(position)

    def make_batch(self, position: int) -> Any:
        """Batch number `position` of this rank: a pure function of `(seed, task, position)`, in any process.

        The trainer's worker pool calls this in DataLoader workers; without workers the stream calls it itself, so the
        batches (augmentation included) do not depend on the number of workers.
        """
        self._reseed_augmentation(position)
        return self.collate_fn([self.dataset[i] for i in self.indices(position)])

    def _reseed_augmentation(self, position: int) -> None:
        """Seed a random collate function (e.g. `TaskCollator(augment=True)`) from `(seed, task, position)`.

        Its augmentation then depends only on the batch's position, so resumed runs augment like uninterrupted ones.
        Collate functions expose this with `set_seed(int)` or an `augmentation.set_seed(int)`; others are left alone.
        """
        target = self.collate_fn if callable(getattr(self.collate_fn, "set_seed", None)) else None
        augmentation = getattr(self.collate_fn, "augmentation", None)
        if target is None and callable(getattr(augmentation, "set_seed", None)):
            target = augmentation
        if target is not None:
            state = np.random.SeedSequence([self.seed, self._stream_id, position]).generate_state(1)[0]
            target.set_seed(int(state) & 0x7FFFFFFF)


class IterableTaskStream(TaskBatchStream):
    """Cycles any re-iterable source of ready batches; resuming fast-forwards over the batches already used.

    Exact resumption needs the source to iterate in the same order every time; sharding over ranks is the caller's job.
    """

    def __init__(self, batches: Iterable[Any], *, key: str) -> None:
        self.batches, self.key = batches, key
        self.batches_per_epoch = len(batches) if hasattr(batches, "__len__") else 1  # type: ignore[arg-type]
        dataset = getattr(batches, "dataset", None)
        self.num_examples = len(dataset) if hasattr(dataset, "__len__") else self.batches_per_epoch
        if self.batches_per_epoch == 0:
            raise ValueError(f"task {key!r}: the batch source is empty")
        self._iterator: Iterator[Any] = iter(batches)

    def next_batch(self) -> Any:
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.batches)
            try:
                batch = next(self._iterator)
            except StopIteration:
                raise ValueError(f"task {self.key!r}: the batch source yielded no batch") from None
        self.consumed += 1
        return batch

    def load_state_dict(self, state: dict[str, int]) -> None:
        target = int(state["consumed"])
        self._iterator, self.consumed = iter(self.batches), 0
        for _ in range(target):
            self.next_batch()


def as_task_stream(
    source: Any, *, key: str, seed: int = 0, process_index: int = 0, num_processes: int = 1
) -> TaskBatchStream:
    """Turn what a user hands the trainer for one task into a resumable stream.

    A `TaskBatchStream` is used as is; a `DataLoader` over a map-style dataset becomes an `IndexedTaskStream` with
    the same dataset, batch size, collate function, shuffling and workers (sharded over ranks); a `DataLoader` over a
    `datasets.IterableDataset` becomes a `StreamingTaskStream` (exactly resumable, sharded over ranks); anything else
    iterable is cycled by an `IterableTaskStream`.
    """
    from .streaming import StreamingTaskStream, is_streaming_dataset

    if isinstance(source, TaskBatchStream):
        return source
    if isinstance(source, DataLoader) and is_streaming_dataset(source.dataset) and source.batch_size is not None:
        return StreamingTaskStream(
            source.dataset,
            source.collate_fn,
            source.batch_size,
            key=key,
            seed=seed,
            drop_last=source.drop_last,
            process_index=process_index,
            num_processes=num_processes,
        )
    if (
        isinstance(source, DataLoader)
        and not isinstance(source.dataset, IterableDataset)
        and source.batch_size is not None
        and hasattr(source.dataset, "__len__")
    ):
        return IndexedTaskStream(
            source.dataset,
            source.collate_fn,
            source.batch_size,
            key=key,
            seed=seed,
            shuffle=isinstance(source.sampler, RandomSampler),
            drop_last=source.drop_last,
            num_workers=source.num_workers,
            process_index=process_index,
            num_processes=num_processes,
        )
    if isinstance(source, Iterable):
        if num_processes > 1:
            warnings.warn(
                f"task {key!r}: a plain iterable is not sharded over the {num_processes} ranks; pass a DataLoader "
                "over a map-style dataset to let the trainer shard it",
                stacklevel=2,
            )
        return IterableTaskStream(source, key=key)
    raise TypeError(f"task {key!r}: expected a DataLoader, a TaskBatchStream or batches, not {type(source)}")


def task_sizes(streams: dict[str, TaskBatchStream], names: Sequence[str]) -> dict[str, int]:
    """Number of examples of each task (for the size-proportional sampler)."""
    return {name: streams[name].num_examples for name in names}
