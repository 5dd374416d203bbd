"""Reliability of pretraining (`examples/pretrain.py` and `MultiTaskTrainer`): bad configs, another run's folder,
locks, planted pickles, corrupt checkpoints, signals and NaN losses. Each case: the error class and a phrase naming
the problem (CLI: exit code 2 and one line on stderr), and no file outside the case's `out/` changed."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pickle
import shutil
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from reliability_cases import Case, case_id, run_case

from umedpt_hf.training import (
    CheckpointError,
    MultiTaskTrainer,
    MultiTaskTrainingArguments,
    NonFiniteLossError,
    TrainingInterrupted,
    latest_checkpoint,
)

PRETRAIN = Path(__file__).parents[2] / "examples" / "pretrain.py"


class CliError(Exception):
    """`examples/pretrain.py` exited with code 2 and exactly one line on stderr (the message is that line)."""


def pretrain(argv: list[str]) -> dict:
    """Run the pretraining CLI in-process; bad input must give exit code 2 and one stderr line (raised as CliError)."""
    spec = importlib.util.spec_from_file_location("pretrain_cli", PRETRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = module.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    if code == 2:
        assert len(lines) == 1, f"expected one line on stderr, got {lines}"
        raise CliError(lines[0])
    assert code == 0, f"exit code {code}: {stderr.getvalue()[-2000:]}"
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ inputs
def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (32, 32), dtype=np.uint8) for _ in range(count)]


def _write_database(root: Path, empty_train: bool = False) -> Path:
    rng = np.random.default_rng(1)
    masks = [rng.integers(0, 2, (32, 32), np.uint8) for _ in range(8)]
    tasks = {
        "cls": ("classification", ["a", "b"], {"label": (ClassLabel(names=["a", "b"]), [0, 1] * 4)}),
        "seg": ("segmentation", ["bg", "fg"], {"mask": (Image(), masks)}),
    }
    entries = []
    for name, (kind, labels, columns) in tasks.items():
        features = Features({"image": Image(), **{column: feature for column, (feature, _) in columns.items()}})
        split = Dataset.from_dict({"image": _images(8), **{c: v for c, (_, v) in columns.items()}}, features=features)
        empty = Dataset.from_dict({column: [] for column in features}, features=features)
        train = empty if empty_train and name == "cls" else split
        DatasetDict({"train": train, "validation": split, "test": split}).save_to_disk(str(root / name))
        entries.append(
            {"name": name, "type": kind, "labels": labels, "modality": "ct", "path": name, "source_ids": [name]}
        )
    (root / "tasks.json").write_text(json.dumps({"database": "reliability", "version": 1, "tasks": entries}))
    return root


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    return _write_database(tmp_path_factory.mktemp("database"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, database) -> Path:
    """A finished 2-step run (checkpoints at steps 1 and 2), copied into the cases that need one."""
    root = tmp_path_factory.mktemp("trained") / "run"
    pretrain(["--config", str(_config(root.parent, database, root)), "training.max_steps=2"])
    return root


def _config(folder: Path, database: Path, output_dir: Path, **changes) -> Path:
    raw = {
        "output_dir": str(output_dir),
        "model": {"preset": "tiny"},
        "data": {"database": str(database), "image_size": 32, "batch_size": 4},
        "tasks": ["cls", "seg"],
        "training": {"max_steps": 2, "save_steps": 1, "save_total_limit": None, "progress_bar": False,
                     "learning_rate": 1e-3},
    }  # fmt: skip
    for dotted, value in changes.items():
        *sections, key = dotted.split("__")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def config_case(id: str, phrase: str, text: str | None = None, **changes) -> Case:
    """A CLI case whose config (YAML text, or the valid config with `section__key=value` changes) is bad."""

    def prepare(folder: Path) -> Path:
        if text is not None:
            (folder / "config.yaml").write_text(text)
            return folder / "config.yaml"
        return _config(folder, DATABASE[0], folder / "out" / "run", **changes)

    return Case(id, action=lambda folder, config: pretrain(["--config", str(config)]), prepare=prepare,
                error=CliError, phrase=phrase)  # fmt: skip


DATABASE: list[Path] = []  # filled by the module fixture before the cases run
TRAINED: list[Path] = []


def with_run(folder: Path, inside_out: bool = False) -> Path:
    """A copy of the finished run: outside `out/` (so that the case proves it unchanged) or inside (valid cases)."""
    run = folder / "out" / "run" if inside_out else folder / "run"
    shutil.copytree(TRAINED[0], run)
    return _config(folder, DATABASE[0], run)


def plant(name: str, payload: bytes, inside_out: bool = False):
    def prepare(folder: Path) -> Path:
        config = with_run(folder, inside_out)
        run = folder / "out" / "run" if inside_out else folder / "run"
        (latest_checkpoint(run) / name).write_bytes(payload)
        return config

    return prepare


class Payload:
    def __reduce__(self):
        return (open, ("payload_ran", "w"))  # relative: inside the case folder, where the snapshot would see it


def resume(folder: Path, config: Path, *extra: str) -> dict:
    with contextlib.chdir(folder):
        return pretrain(["--config", str(config), "--resume", "training.max_steps=3", *extra])


def lock_by(pid: int, inside_out: bool = False):
    def prepare(folder: Path) -> Path:
        config = with_run(folder, inside_out)
        lock = {"pid": pid, "host": socket.gethostname(), "since": "now"}
        (folder / "out" / "run" if inside_out else folder / "run").joinpath(".umedpt_run.lock").write_text(
            json.dumps(lock)
        )
        return config

    return prepare


def train_api(folder: Path, callback=None, poison: bool = False, **options):
    """A run through `MultiTaskTrainer` on the database (for faults a config cannot make)."""
    from umedpt_hf.training.config import load_pretrain_config
    from umedpt_hf.training.pipeline import build_model_and_processor, build_task_loaders, load_database

    config = load_pretrain_config(_config(folder / "out", DATABASE[0], folder / "out" / "run"))
    database = load_database(config)
    model, _ = build_model_and_processor(config, database)
    if poison:
        model.heads["seg"].classifier.weight.data.fill_(float("nan"))
    args = MultiTaskTrainingArguments(output_dir=str(folder / "out" / "run"), progress_bar=False, **options)
    loaders = build_task_loaders(config, database, model.config)
    return MultiTaskTrainer(model, loaders, args, callbacks=[callback] if callback else []).train()


def sigterm_at_step_two(trainer, step, losses) -> None:
    if step == 2:
        os.kill(os.getpid(), signal.SIGTERM)


def _dead_pid() -> int:
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)


def _file(path: Path) -> Path:
    path.write_text("a file where the run folder should go")
    return path


def _mkdir_out(folder: Path) -> None:
    (folder / "out").mkdir()


CASES = [
    config_case("bad YAML", r"not valid YAML", text="tasks: [cls, seg\n"),
    config_case("a list at the top level", r"must be a mapping, got list", text="- cls\n- seg\n"),
    config_case("empty config file", r"tasks must be a non-empty list", text=""),
    config_case("unknown top-level key", r"unknown key\(s\) \['optimiser'\]", optimiser={}),
    config_case("unknown training key", r"unknown key\(s\) \['max_step'\] in training", training__max_step=3),
    config_case("fp16 on a CPU", r"fp16 has no effect on a CPU", training__mixed_precision="fp16", training__cpu=True),
    config_case("unknown model override", r"\['fpn_channel'\] in model.overrides", model__overrides={"fpn_channel": 8}),
    config_case("batch size 0", r"data.batch_size must be a positive integer", data__batch_size=0),
    config_case("image size not a multiple of 32", r"multiple of 32", data__image_size=50),
    config_case("empty task list", r"tasks must be a non-empty list", tasks=[]),
    config_case("learning rate is text", r"training.learning_rate must be a number", training__learning_rate="fast"),
    config_case("tracker not installed", r"wandb is not installed", training__report_to=["wandb"]),
    config_case("early stopping without validation", r"needs validation", training__early_stopping_patience=2),
    config_case("negative worker count", r"num_workers must be an integer >= 0", data__num_workers=-1),
    config_case("held-out task also trained", r"both pretraining tasks and held_out_tasks", held_out_tasks=["cls"]),
    config_case("unknown task", r"unknown task\(s\) \['chest'\]", tasks=["cls", "chest"]),
    config_case("missing database", r"no task database at .*umedpt data build", data__database="/nonexistent/db"),
    config_case(
        "validation split missing",
        r"no \(or an empty\) validation split 'val'",
        training__eval_steps=1,
        data__eval_split="val",
    ),
    Case(
        "missing config file",
        action=lambda f, _: pretrain(["--config", str(f / "absent.yaml")]),
        error=CliError,
        phrase=r"config file .*absent.yaml does not exist",
    ),
    Case(
        "malformed override",
        action=lambda f, c: pretrain(["--config", str(c), "max_steps"]),
        prepare=lambda f: _config(f, DATABASE[0], f / "out" / "run"),
        error=CliError,
        phrase=r"section\.key=value",
    ),
    Case(
        "empty train split",
        prepare=lambda f: _config(f, _write_database(f / "db", empty_train=True), f / "out"),
        action=lambda f, c: pretrain(["--config", str(c)]),
        error=CliError,
        phrase=r"task 'cls'(: split 'train' is empty| of the database .* could not be read.*no split is empty)",
    ),
    Case(
        "output_dir holds another run",
        prepare=with_run,
        action=lambda f, c: pretrain(["--config", str(c)]),
        error=CliError,
        phrase=r"already holds a training run .*--resume.*--overwrite",
    ),
    Case(
        "output_dir is a file",
        prepare=lambda f: _config(f, DATABASE[0], _file(f / "taken")),
        action=lambda f, c: pretrain(["--config", str(c)]),
        error=CliError,
        phrase=r"output_dir .*taken is a file, not a folder",
    ),
    Case(
        "output_dir where nothing may be written",  # root ignores file modes: sysfs refuses even root
        prepare=lambda f: _config(f, DATABASE[0], Path("/sys/umedpt_reliability_run")),
        action=lambda f, c: pretrain(["--config", str(c)]),
        error=CliError,
        phrase=r"cannot write to output_dir /sys/umedpt_reliability_run: Operation not permitted",
    ),
    Case(
        "--resume with nothing to resume",
        prepare=lambda f: _config(f, DATABASE[0], f / "out" / "run"),
        action=lambda f, c: pretrain(["--config", str(c), "--resume"]),
        error=CliError,
        phrase=r"no complete checkpoint",
    ),
    Case(
        "--resume and --overwrite together",
        prepare=with_run,
        error=CliError,
        phrase=r"not allowed with",
        action=lambda f, c: pretrain(["--config", str(c), "--resume", "--overwrite"]),
    ),
    Case(
        "folder locked by a live run",
        prepare=lock_by(os.getpid()),
        action=lambda f, c: resume(f, c),
        error=CliError,
        phrase=rf"in use by another training run \(pid {os.getpid()}",
    ),
    Case(
        "planted pickle as model.safetensors",
        prepare=plant("model.safetensors", pickle.dumps(Payload())),
        action=resume,
        error=CliError,
        phrase=r"model.safetensors is truncated or replaced",
    ),
    Case(
        "planted pickle as trainer_state.json",
        prepare=plant("trainer_state.json", pickle.dumps(Payload())),
        action=resume,
        error=CliError,
        phrase=r"trainer_state.json is not valid JSON",
    ),
    Case(
        "planted accelerate custom_checkpoint_0.pkl is never read",
        action=resume,
        check=lambda r, f: _resumed(r, f),
        prepare=plant("custom_checkpoint_0.pkl", pickle.dumps(Payload()), inside_out=True),
    ),
    Case(
        "truncated optimizer state",
        prepare=plant("optimizer.safetensors", b"\x00" * 7),
        action=resume,
        error=CliError,
        phrase=r"optimizer.safetensors is truncated or replaced",
    ),
    Case(
        "resume with other tasks",
        prepare=with_run,
        error=CliError,
        phrase=r"does not fit this model|trained on tasks",
        action=lambda f, c: resume(f, c, "tasks=[cls]"),
    ),
    Case(
        "stale lock is taken over",
        prepare=lock_by(_dead_pid(), inside_out=True),
        action=resume,
        check=lambda result, f: _resumed(result, f),
    ),
    Case(
        "SIGTERM mid-run saves a checkpoint",
        prepare=_mkdir_out,
        error=TrainingInterrupted,
        phrase=r"stopped by SIGTERM at step 2 of 5; checkpoint .*step_00000002 is complete",
        action=lambda f, _: train_api(f, sigterm_at_step_two, max_steps=5, save_steps=0),
    ),
    Case(
        "a NaN loss stops before the step",
        prepare=_mkdir_out,
        error=NonFiniteLossError,
        phrase=r"loss of task 'seg' is nan at training step 1",
        action=lambda f, _: train_api(f, poison=True, max_steps=2, save_steps=0),
    ),
    Case(
        "checkpoint folder of another format",
        prepare=plant("trainer_state.json", b'{"step": 1, "files": {}}'),
        action=lambda f, c: _api_resume(f),
        error=CheckpointError,
        phrase=r"not a umedpt_hf .* checkpoint",
    ),
]


def _api_resume(folder: Path):
    from umedpt_hf.training.config import load_pretrain_config
    from umedpt_hf.training.pipeline import run_pretraining

    return run_pretraining(load_pretrain_config(folder / "config.yaml"), resume=True)


def _resumed(result: dict, folder: Path) -> None:
    assert result["step"] == 3 and not (folder / "payload_ran").exists()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_reliability(case, tmp_path, database, trained, monkeypatch):
    """`run_case`: the error and its phrase (or the result), and no file outside `out/` changed."""
    DATABASE[:] = [database]
    TRAINED[:] = [trained]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_case(case, tmp_path / "case")
