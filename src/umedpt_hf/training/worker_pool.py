"""One pool of DataLoader workers for all tasks: its sampler is the loop's schedule of batches.

The pool's dataset item `("train", task, position)` is "batch `position` of that task", made by
`IndexedTaskStream.make_batch` (indices and augmentation seeded from `(seed, task, position)`), and
`("eval", task, i)` is validation batch `i`. The sampler yields these keys in the order the loop consumes them
(`schedule`), so the batches are prefetched by `num_workers` processes in total (the budget does not grow with the
number of tasks), handed over in order, pinned when a GPU trains, and identical whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from .streams import IndexedTaskStream

BatchKey = tuple[str, str, int]


class ScheduledBatches(Dataset):
    """Map-style dataset over batch keys: `(kind, task, number) -> (key, batch)`."""

    def __init__(self, makers: Mapping[str, Mapping[str, Callable[[int], Any]]]) -> None:
        self.makers = {kind: dict(tasks) for kind, tasks in makers.items()}

    def __getitem__(self, key: BatchKey) -> tuple[BatchKey, Any]:
        kind, task, number = key
        return key, self.makers[kind][task](number)

    def __len__(self) -> int:  # keys are not integers; the sampler decides what is fetched
        raise TypeError("ScheduledBatches has no length: it is driven by a schedule")


class _ScheduleSampler(Sampler):
    def __init__(self, keys: Iterable[BatchKey]) -> None:
        self.keys = keys

    def __iter__(self) -> Iterator[BatchKey]:
        return iter(self.keys)


class WorkerPool:
    """Batches of the pooled tasks (and of the validation sets), prefetched by one set of worker processes.

    Args:
        streams: The map-style task streams whose batches the workers make.
        evaluation: kind "eval" batch makers (task -> number -> batch), or empty.
        num_workers: Worker processes in total (0: make every batch in the main process, on demand).
        prefetch_factor: Batches each worker prepares ahead.
        pin_memory: Pin batches in page-locked memory (for asynchronous copies to a GPU).
    """

    def __init__(
        self,
        streams: Mapping[str, IndexedTaskStream],
        evaluation: Mapping[str, Callable[[int], Any]],
        num_workers: int,
        prefetch_factor: int = 2,
        pin_memory: bool = False,
    ) -> None:
        self.streams = dict(streams)
        self.dataset = ScheduledBatches(
            {"train": {task: stream.make_batch for task, stream in self.streams.items()}, "eval": dict(evaluation)}
        )
        self.num_workers, self.prefetch_factor, self.pin_memory = num_workers, prefetch_factor, pin_memory
        self._iterator: Iterator[tuple[BatchKey, Any]] | None = None
        self._loader: DataLoader | None = None

    def start(self, schedule: Iterable[BatchKey]) -> None:
        """Start the workers on a schedule of keys (the order in which `get` will ask for them)."""
        self.close()
        if self.num_workers == 0:
            return
        self._loader = DataLoader(
            self.dataset,
            sampler=_ScheduleSampler(schedule),
            batch_size=None,
            collate_fn=_identity,
            num_workers=self.num_workers,
            prefetch_factor=self.prefetch_factor,
            pin_memory=self.pin_memory,
            persistent_workers=False,  # one iterator serves the whole run: the workers live as long as it
        )
        self._iterator = iter(self._loader)

    def get(self, key: BatchKey) -> Any:
        """The batch for `key`: the next one from the workers (checked against the schedule), or made here."""
        if self._iterator is None:
            return self.dataset[key][1]
        got, batch = next(self._iterator)
        if tuple(got) != tuple(key):
            raise RuntimeError(f"worker pool out of step with the loop: expected batch {key}, got {got}")
        return batch

    def close(self) -> None:
        self._iterator = None
        self._loader = None


def _identity(item: Any) -> Any:
    return item
