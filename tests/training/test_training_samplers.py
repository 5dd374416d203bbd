"""Task samplers and resumable task streams: cycling, sharding over ranks, pure functions of (seed, position)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from umedpt_hf.training import (
    IndexedTaskStream,
    IterableTaskStream,
    RoundRobinSampler,
    SizeProportionalSampler,
    as_task_stream,
    build_sampler,
)
from umedpt_hf.training.worker_pool import WorkerPool


def _ids(batch) -> list[int]:
    return [int(i) for i in batch[0]]


def _stream(n: int, batch_size: int = 4, **kwargs) -> IndexedTaskStream:
    dataset = TensorDataset(torch.arange(n))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    return as_task_stream(loader, key=kwargs.pop("key", "task"), **kwargs)


def test_round_robin_visits_every_task_and_short_tasks_cycle():
    sampler = RoundRobinSampler(["long", "short"])
    assert sampler.tasks_for_round(0) == sampler.tasks_for_round(7) == ["long", "short"]
    assert sampler.rounds_per_epoch({"long": 6, "short": 2}) == 6
    short = _stream(8, key="short")  # 2 batches per epoch
    seen = Counter(i for _ in range(6) for i in _ids(short.next_batch()))
    assert seen == Counter({i: 3 for i in range(8)})  # cycled three times in the long task's epoch


def test_indexed_stream_is_a_pure_function_of_seed_and_position():
    a, b = _stream(20, seed=3), _stream(20, seed=3)
    first = [_ids(a.next_batch()) for _ in range(12)]
    assert first == [_ids(b.next_batch()) for _ in range(12)]
    assert first[:5] != first[5:10]  # a new permutation every epoch (5 batches per epoch)
    assert sorted(i for batch in first[:5] for i in batch) == list(range(20))
    resumed = _stream(20, seed=3)
    resumed.load_state_dict({"consumed": 7})
    assert [_ids(resumed.next_batch()) for _ in range(5)] == first[7:12]
    assert [_ids(_stream(20, seed=4).next_batch()) for _ in range(5)] != first[:5]


def test_ranks_get_disjoint_shards_of_each_epoch():
    ranks = [_stream(24, process_index=r, num_processes=2) for r in (0, 1)]
    assert all(stream.batches_per_epoch == 3 for stream in ranks)  # 6 global batches / 2 ranks
    epoch = [[_ids(stream.next_batch()) for _ in range(3)] for stream in ranks]
    zero = {i for batch in epoch[0] for i in batch}
    one = {i for batch in epoch[1] for i in batch}
    assert not zero & one and zero | one == set(range(24))


def test_one_worker_pool_for_all_tasks_gives_the_main_process_batches():
    streams = {
        name: IndexedTaskStream(TensorDataset(torch.arange(n)), _collate, 4, key=name, seed=1)
        for name, n in (("a", 12), ("b", 20), ("c", 8))
    }
    schedule = [("train", name, position) for position in range(5) for name in streams]
    expected = [streams[name].make_batch(position) for _, name, position in schedule]
    pool = WorkerPool(streams, {}, num_workers=2, prefetch_factor=2)
    pool.start(iter(schedule))
    assert pool._loader.num_workers == 2  # the budget is the total, whatever the number of tasks
    assert [pool.get(key) for key in schedule] == expected
    with pytest.raises(RuntimeError, match="out of step"):
        pool.start(iter(schedule))
        pool.get(("train", "b", 0))
    pool.close()


def _collate(items):
    return [int(item[0]) for item in items]


def test_size_proportional_sampler_is_deterministic_and_proportional():
    sampler = SizeProportionalSampler({"big": 300, "small": 100}, tasks_per_round=2, seed=0)
    again = SizeProportionalSampler({"big": 300, "small": 100}, tasks_per_round=2, seed=0)
    rounds = [sampler.tasks_for_round(r) for r in range(1000)]
    assert rounds == [again.tasks_for_round(r) for r in range(1000)]
    counts = Counter(task for tasks in rounds for task in tasks)
    assert counts["big"] / 2000 == pytest.approx(0.75, abs=0.03)
    assert sampler.rounds_per_epoch({"big": 30, "small": 10}) == 20
    with pytest.raises(ValueError, match="positive task sizes"):
        SizeProportionalSampler({"empty": 0})
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler("random", ["a"], {"a": 1}, None, 0)


def test_iterable_stream_cycles_and_fast_forwards():
    stream = IterableTaskStream([{"i": 0}, {"i": 1}, {"i": 2}], key="t")
    assert [stream.next_batch()["i"] for _ in range(5)] == [0, 1, 2, 0, 1]
    stream.load_state_dict({"consumed": 4})
    assert stream.next_batch()["i"] == 1
    with pytest.raises(ValueError, match="empty"):
        IterableTaskStream([], key="t")
    with pytest.raises(TypeError, match="expected a DataLoader"):
        as_task_stream(42, key="t")
