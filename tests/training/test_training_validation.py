"""Validation in pretraining: per-task loss and metric on a fixed subset, the best checkpoint by the sum of validation
losses, early stopping, TensorBoard (offline), the curve PNG, and plain progress lines when not on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, read_log
from umedpt_hf.training.config import apply_overrides, parse_pretrain_config
from umedpt_hf.training.logging import Console
from umedpt_hf.training.pipeline import run_pretraining
from umedpt_hf.training.validation import build_validation_sets

CONFIG = Path(__file__).parents[2] / "examples" / "configs" / "tiny.yaml"
METRICS = {"modality_cls": ("accuracy", "macro_f1"), "head_ct_tissue_seg": ("dice",), "dsb2018_nuclei_det": ("map50",)}


def test_pretraining_validates_keeps_the_best_and_reports_to_tensorboard(tiny_database, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    overrides = [
        f"data.database={tiny_database}", f"output_dir={out}", "training.max_steps=4", "training.save_steps=1",
        "training.save_total_limit=null", "training.eval_steps=2", "training.eval_max_examples=12",
        "training.report_to=tensorboard",
    ]  # fmt: skip
    config = parse_pretrain_config(apply_overrides(yaml.safe_load(CONFIG.read_text()), overrides))
    result, final = run_pretraining(config)

    evaluations = [record for record in read_log(out / "train_log.jsonl") if "eval/loss_sum" in record]
    assert [record["step"] for record in evaluations] == [2, 4]
    for record in evaluations:
        for task, metrics in METRICS.items():
            assert 0 < record[f"eval/loss/{task}"] < 10
            for metric in metrics:
                value = record[f"eval/{metric}/{task}"]
                assert value is None or 0.0 <= value <= 1.0  # None: undefined (no box in the subset)
        assert record["eval/loss_sum"] == pytest.approx(sum(record[f"eval/loss/{task}"] for task in METRICS))
    best_step = min(evaluations, key=lambda record: record["eval/loss_sum"])["step"]
    assert result.best == out / "best"
    best = load_file(str(out / "best" / "model.safetensors"))
    at_best = load_file(str(out / "checkpoints" / f"step_{best_step:08d}" / "model.safetensors"))
    assert best.keys() == at_best.keys() and all(torch.equal(best[name], at_best[name]) for name in best)
    assert final == out / "final" and (out / "final" / "preprocessor_config.json").is_file()

    events = sorted((out / "tracking").rglob("events.out.tfevents.*"))
    assert events
    scalars = set()
    for event_file in events:
        accumulator = EventAccumulator(str(event_file))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
    assert {"loss", "eval/loss_sum", "images_per_second", "eval/dice/head_ct_tissue_seg"} <= scalars
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "umedpt_run.json").read_text())["files"]
    assert "curves.png" in manifest and any(path.startswith("tracking/") for path in manifest)


class ScriptedValidation(MultiTaskTrainer):
    """Validation losses from a script (the early-stopping logic under test, the loop real)."""

    sums = [3.0, 2.0, 2.5, 2.4, 2.2, 1.0]

    def validate(self):
        return {"eval/loss/xray_cls": self.sums[self.step - 1], "eval/loss_sum": self.sums[self.step - 1]}


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    args = MultiTaskTrainingArguments(
        output_dir=str(tmp_path), max_steps=6, eval_steps=1, early_stopping_patience=3, save_steps=0,
        progress_bar=False,
    )  # fmt: skip
    loaders = make_loaders(["xray_cls"])
    trainer = ScriptedValidation(make_model(["xray_cls"]), loaders, args, eval_loaders=make_loaders(["xray_cls"]))
    result = trainer.train()
    assert result.stopped_early and result.global_step == 5  # best at 2, then 2.5, 2.4, 2.2: three without
    assert trainer.best.best_step == 2 and (tmp_path / "best" / "model.safetensors").is_file()
    assert (tmp_path / "final" / "model.safetensors").is_file()  # the last model is exported as well


def test_the_validation_subset_is_fixed_and_capped():
    loaders = make_loaders(["xray_cls", "ct_seg"], sizes={"xray_cls": 40, "ct_seg": 6})
    tasks = make_model(["xray_cls", "ct_seg"]).config.tasks
    first = build_validation_sets(loaders, tasks, max_examples=10, seed=0)
    again = build_validation_sets(loaders, tasks, max_examples=10, seed=0)
    assert first["xray_cls"].indices == again["xray_cls"].indices and len(first["xray_cls"].indices) == 10
    assert first["xray_cls"].indices != list(range(10))  # a spread subset, not the first rows
    assert first["ct_seg"].indices == list(range(6)) and first["ct_seg"].num_batches == 2


def test_progress_is_one_plain_line_per_logging_step_when_not_on_a_terminal():
    stream = io.StringIO()
    console = Console(total=20, initial=0, enabled=True, stream=stream)
    for step in (10, 20):
        console.step()
        console.show({"step": step, "loss": 0.5, "images_per_second": 123.4, "loss/a": 0.4, "loss/b": 0.6})
    console.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "step 10/20 loss 0.5 img/s 123.4 a=0.4 b=0.6",
        "step 20/20 loss 0.5 img/s 123.4 a=0.4 b=0.6",
    ]
