"""Loop options: gradient checkpointing (same gradients), bf16 autocast, the size-proportional sampler, head LR."""

from __future__ import annotations

import math

import pytest
import torch
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, NonFiniteLossError, read_log

TASKS = ["xray_cls", "ct_seg", "cell_det"]


def _gradients(tmp_path, **options) -> dict[str, torch.Tensor]:
    model = make_model(TASKS)
    args = MultiTaskTrainingArguments(output_dir=str(tmp_path), max_steps=1, progress_bar=False, **options)
    trainer = MultiTaskTrainer(model, make_loaders(TASKS), args)
    trainer.accumulate_gradients(0)
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    plain = _gradients(tmp_path / "plain")
    checkpointed = _gradients(tmp_path / "checkpointed", gradient_checkpointing=True)
    assert plain.keys() == checkpointed.keys()
    assert max((plain[k] - checkpointed[k]).abs().max().item() for k in plain) <= 1e-6


def test_bf16_autocast_trains_on_cpu(tmp_path):
    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), max_steps=2, mixed_precision="bf16", save_steps=0, progress_bar=False
    )
    model = make_model(TASKS)  # detection included: its extra FPN levels run in float32 under autocast
    result = MultiTaskTrainer(model, make_loaders(TASKS), args).train()
    assert result.global_step == 2 and all(math.isfinite(v) for v in result.last_losses.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_nonfinite_gradient_with_finite_losses_stops_before_the_step(tmp_path):
    model = make_model(TASKS)
    model.pixel_decoder.embed[0].weight.register_hook(lambda grad: grad * float("inf"))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = MultiTaskTrainingArguments(output_dir=str(tmp_path), max_steps=2, save_steps=0, progress_bar=False)
    with pytest.raises(NonFiniteLossError, match=r"gradient norm is (inf|nan) at training step 1") as error:
        MultiTaskTrainer(model, make_loaders(TASKS), args).train()
    assert "pixel_decoder.embed.0.weight" in str(error.value)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # weights untouched


def test_size_proportional_sampler_and_head_learning_rate(tmp_path):
    sizes = {"xray_cls": 40, "ct_seg": 8, "cell_det": 8}
    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), sampler="size_proportional", tasks_per_round=2, max_steps=6, logging_steps=6,
        learning_rate=1e-4, head_learning_rate=1e-3, save_steps=0, progress_bar=False,
    )  # fmt: skip
    trainer = MultiTaskTrainer(make_model(TASKS), make_loaders(TASKS, sizes), args)
    drawn = [task for step in range(6) for task in trainer.sampler.tasks_for_round(step)]
    assert len(drawn) == 12
    trainer.train()
    consumed = {name: stream.consumed for name, stream in trainer.streams.items()}
    assert consumed == {name: drawn.count(name) for name in TASKS}
    record = read_log(tmp_path / "train_log.jsonl")[-1]
    groups = {group["group_name"]: group for group in trainer.optimizer.param_groups}
    assert set(groups) == {"shared", "shared_no_decay", "head", "head_no_decay"}
    assert groups["head"]["initial_lr"] == pytest.approx(1e-3) and groups["shared"]["initial_lr"] == pytest.approx(1e-4)
    assert groups["shared_no_decay"]["weight_decay"] == 0.0
    assert record["step"] == 6 and "lr/head" in record


def test_invalid_mode_and_task_without_head_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"training\.mode must be one of"):
        MultiTaskTrainingArguments(output_dir=str(tmp_path), mode="alternating")
    with pytest.raises(ValueError, match="no head in the model"):
        MultiTaskTrainer(make_model(["xray_cls"]), make_loaders(["xray_cls", "ct_seg"]), MultiTaskTrainingArguments())


def test_multi_process_launch_with_a_single_process_accelerator_is_refused(tmp_path, monkeypatch):
    from accelerate import Accelerator

    monkeypatch.setenv("WORLD_SIZE", "2")
    accelerator = Accelerator()  # not told cpu=True: on a CPU-only machine it would not join the process group
    with pytest.raises(ValueError, match="WORLD_SIZE=2 but the Accelerator runs a single process"):
        MultiTaskTrainer(
            make_model(TASKS[:1]), make_loaders(TASKS[:1]), MultiTaskTrainingArguments(), accelerator=accelerator
        )


def test_compile_builds_and_trains_a_step(tmp_path):
    """`training.compile` through the trainer (aot_eager: dynamo and AOT autograd without generating C++)."""
    model = make_model(TASKS[:2])  # classification and segmentation: no detection decoder is built
    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), max_steps=1, save_steps=0, progress_bar=False, compile=True,
        compile_backend="aot_eager",
    )  # fmt: skip
    result = MultiTaskTrainer(model, make_loaders(TASKS[:2], image_size=32), args).train()
    assert result.global_step == 1 and math.isfinite(result.last_losses["xray_cls"])
    assert model.umedpt._compiled_call_impl is not None and model.pixel_decoder._compiled_call_impl is not None
    assert model.detection_decoder is None


def test_compile_without_a_compiler_is_one_clear_error(tmp_path):
    """Where inductor has no C++ compiler, `compile: true` fails at once with one line, before any training."""
    import os
    import subprocess
    import sys

    code = "from umedpt_hf.training.launch import probe_compile\nprobe_compile('inductor')"
    env = {**os.environ, "CXX": str(tmp_path / "no-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode != 0 and last.startswith("ValueError: training.compile: torch.compile does not work"), last
    assert "set training.compile=false" in last
