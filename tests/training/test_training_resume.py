"""(c) A run killed with SIGKILL and resumed from its last checkpoint ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from training_helpers import max_difference

from umedpt_hf.training import latest_checkpoint, read_log, read_trainer_state

HERE = Path(__file__).parent


def _start(out: Path, *extra: str) -> subprocess.Popen:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(HERE / "run_training_script.py"),
        "--out",
        str(out),
        "--max-steps",
        "6",
        "--save-steps",
        "2",
    ]
    return subprocess.Popen([*command, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=240)
    return process.returncode, stderr


@pytest.mark.slow
def test_sigkilled_run_resumes_exactly(tmp_path):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    first, second = _start(uninterrupted), _start(interrupted, "--kill-after", "5")
    code, stderr = _finish(first)
    assert code == 0, stderr[-4000:]
    code, stderr = _finish(second)
    assert code == -signal.SIGKILL, stderr[-4000:]
    assert not (interrupted / "params.safetensors").exists()
    checkpoint = latest_checkpoint(interrupted)
    assert checkpoint is not None and checkpoint.name == "step_00000004"
    assert read_trainer_state(checkpoint)["step"] == 4

    code, stderr = _finish(_start(interrupted, "--resume"))
    assert code == 0, stderr[-4000:]
    assert json.loads((interrupted / "run_info.json").read_text())["step"] == 6
    expected = load_file(str(uninterrupted / "params.safetensors"))
    resumed = load_file(str(interrupted / "params.safetensors"))
    assert max_difference(expected, resumed) == 0.0
    # the log of the resumed run continues at step 5 with the losses of the uninterrupted run
    full = {record["step"]: record for record in read_log(uninterrupted / "train_log.jsonl")}
    steps = [record["step"] for record in read_log(interrupted / "train_log.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 5, 6]  # step 5 ran twice: killed after logging it, redone after the resume
    last = read_log(interrupted / "train_log.jsonl")[-1]
    assert last["step"] == 6 and last["loss"] == pytest.approx(full[6]["loss"], abs=0)
