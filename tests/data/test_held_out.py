"""Held out means held out: no held-out task shares a source volume or image with a pretraining task."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from umedpt_hf.data import (
    DEFAULT_HELD_OUT_TASKS,
    DEFAULT_PRETRAINING_TASKS,
    HeldOutOverlapError,
    check_held_out_disjoint,
    task_source_ids,
)

REPO = Path(__file__).resolve().parents[2]


def test_built_database_names_its_sources_and_keeps_held_out_sources_apart(mini_db: Path, mini_tasks):
    manifest = json.loads((mini_db / "tasks.json").read_text())
    declared = {entry["name"]: set(entry["source_ids"]) for entry in manifest["tasks"]}
    for name, task in mini_tasks.items():
        rows = {value for part in task.splits.values() for value in part.unique("source")}
        assert rows and rows <= declared[name], name  # every row's source is declared (labels may add atlases)
    pretraining_sources = set().union(*(declared[name] for name in DEFAULT_PRETRAINING_TASKS))
    for name in DEFAULT_HELD_OUT_TASKS:
        assert declared[name] and not declared[name] & pretraining_sources, name
    assert {"mni152_t1_2009a", "harvard_oxford_cort_atlas"} <= declared["mni152_lobe_cls"]
    assert declared["xray_bodypart_cls"] == {"pydicom:RG1", "pydicom:RG3"}
    checked = check_held_out_disjoint(mini_db, DEFAULT_PRETRAINING_TASKS, DEFAULT_HELD_OUT_TASKS)
    assert set(checked) == set(DEFAULT_PRETRAINING_TASKS) | set(DEFAULT_HELD_OUT_TASKS)
    check_held_out_disjoint(mini_tasks, DEFAULT_PRETRAINING_TASKS, DEFAULT_HELD_OUT_TASKS)  # loaded database too


def test_held_out_tasks_keep_enough_test_examples_per_class(mini_tasks):
    for name in DEFAULT_HELD_OUT_TASKS:
        task = mini_tasks[name]
        counts = [task.splits["test"]["label"].count(index) for index in range(len(task.labels))]
        assert min(counts) >= 30, (name, counts)


def test_a_manifest_that_shares_a_source_is_rejected(mini_db: Path):
    manifest = json.loads((mini_db / "tasks.json").read_text())
    leaky = copy.deepcopy(manifest)
    for entry in leaky["tasks"]:
        if entry["name"] == "modality_cls":
            entry["source_ids"].append("pydicom:RG1")  # e.g. radiograph blocks added to the modality task
    with pytest.raises(HeldOutOverlapError, match=r"'xray_bodypart_cls' shares source\(s\) \['pydicom:RG1'\]"):
        check_held_out_disjoint(leaky, DEFAULT_PRETRAINING_TASKS, DEFAULT_HELD_OUT_TASKS)
    with pytest.raises(HeldOutOverlapError, match="both pretraining and held-out"):
        check_held_out_disjoint(manifest, ["modality_cls"], ["modality_cls"])


def test_tasks_without_source_ids_fall_back_to_the_source_column_or_warn(mini_tasks):
    task = copy.copy(mini_tasks["modality_cls"])
    task.info = {key: value for key, value in task.info.items() if key != "source_ids"}
    assert "colin27_t1" in task_source_ids(task)  # read from the rows' `source` column
    bare = {"name": "user_task", "path": "x"}
    assert task_source_ids(bare) is None
    with pytest.warns(UserWarning, match=r"cannot check .*\['user_task'\]"):
        check_held_out_disjoint({"tasks": [bare, {"name": "held", "source_ids": ["a"]}]}, ["user_task"], ["held"])
    with pytest.raises(ValueError, match="list of strings"):
        task_source_ids({"name": "t", "source_ids": "mni152_t1_2009a"})


def test_pretraining_refuses_a_config_whose_held_out_task_shares_a_source(mini_db: Path, tmp_path: Path, capsys):
    manifest = json.loads((mini_db / "tasks.json").read_text())
    for entry in manifest["tasks"]:
        entry["path"] = str(mini_db / entry["path"])
        if entry["name"] == "modality_cls":
            entry["source_ids"].append("mni152_t1_2009a")
    (tmp_path / "tasks.json").write_text(json.dumps(manifest))
    spec = importlib.util.spec_from_file_location("pretrain_example", REPO / "examples" / "pretrain.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    config = str(REPO / "examples" / "configs" / "tiny.yaml")
    code = script.main(["--config", config, f"data.database={tmp_path}", f"output_dir={tmp_path / 'run'}"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert "'mni152_lobe_cls' shares source(s) ['mni152_t1_2009a'] with pretraining task 'modality_cls'" in lines[0]
    assert not (tmp_path / "run").exists()
