"""(b) Two gloo processes under torchrun end with the parameters of a single-process run over the same batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_training_script import SIZES, TASKS, training_arguments
from safetensors.torch import load_file
from training_helpers import make_loaders, make_model, max_difference, parameters_of

from umedpt_hf.training import as_task_stream, build_optimizer, build_scheduler

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _single_process_reference(max_steps: int) -> dict[str, torch.Tensor]:
    """Hand-written loop: for every task, both ranks' batches, each loss / 2 (DDP averages), one step per round."""
    args = training_arguments("unused", max_steps, 0)
    model = make_model(TASKS)
    loaders = make_loaders(TASKS, SIZES)
    ranks = [
        {name: as_task_stream(loaders[name], key=name, process_index=r, num_processes=2) for name in TASKS}
        for r in (0, 1)
    ]
    optimizer = build_optimizer(model, args)
    scheduler = build_scheduler(optimizer, args, max_steps)
    for _ in range(max_steps):
        for name in TASKS:
            for streams in ranks:
                batch = streams[name].next_batch()
                loss = model(pixel_values=batch["pixel_values"], task=name, labels=batch["labels"]).loss
                (loss / 2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return parameters_of(model)


def _torchrun(out, *extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(HERE / "run_training_script.py"), "--out", str(out), "--max-steps",
        "3", *extra,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path):
    done = _torchrun(tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads((tmp_path / "run_info.json").read_text()) == {"num_processes": 2, "step": 3}
    ddp = load_file(str(tmp_path / "params.safetensors"))
    reference = _single_process_reference(3)
    start = parameters_of(make_model(TASKS))
    assert max_difference(ddp, start) > 1e-4  # training moved the weights
    assert max_difference(ddp, reference) <= 1e-5


@pytest.mark.slow
def test_two_process_ddp_resumes_from_per_rank_state(tmp_path):
    """Stopped after a step-2 checkpoint (each rank's RNG and stream state in its own files), resumed to step 3."""
    stopped = _torchrun(tmp_path, "--save-steps", "2", "--stop-after", "2")
    assert stopped.returncode != 0 and not (tmp_path / "params.safetensors").exists()
    checkpoint = tmp_path / "checkpoints" / "step_00000002"
    assert {"rng_state_0.json", "rng_state_1.json", "loop_state_0.json", "loop_state_1.json"} <= {
        p.name for p in checkpoint.iterdir()
    }
    resumed = _torchrun(tmp_path, "--save-steps", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert json.loads((tmp_path / "run_info.json").read_text()) == {"num_processes": 2, "step": 3}
    assert max_difference(load_file(str(tmp_path / "params.safetensors")), _single_process_reference(3)) <= 1e-5
