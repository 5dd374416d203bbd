"""(a) The per-task loop accumulates exactly the gradients of the summed loss (the joint baseline)."""

from __future__ import annotations

import pytest
import torch
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments

TASKS = ["xray_cls", "ct_seg", "cell_det", "histo_multi"]


def _round_gradients(mode: str, output_dir, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict]:
    model = make_model(TASKS, dtype=dtype)
    args = MultiTaskTrainingArguments(output_dir=str(output_dir), mode=mode, max_steps=1, progress_bar=False)
    trainer = MultiTaskTrainer(model, make_loaders(TASKS, dtype=dtype), args)
    losses, n_images = trainer.accumulate_gradients(0)
    assert n_images == 4 * len(TASKS)
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}, losses


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [
        (torch.float64, 1e-6),  # exact up to float64 rounding (about 1e-15 here)
        (torch.float32, 1e-6),  # relative to the largest gradient: float32 summation order differs (about 4e-8)
    ],
)
def test_per_task_gradients_equal_summed_loss_gradients(tmp_path, dtype, tolerance):
    per_task, per_task_losses = _round_gradients("per_task", tmp_path / "per_task", dtype)
    joint, joint_losses = _round_gradients("joint", tmp_path / "joint", dtype)

    assert per_task_losses == joint_losses  # the same batches went through the same model
    assert set(per_task) == set(joint)
    for task in TASKS:  # every task's head received a gradient
        assert any(name.startswith(f"heads.{task}.") for name in per_task)
    largest = max(g.abs().max().item() for g in joint.values())
    assert largest > 1e-4  # a real signal, not zeros
    difference = max((per_task[name] - joint[name]).abs().max().item() for name in joint)
    scale = 1.0 if dtype == torch.float64 else largest
    assert difference <= tolerance * scale, (difference, largest)


def test_optimizer_step_clears_gradients_and_moves_parameters(tmp_path):
    model = make_model(TASKS[:2])
    args = MultiTaskTrainingArguments(output_dir=str(tmp_path), max_steps=2, learning_rate=1e-3, progress_bar=False)
    trainer = MultiTaskTrainer(model, make_loaders(TASKS[:2]), args)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.training_step(0)
    assert all(p.grad is None for p in model.parameters())
    moved = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert any(name.startswith("heads.xray_cls.") for name in moved)
    assert any(name.startswith("umedpt.") for name in moved)
