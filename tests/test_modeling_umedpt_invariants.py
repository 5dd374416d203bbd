"""The method's invariants, for every advertised backbone: no batch statistics in a shared block (so per-task gradient
accumulation equals one joint pass over all tasks' images), and every task type's fresh loss is about 1 at chance."""

from __future__ import annotations

import pytest
import torch
from umedpt_test_utils import BACKBONES, SMALL_DECODERS, make_task_batch

from umedpt_hf import UMedPTConfig, UMedPTForMultiTask, UMedPTModel, tiny_config
from umedpt_hf.blocks_umedpt import group_norm_from_batch_norm
from umedpt_hf.outputs_umedpt import UMedPTModelOutput

TASK_TYPES = {"cls": "classification", "multi": "multilabel", "seg": "segmentation", "det": "detection"}


def four_task_model(backbone: str, **overrides) -> UMedPTForMultiTask:
    tasks = {name: {"type": kind, "labels": ["a", "b", "c"]} for name, kind in TASK_TYPES.items()}
    config = UMedPTConfig(
        backbone_config=BACKBONES[backbone].to_dict(),
        tasks=tasks,
        **SMALL_DECODERS,
        **overrides,
    )
    torch.manual_seed(0)
    return UMedPTForMultiTask(config).double().train()


def task_batches() -> dict[str, dict]:
    batches = {}
    for seed, (name, kind) in enumerate(TASK_TYPES.items()):
        batch = make_task_batch(kind, 3, batch_size=2, size=64, seed=seed)
        batch["pixel_values"] = batch["pixel_values"].double()
        if kind == "detection":
            batch["labels"] = [{**t, "boxes": t["boxes"].double()} for t in batch["labels"]]
        batches[name] = batch
    return batches


def per_task_gradients(model: UMedPTForMultiTask, batches: dict) -> dict[str, torch.Tensor]:
    """The memory-decoupled loop: one forward and one backward per task, gradients accumulating."""
    model.zero_grad(set_to_none=True)
    for task, batch in batches.items():
        model(batch["pixel_values"], task=task, labels=batch["labels"]).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def joint_gradients(model: UMedPTForMultiTask, batches: dict) -> dict[str, torch.Tensor]:
    """One encoder pass over every task's images together, each task's decoder and head on its slice, one backward."""
    model.zero_grad(set_to_none=True)
    encoded = model.umedpt(torch.cat([b["pixel_values"] for b in batches.values()]))
    total, start = 0.0, 0
    for task, batch in batches.items():
        stop = start + len(batch["pixel_values"])
        part = UMedPTModelOutput(
            last_hidden_state=encoded.last_hidden_state[start:stop],
            pooler_output=encoded.pooler_output[start:stop],
            feature_maps=tuple(feature_map[start:stop] for feature_map in encoded.feature_maps),
        )
        total = total + model.decode(task, part, batch["pixel_values"].shape[-2:], batch["labels"]).loss
        start = stop
    total.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def largest_difference(first: dict, second: dict) -> float:
    assert set(first) == set(second)
    return max((first[name] - second[name]).abs().max().item() for name in first)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_per_task_gradients_equal_joint_gradients_for_every_backbone(backbone):
    model = four_task_model(backbone)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    batches = task_batches()
    per_task, joint = per_task_gradients(model, batches), joint_gradients(model, batches)
    assert max(g.abs().max().item() for g in joint.values()) > 1e-4  # a real signal
    assert largest_difference(per_task, joint) < 1e-10, backbone


def test_batch_norm_kept_on_request_breaks_the_equality():
    """The control: ResNet with its BatchNorms (replace_batch_norm=False) mixes statistics across tasks."""
    model = four_task_model("resnet", replace_batch_norm=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    batches = task_batches()
    assert largest_difference(per_task_gradients(model, batches), joint_gradients(model, batches)) > 1e-6


def test_batch_norm_becomes_group_norm_with_its_affine_weights_and_no_running_statistics(tmp_path):
    batch_norm = torch.nn.BatchNorm2d(6, eps=1e-3)
    torch.nn.init.normal_(batch_norm.weight), torch.nn.init.normal_(batch_norm.bias)
    batch_norm.running_mean.fill_(5.0)
    group_norm = group_norm_from_batch_norm(batch_norm)
    assert (group_norm.num_groups, group_norm.num_channels, group_norm.eps) == (1, 6, 1e-3)
    assert torch.equal(group_norm.weight, batch_norm.weight) and torch.equal(group_norm.bias, batch_norm.bias)
    assert dict(group_norm.named_buffers()) == {}

    encoder = UMedPTModel(UMedPTConfig(backbone_config=BACKBONES["resnet"].to_dict())).eval()
    assert encoder.config.replace_batch_norm
    assert not [key for key in encoder.state_dict() if "running_" in key or "num_batches_tracked" in key]
    encoder.save_pretrained(tmp_path)
    assert '"replace_batch_norm": true' in (tmp_path / "config.json").read_text()
    loaded = UMedPTModel.from_pretrained(tmp_path).eval()
    pixel_values = torch.randn(2, 3, 64, 64)
    assert torch.equal(loaded(pixel_values).pooler_output, encoder(pixel_values).pooler_output)
    # train and eval mode compute the same: there are no batch statistics left
    assert torch.equal(loaded.train()(pixel_values).pooler_output, encoder(pixel_values).pooler_output)


def chance_batch(task_type: str, num_labels: int, seed: int) -> dict:
    """A batch whose labels carry no information about the images (the model can only guess)."""
    generator = torch.Generator().manual_seed(seed)
    if task_type != "detection":
        batch = make_task_batch(task_type, num_labels, batch_size=8, size=64, seed=seed)
        if task_type == "segmentation":  # blocks of one class, as real masks have
            blocks = torch.randint(0, num_labels, (8, 4, 4), generator=generator)
            batch["labels"] = blocks.repeat_interleave(16, dim=1).repeat_interleave(16, dim=2)
        return batch
    labels = []
    for _ in range(8):
        count = int(torch.randint(1, 5, (1,), generator=generator))
        sizes = 0.1 + 0.4 * torch.rand(count, 2, generator=generator)
        centres = sizes / 2 + (1 - sizes) * torch.rand(count, 2, generator=generator)
        classes = torch.randint(0, num_labels, (count,), generator=generator)
        labels.append({"class_labels": classes, "boxes": torch.cat([centres, sizes], dim=1)})
    return {"pixel_values": torch.randn(8, 3, 64, 64, generator=generator), "labels": labels}


CHANCE_TASKS = {
    f"{kind}_{count}": (kind, count)
    for kind in ("classification", "multilabel", "segmentation", "detection")
    for count in (1, 2, 5, 20)
    if count >= {"classification": 2, "segmentation": 2}.get(kind, 1)
}


def test_fresh_loss_is_about_one_at_chance_for_every_task_type_and_class_count():
    tasks = {
        name: {"type": kind, "labels": [f"c{i}" for i in range(count)]} for name, (kind, count) in CHANCE_TASKS.items()
    }
    losses = {name: [] for name in tasks}
    for seed in range(3):
        torch.manual_seed(seed)
        model = UMedPTForMultiTask(tiny_config(tasks=tasks)).eval()
        with torch.no_grad():
            for name, (kind, count) in CHANCE_TASKS.items():
                losses[name].append(model(**chance_batch(kind, count, seed), task=name).loss.item())
    assert all(abs(value - 1.0) <= 0.25 for values in losses.values() for value in values), losses
