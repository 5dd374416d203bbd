"""Which tasks a round visits: a pure function of the round index, identical on every rank."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


class TaskSampler:
    """Base class: `tasks_for_round(round_index)` lists the tasks of one round (one optimizer step)."""

    task_names: list[str]

    def tasks_for_round(self, round_index: int) -> list[str]:
        raise NotImplementedError

    def rounds_per_epoch(self, batches_per_epoch: Mapping[str, int]) -> int:
        """Rounds after which the longest task has been seen once."""
        raise NotImplementedError


class RoundRobinSampler(TaskSampler):
    """Every task once per round, in a fixed order; shorter tasks are cycled by their streams."""

    def __init__(self, task_names: Sequence[str]) -> None:
        if not task_names:
            raise ValueError("RoundRobinSampler needs at least one task")
        self.task_names = list(task_names)

    def tasks_for_round(self, round_index: int) -> list[str]:
        return list(self.task_names)

    def rounds_per_epoch(self, batches_per_epoch: Mapping[str, int]) -> int:
        return max(batches_per_epoch[name] for name in self.task_names)


class SizeProportionalSampler(TaskSampler):
    """Each round draws `tasks_per_round` tasks (with replacement) with probability proportional to their size.

    The draw of round `r` depends only on `(seed, r)`, so every rank draws the same tasks and a resumed run draws
    what the uninterrupted one would have drawn.
    """

    def __init__(self, task_sizes: Mapping[str, int], tasks_per_round: int | None = None, seed: int = 0) -> None:
        if not task_sizes:
            raise ValueError("SizeProportionalSampler needs at least one task")
        bad = {name: size for name, size in task_sizes.items() if size <= 0}
        if bad:
            raise ValueError(f"SizeProportionalSampler needs positive task sizes, got {bad}")
        self.task_names = list(task_sizes)
        sizes = np.asarray([task_sizes[name] for name in self.task_names], dtype=np.float64)
        self.probabilities = sizes / sizes.sum()
        self.tasks_per_round = tasks_per_round or len(self.task_names)
        self.seed = seed

    def tasks_for_round(self, round_index: int) -> list[str]:
        rng = np.random.default_rng([self.seed, round_index, 0x5A3])
        picks = rng.choice(len(self.task_names), size=self.tasks_per_round, p=self.probabilities)
        return [self.task_names[i] for i in picks]

    def rounds_per_epoch(self, batches_per_epoch: Mapping[str, int]) -> int:
        return max(1, math.ceil(sum(batches_per_epoch[name] for name in self.task_names) / self.tasks_per_round))


def build_sampler(
    kind: str, task_names: Sequence[str], task_sizes: Mapping[str, int], tasks_per_round: int | None, seed: int
) -> TaskSampler:
    """The sampler named by `training.sampler`."""
    if kind == "round_robin":
        return RoundRobinSampler(task_names)
    if kind == "size_proportional":
        return SizeProportionalSampler({name: task_sizes[name] for name in task_names}, tasks_per_round, seed)
    raise ValueError(f"unknown sampler {kind!r}; use 'round_robin' or 'size_proportional'")
