"""SIGINT / SIGTERM stop training cleanly, in real processes: the round finishes, a checkpoint is written, the process
exits non-zero with one clear line; under `accelerate launch` a SIGTERM to the launcher stops the trainer too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from umedpt_hf.training import latest_checkpoint, read_trainer_state
from umedpt_hf.training.run_folder import LOCK

ROOT = Path(__file__).parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"


def _command(database: Path, out: Path) -> list[str]:
    return [
        str(ROOT / "examples" / "pretrain.py"), "--config", str(ROOT / "examples" / "configs" / "tiny.yaml"),
        f"data.database={database}", f"output_dir={out}", "training.max_steps=100000", "training.save_steps=0",
        "training.logging_steps=1",
    ]  # fmt: skip


def _environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _wait_for_steps(out: Path, process: subprocess.Popen, steps: int = 2, timeout: float = 180) -> None:
    log, deadline = out / "train_log.jsonl", time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if log.is_file() and len(log.read_text().splitlines()) >= steps:
            return
        time.sleep(0.2)
    raise AssertionError("training did not start in time")


def _check_stopped(out: Path, stderr: str, name: str) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(lines) == 1, stderr[-3000:]
    assert f"training stopped by {name} at step" in lines[0] and "continue with --resume" in lines[0]
    step = int(lines[0].split(" at step ")[1].split()[0])
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None and read_trainer_state(checkpoint)["step"] == step
    assert not (out / LOCK).exists() and not (out / "final").exists()
    logged = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert logged[-1] == step  # the round in progress was finished, then training stopped


def test_sigint_finishes_the_round_and_checkpoints(tiny_database, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, *_command(tiny_database, out)], env=_environment(tmp_path), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_steps(out, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr[-3000:]
    _check_stopped(out, stderr, "SIGINT")


def test_sigterm_to_accelerate_launch_stops_the_trainer_too(tiny_database, tmp_path):
    out = tmp_path / "run"
    launcher = [
        str(ACCELERATE), "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no",
    ]  # fmt: skip
    process = subprocess.Popen(
        [*launcher, *_command(tiny_database, out)], env=_environment(tmp_path), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_steps(out, process)
    trainer_pid = json.loads((out / LOCK).read_text())["pid"]
    assert trainer_pid != process.pid  # the trainer is the launcher's child
    process.send_signal(signal.SIGTERM)  # to the launcher only, as a job scheduler would
    _, stderr = process.communicate(timeout=120)  # returns when the trainer, which holds the pipes, has exited
    assert process.returncode != 0
    _check_stopped(out, stderr, "SIGTERM")
    assert _gone(trainer_pid)


def _gone(pid: int, timeout: float = 10) -> bool:
    """The process has exited (an orphan may linger as a zombie until its new parent reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        if "State:\tZ" in status:
            return True
        time.sleep(0.2)
    return False
