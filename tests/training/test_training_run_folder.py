"""Never lose a run: another run's folder is refused, --overwrite deletes only what the package wrote, one live run per
folder (stale locks taken over), exports renamed into place."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest
from training_helpers import make_loaders, make_model

from umedpt_hf.training import MultiTaskTrainer, MultiTaskTrainingArguments, OutputDirError, list_checkpoints
from umedpt_hf.training.run_folder import LOCK, MANIFEST

TASKS = ["xray_cls"]


def _train(output_dir, resume=None, **options):
    settings = {"max_steps": 2, "save_steps": 1, "save_total_limit": None, "progress_bar": False, **options}
    args = MultiTaskTrainingArguments(output_dir=str(output_dir), **settings)
    return MultiTaskTrainer(make_model(TASKS), make_loaders(TASKS), args).train(resume_from=resume)


def _hashes(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_a_fresh_run_refuses_a_folder_with_another_run_and_changes_nothing(tmp_path):
    _train(tmp_path)
    before = _hashes(tmp_path)
    with pytest.raises(OutputDirError, match=r"already holds a training run \(2 checkpoint\(s\), newest step_00000002"):
        _train(tmp_path, max_steps=5)
    assert _hashes(tmp_path) == before  # nothing deleted, nothing overwritten, no lock left behind


def test_overwrite_deletes_only_the_files_the_run_wrote(tmp_path):
    _train(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "final" / "README.md").write_text("my notes on the model")
    before = _hashes(tmp_path)
    with pytest.raises(OutputDirError, match=r"final holds files umedpt_hf did not write \(\['final/README.md'\]"):
        _train(tmp_path, overwrite_output_dir=True)
    assert _hashes(tmp_path) == before  # refused before anything was deleted
    (tmp_path / "final" / "README.md").unlink()
    with pytest.warns(UserWarning, match=r"--overwrite kept 1 file\(s\) the package did not write: \['notes.txt'\]"):
        result = _train(tmp_path, overwrite_output_dir=True, max_steps=3, save_steps=3)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003"]  # the old run's are gone
    assert result.final == tmp_path / "final" and (tmp_path / "final" / "model.safetensors").is_file()
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert "notes.txt" not in manifest["files"] and "final/model.safetensors" in manifest["files"]


def test_resume_continues_and_needs_a_run(tmp_path):
    with pytest.raises(OutputDirError, match="holds no training run to continue"):
        _train(tmp_path / "empty", resume=True)
    assert not (tmp_path / "empty").exists()
    _train(tmp_path, max_steps=2)
    result = _train(tmp_path, resume=True, max_steps=4)
    assert result.global_step == 4
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step_00000004"


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    lock = tmp_path / LOCK
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}))
    with pytest.raises(OutputDirError, match=rf"in use by another training run \(pid {os.getpid()}"):
        _train(tmp_path)
    assert lock.is_file()  # the other run's lock stays

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname(), "since": "earlier"}))
    with pytest.warns(UserWarning, match=rf"stale lock of pid {int(gone.stdout)}"):
        result = _train(tmp_path)
    assert result.global_step == 2 and not lock.exists()  # released at the end


def test_checkpoint_rotation_and_exports_touch_only_the_runs_files(tmp_path):
    _train(tmp_path, max_steps=4, save_steps=1, save_total_limit=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003", "step_00000004"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*")) and not list(tmp_path.glob(".tmp*"))
    assert not list(tmp_path.glob(".old*"))
    foreign = tmp_path / "checkpoints" / "step_00000003" / "my_analysis.csv"
    foreign.write_text("kept")
    _train(tmp_path, resume=True, max_steps=6, save_steps=1, save_total_limit=1)
    assert foreign.read_text() == "kept"  # the rotated checkpoint's own files went, the user's file stayed
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "step_00000003").iterdir()) == ["my_analysis.csv"]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000006"]
