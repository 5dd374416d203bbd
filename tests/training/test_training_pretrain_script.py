"""End to end: `accelerate launch examples/pretrain.py --config examples/configs/tiny.yaml` trains, checkpoints,
resumes and exports a model that `AutoModel.from_pretrained` loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from umedpt_hf.training import list_checkpoints, read_log

ROOT = Path(__file__).parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"


def _launch(tmp_path: Path, database: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        str(ACCELERATE), "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", str(ROOT / "examples" / "pretrain.py"),
        "--config", str(ROOT / "examples" / "configs" / "tiny.yaml"),
        f"data.database={database}", f"output_dir={out}", *extra,
    ]  # fmt: skip
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_accelerate_launch_trains_checkpoints_resumes_and_exports(tiny_database, tmp_path):
    out = tmp_path / "run"
    first = _launch(tmp_path, tiny_database, out, "training.max_steps=2")
    assert first.returncode == 0, first.stderr[-4000:]
    assert [path.name for path in list_checkpoints(out)] == ["step_00000002"]

    second = _launch(tmp_path, tiny_database, out, "--resume", "training.max_steps=4")
    assert second.returncode == 0, second.stderr[-4000:]
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert summary["step"] == 4 and set(summary["last_losses"]) == {
        "modality_cls",
        "head_ct_tissue_seg",
        "dsb2018_nuclei_det",
    }
    assert [record["step"] for record in read_log(out / "train_log.jsonl")] == [1, 2, 3, 4]  # resumed at step 3
    assert [path.name for path in list_checkpoints(out)] == ["step_00000002", "step_00000004"]

    from transformers import AutoImageProcessor, AutoModel, AutoModelForPreTraining

    final = out / "final"
    encoder = AutoModel.from_pretrained(final)
    multitask = AutoModelForPreTraining.from_pretrained(final)
    processor = AutoImageProcessor.from_pretrained(final)
    assert type(encoder).__name__ == "UMedPTModel" and type(multitask).__name__ == "UMedPTForMultiTask"
    assert sorted(multitask.task_names) == ["dsb2018_nuclei_det", "head_ct_tissue_seg", "modality_cls"]
    trained = load_file(str(list_checkpoints(out)[-1] / "model.safetensors"))
    assert all(torch.equal(p, trained[name]) for name, p in multitask.named_parameters())
    pixel_values = processor(images=[torch.zeros(32, 32)], return_tensors="pt")["pixel_values"]
    features = encoder.get_image_features(pixel_values)
    assert features.shape == (1, encoder.config.hidden_size) and torch.isfinite(features).all()
