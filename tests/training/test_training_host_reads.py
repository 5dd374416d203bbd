"""The round reads back from the device at most once (the fused finite / stop check): counted by wrapping every way a
tensor's value reaches the host while `train` runs, attributed to the file that asked."""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments

TASKS = ["xray_cls", "ct_seg", "cell_det", "histo_multi"]
READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__index__", "__bool__")
TRAINING = str(Path(__import__("umedpt_hf.training").training.__file__).parent)


@contextmanager
def counting_host_reads() -> Iterator[Counter]:
    """Counter of (caller file, method) for every host read of a tensor value while active."""
    counts: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name, original):
        def read(self, *args, **kwargs):
            counts[(sys._getframe(1).f_code.co_filename, name)] += 1
            return original(self, *args, **kwargs)

        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield counts
    finally:
        for name in READS:
            delattr(torch.Tensor, name)


def _reads_from(counts: Counter, folder: str) -> int:
    return sum(n for (filename, _), n in counts.items() if filename.startswith(folder))


@pytest.mark.parametrize(("check_finite", "most"), [(True, 1), (False, 0)])
def test_at_most_one_host_read_per_round_from_the_loop(tmp_path, check_finite, most):
    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), max_steps=6, logging_steps=100, save_steps=0, progress_bar=False,
        check_finite=check_finite,
    )  # fmt: skip
    per_round: list[int] = []
    snapshots: list[Counter] = []

    def snapshot(trainer, step, losses) -> None:  # does not look at `losses`: they stay on the device
        snapshots.append(Counter(counts))

    trainer = MultiTaskTrainer(make_model(TASKS), make_loaders(TASKS), args, callbacks=[snapshot])
    with counting_host_reads() as counts:
        result = trainer.train()
    for before, after in itertools.pairwise(snapshots[:-1]):  # rounds 2..5 (round 6 logs, then saves)
        per_round.append(_reads_from(after - before, TRAINING))
    assert len(per_round) == 4 and max(per_round) <= most, per_round
    assert result.global_step == 6 and set(result.last_losses) == set(TASKS)  # read once, at the end
