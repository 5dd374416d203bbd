"""(d) A NaN loss stops training with an error naming the task and step; the last good checkpoint stays intact."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import make_loaders, make_model, parameters_of

from umedpt_hf.training import (
    MultiTaskTrainer,
    MultiTaskTrainingArguments,
    NonFiniteLossError,
    latest_checkpoint,
    list_checkpoints,
    read_trainer_state,
)

TASKS = ["xray_cls", "ct_seg"]


def _arguments(output_dir) -> MultiTaskTrainingArguments:
    return MultiTaskTrainingArguments(
        output_dir=str(output_dir), max_steps=6, save_steps=2, logging_steps=1, learning_rate=1e-3, progress_bar=False
    )


def test_nan_loss_names_task_and_step_and_keeps_checkpoint(tmp_path):
    model = make_model(TASKS)
    snapshot = {}

    def diverge(trainer, step, losses):
        if step == 2:
            snapshot.update(parameters_of(model))
        if step == 3:  # the segmentation head blows up: its next loss is NaN
            with torch.no_grad():
                model.heads["ct_seg"].classifier.weight.fill_(float("inf"))

    trainer = MultiTaskTrainer(model, make_loaders(TASKS), _arguments(tmp_path), callbacks=[diverge])
    with pytest.raises(NonFiniteLossError) as error:
        trainer.train()
    message = str(error.value)
    assert "'ct_seg'" in message and "step 4" in message and "nan" in message
    assert "step_00000002" in message  # it says where the last good state is

    checkpoint = latest_checkpoint(tmp_path)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["step_00000002"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))
    assert read_trainer_state(checkpoint)["step"] == 2
    saved = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())
    assert all(torch.equal(saved[name], snapshot[name]) for name in snapshot)

    # the checkpoint is usable: a fresh run resumes from it and finishes
    resumed = MultiTaskTrainer(make_model(TASKS), make_loaders(TASKS), _arguments(tmp_path))
    result = resumed.train(resume_from=True)
    assert result.global_step == 6 and all(torch.isfinite(torch.tensor(v)) for v in result.last_losses.values())


def test_check_finite_off_lets_the_step_run(tmp_path):
    model = make_model(TASKS)
    with torch.no_grad():
        model.heads["ct_seg"].classifier.weight.fill_(float("nan"))
    args = _arguments(tmp_path)
    args.check_finite, args.max_steps, args.save_steps = False, 1, 0
    result = MultiTaskTrainer(model, make_loaders(TASKS), args).train()
    assert result.global_step == 1 and result.last_losses["ct_seg"] != result.last_losses["ct_seg"]  # NaN
