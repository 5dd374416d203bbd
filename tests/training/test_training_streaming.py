"""Tasks streamed as `datasets.IterableDataset` resume exactly: with and without a shuffle buffer, across epochs, and
through the trainer (a resumed run equals an uninterrupted one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset
from torch.utils.data import DataLoader
from training_helpers import TASK_SPECS, SyntheticTaskDataset, collate, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, StreamingTaskStream, as_task_stream
from umedpt_hf.training.config import apply_overrides, parse_pretrain_config
from umedpt_hf.training.pipeline import run_pretraining


class SeededCollate:
    """Collates `{"i"}` rows into their ids plus a random draw from the batch's seed (like an augmentation)."""

    def set_seed(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, rows):
        return [row["i"] for row in rows] + [int(torch.randint(0, 10**6, (), generator=self.generator))]


def _stream(shuffle: bool, drop_last: bool = True) -> StreamingTaskStream:
    dataset = Dataset.from_dict({"i": list(range(22))}).to_iterable_dataset(num_shards=4)
    if shuffle:
        dataset = dataset.shuffle(seed=3, buffer_size=8)
    return StreamingTaskStream(dataset, SeededCollate(), 4, key="t", seed=1, drop_last=drop_last)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("stop_at", [2, 5, 7])
def test_streamed_batches_resume_exactly(shuffle, stop_at):
    uninterrupted = _stream(shuffle)
    batches = [uninterrupted.next_batch() for _ in range(12)]  # 5 full batches per epoch: crosses two epochs
    first_epoch = sorted(i for batch in batches[:5] for i in batch[:-1])
    assert len(first_epoch) == 20 and len(set(first_epoch)) == 20
    if shuffle:
        assert batches[:5] != batches[5:10]  # reshuffled per epoch
    interrupted = _stream(shuffle)
    for _ in range(stop_at):
        interrupted.next_batch()
    state = interrupted.state_dict()
    assert ("dataset" in state) != shuffle  # exact dataset state without a buffer, re-iteration with one
    resumed = _stream(shuffle)
    resumed.load_state_dict(state)
    assert [resumed.next_batch() for _ in range(12 - stop_at)] == batches[stop_at:]


def test_a_partial_last_batch_is_kept_without_drop_last():
    stream = _stream(shuffle=False, drop_last=False)
    sizes = [len(stream.next_batch()) - 1 for _ in range(7)]
    assert sizes == [4, 4, 4, 4, 4, 2, 4]


def _streamed_loaders(n: int = 12) -> dict[str, DataLoader]:
    examples = SyntheticTaskDataset(TASK_SPECS["xray_cls"], n, 32, seed=1)
    rows = [examples[i] for i in range(n)]
    data = Dataset.from_dict(
        {"pixel_values": [r["pixel_values"].numpy() for r in rows], "labels": [int(r["labels"]) for r in rows]}
    ).with_format("torch")
    iterable = data.to_iterable_dataset(num_shards=3).shuffle(seed=0, buffer_size=4)
    return {"xray_cls": DataLoader(iterable, batch_size=4, collate_fn=collate, drop_last=True)}


def test_the_trainer_resumes_a_streamed_task_exactly(tmp_path):
    assert isinstance(as_task_stream(_streamed_loaders()["xray_cls"], key="xray_cls"), StreamingTaskStream)

    def train(out, max_steps, resume=False):
        args = MultiTaskTrainingArguments(
            output_dir=str(out), max_steps=max_steps, save_steps=2, progress_bar=False, learning_rate=1e-3
        )
        trainer = MultiTaskTrainer(make_model(["xray_cls"]), _streamed_loaders(), args)
        trainer.train(resume_from=True if resume else None)
        return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}

    straight = train(tmp_path / "straight", 5)  # 3 batches per epoch: resumes inside the second epoch
    train(tmp_path / "resumed", 5)
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "step_00000005")  # as if stopped after step 4
    resumed = train(tmp_path / "resumed", 5, resume=True)
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


def test_data_streaming_in_the_pipeline(tiny_database, tmp_path):
    config_file = Path(__file__).parents[2] / "examples" / "configs" / "tiny.yaml"
    overrides = [f"data.database={tiny_database}", f"output_dir={tmp_path / 'run'}", "data.streaming=true"]
    config = parse_pretrain_config(apply_overrides(yaml.safe_load(config_file.read_text()), overrides))
    result, final = run_pretraining(config)
    assert result.global_step == 4 and (final / "model.safetensors").is_file()
