"""Nothing executed: resume reads safetensors and JSON only. A pickle payload planted under every file name a checkpoint
has (and under accelerate's pickle names) is refused or ignored, and never runs; corrupt files are named."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import make_loaders, make_model, parameters_of

from umedpt_hf.training import CheckpointError, MultiTaskTrainer, MultiTaskTrainingArguments, latest_checkpoint

TASKS = ["xray_cls", "ct_seg"]
ACCELERATE_PICKLE_NAMES = ["custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"]


class Payload:
    """Unpickling this creates the marker file (what an attacker's code would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _arguments(output_dir: Path, max_steps: int) -> MultiTaskTrainingArguments:
    return MultiTaskTrainingArguments(
        output_dir=str(output_dir), max_steps=max_steps, save_steps=2, logging_steps=1, learning_rate=1e-3,
        save_total_limit=None, progress_bar=False,
    )  # fmt: skip


def _trainer(output_dir: Path, max_steps: int) -> MultiTaskTrainer:
    return MultiTaskTrainer(make_model(TASKS), make_loaders(TASKS), _arguments(output_dir, max_steps))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A 4-step run with checkpoints at steps 2 and 4 (one torch thread, like the tests that resume it)."""
    root = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _trainer(root, 4).train()
    finally:
        torch.set_num_threads(threads)
    return root


def _copy(run: Path, target: Path) -> Path:
    """A copy of the run as if it had been stopped after step 2; returns its step-2 checkpoint."""
    shutil.copytree(run, target)
    shutil.rmtree(target / "checkpoints" / "step_00000004")
    return latest_checkpoint(target)


def test_checkpoint_has_no_pickle_and_resumes_bit_identically(trained_run, tmp_path):
    checkpoint = latest_checkpoint(trained_run)
    names = sorted(p.name for p in checkpoint.iterdir())
    assert all(name.endswith((".safetensors", ".json")) for name in names), names
    resumed = _trainer(_copy(trained_run, tmp_path / "resumed").parents[1], 4)
    assert resumed.train(resume_from=True).global_step == 4
    expected = load_file(str(trained_run / "final" / "model.safetensors"))
    got = parameters_of(resumed.model)
    assert all(torch.equal(expected[name], got[name]) for name in got)


def _checkpoint_file_names(run: Path) -> list[str]:
    return sorted(p.name for p in latest_checkpoint(run).iterdir())


@pytest.mark.parametrize("name", [*range(8), *ACCELERATE_PICKLE_NAMES])
def test_a_planted_pickle_never_runs(trained_run, tmp_path, name):
    names = _checkpoint_file_names(trained_run)
    assert len(names) == 8  # model, optimizer x2, scheduler, rng x2, loop state, trainer state
    file_name = names[name] if isinstance(name, int) else name
    checkpoint = _copy(trained_run, tmp_path / "run")
    marker = tmp_path / "payload_ran"
    (checkpoint / file_name).write_bytes(pickle.dumps(Payload(marker)))
    trainer = _trainer(tmp_path / "run", 4)
    if file_name in names:  # a file resume reads: refused, naming it
        with pytest.raises((CheckpointError, FileNotFoundError), match=rf"{file_name}|not a umedpt_hf"):
            trainer.train(resume_from=True)
    else:  # a file resume has no reason to read: ignored
        assert trainer.train(resume_from=True).global_step == 4
    assert not marker.exists(), "the pickle payload was executed"


def test_an_accelerate_format_checkpoint_is_refused_naming_its_pickles(trained_run, tmp_path):
    checkpoint = _copy(trained_run, tmp_path / "run")
    state = (checkpoint / "trainer_state.json").read_text().replace('"format": "umedpt_hf.checkpoint/1",', "")
    (checkpoint / "trainer_state.json").write_text(state)
    (checkpoint / "custom_checkpoint_0.pkl").write_bytes(pickle.dumps(Payload(tmp_path / "ran")))
    with pytest.raises(CheckpointError, match=r"pickle files \['custom_checkpoint_0.pkl'\].*never loaded"):
        _trainer(tmp_path / "run", 4).train(resume_from=True)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("file_name", "damage", "phrase"),
    [
        ("model.safetensors", lambda b: b[: len(b) // 2], r"model.safetensors is truncated"),
        ("optimizer.json", lambda b: b"{not json" + b" " * (len(b) - 9), r"optimizer.json is not valid JSON"),
        ("rng_state_0.safetensors", lambda b: b"\0" * len(b), r"rng_state_0.safetensors is not a readable"),
        ("loop_state_0.json", lambda b: b"{}" + b" " * (len(b) - 2), r"loop state is malformed"),
    ],
)
def test_a_corrupt_checkpoint_file_is_named(trained_run, tmp_path, file_name, damage, phrase):
    checkpoint = _copy(trained_run, tmp_path / "run")
    path = checkpoint / file_name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=phrase):
        _trainer(tmp_path / "run", 4).train(resume_from=True)


def test_resume_with_other_tasks_is_refused(trained_run, tmp_path):
    _copy(trained_run, tmp_path / "run")
    args = _arguments(tmp_path / "run", 4)
    trainer = MultiTaskTrainer(make_model(["xray_cls", "cell_det"]), make_loaders(["xray_cls", "cell_det"]), args)
    with pytest.raises(CheckpointError, match=r"does not fit this model|trained on tasks"):
        trainer.train(resume_from=True)
