"""Building umedpt-mini from the installed sources: contents, coverage, spatial disjointness, missing sources, CLI."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from umedpt_hf.data import DEFAULT_HELD_OUT_TASKS, build_database, load_task_database
from umedpt_hf.data.sources import SOURCES, locate_source

ENTRY_KEYS = {"name", "type", "modality", "labels", "splits", "source", "licence", "label_origin", "path", "held_out"}


def test_manifest_covers_types_modalities_and_nonempty_splits(mini_db: Path):
    manifest = json.loads((mini_db / "tasks.json").read_text())
    tasks = manifest["tasks"]
    assert len(tasks) >= 6
    assert {t["type"] for t in tasks} == {"classification", "multilabel", "segmentation", "detection"}
    assert {"ct", "mri", "microscopy", "xray"} <= {t["modality"] for t in tasks}
    for entry in tasks:
        assert set(entry) >= ENTRY_KEYS, entry["name"]
        assert all(entry["splits"][split] > 0 for split in ("train", "validation", "test")), entry["name"]
        assert (mini_db / entry["path"] / "dataset_dict.json").is_file()
    assert manifest["held_out_tasks"] == list(DEFAULT_HELD_OUT_TASKS)


def test_held_out_tasks_suit_the_data_scarcity_evaluation(mini_tasks):
    modalities = set()
    for name in DEFAULT_HELD_OUT_TASKS:
        task = mini_tasks[name]
        modalities.add(task.modality)
        assert task.type == "classification"
        assert len(task.splits["test"]) >= 40
        for split in ("train", "test"):
            counts = Counter(task.splits[split]["label"])
            assert len(counts) >= 2 and min(counts.values()) >= 5, (name, split, counts)
    assert "mri" in modalities or "ct" in modalities
    assert modalities & {"xray", "microscopy"}


def _boxes_overlap(a: list[int], b: list[int]) -> bool:
    return all(a[2 * k] < b[2 * k + 1] and b[2 * k] < a[2 * k + 1] for k in range(3))


def test_splits_are_spatially_disjoint_within_and_across_tasks(mini_tasks):
    regions: dict[str, dict[str, list]] = {}
    for task in mini_tasks.values():
        for split, data in task.splits.items():
            for source, region in zip(data["source"], data["region"]):
                regions.setdefault(source, {}).setdefault(split, []).append(region)
    assert len(regions) >= 6
    for source, by_split in regions.items():
        for first, second in itertools.combinations(sorted(by_split), 2):
            a, b = np.array(by_split[first]), np.array(by_split[second])
            # all pairs at once: boxes overlap iff they overlap on all three axes
            overlap = np.ones((len(a), len(b)), bool)
            for k in range(3):
                overlap &= (a[:, None, 2 * k] < b[None, :, 2 * k + 1]) & (b[None, :, 2 * k] < a[:, None, 2 * k + 1])
            assert not overlap.any(), f"{source}: {first} and {second} regions overlap"


def test_region_overlap_helper_sees_overlaps():
    assert _boxes_overlap([0, 1, 0, 10, 0, 10], [0, 1, 5, 15, 5, 15])
    assert not _boxes_overlap([0, 1, 0, 10, 0, 10], [1, 2, 0, 10, 0, 10])


def test_values_are_kept_exactly(mini_tasks):
    ct = np.asarray(mini_tasks["head_ct_tissue_seg"].splits["train"][10]["image"])
    assert ct.min() == -1024 and ct.max() > 1000  # int16 HU (PIL mode I)
    xray = np.asarray(mini_tasks["xray_bodypart_cls"].splits["test"][0]["image"])
    assert xray.dtype == np.uint16 and xray.max() > 255


def test_pretraining_reads_the_database_through_the_generic_adapter(mini_db, monkeypatch):
    import umedpt_hf.data.loaders as loaders

    calls = []
    original = loaders.from_hf_dataset

    def spy(data, task_type, **kwargs):
        calls.append(kwargs["name"])
        return original(data, task_type, **kwargs)

    monkeypatch.setattr(loaders, "from_hf_dataset", spy)
    tasks = load_task_database(mini_db, exclude=DEFAULT_HELD_OUT_TASKS)
    assert set(tasks).isdisjoint(DEFAULT_HELD_OUT_TASKS) and len(tasks) >= 6
    assert sorted(calls) == sorted(tasks)
    with pytest.raises(ValueError, match="unknown task"):
        load_task_database(mini_db, tasks=["no_such_task"])
    with pytest.raises(FileNotFoundError, match="umedpt data build"):
        load_task_database(mini_db / "missing")


def test_missing_source_is_skipped_with_install_hint(tmp_path: Path):
    messages: list[str] = []

    def without_mricron(name: str):
        return None if name == "mricron" else locate_source(name)

    manifest = build_database(
        tmp_path,
        only=["colin27_lobe_seg", "head_ct_tissue_seg", "xray_bodypart_cls"],
        locate=without_mricron,
        progress=False,
        echo=messages.append,
    )
    assert [t["name"] for t in manifest["tasks"]] == ["head_ct_tissue_seg", "xray_bodypart_cls"]
    assert "colin27_lobe_seg" in manifest["skipped"]
    skip_lines = [m for m in messages if "colin27_lobe_seg" in m]
    assert len(skip_lines) == 1 and "apt-get install mricron-data" in skip_lines[0]
    assert not (tmp_path / "colin27_lobe_seg").exists()
    assert set(load_task_database(tmp_path)) == {"head_ct_tissue_seg", "xray_bodypart_cls"}


def test_no_source_at_all_fails_clearly(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no offline image source is installed") as error:
        build_database(tmp_path, locate=lambda name: None, progress=False, echo=lambda m: None)
    for source in SOURCES.values():
        assert source.install_hint in str(error.value)
    assert not (tmp_path / "tasks.json").exists()


def test_unknown_task_name(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown task"):
        build_database(tmp_path, only=["brain_tumour"], progress=False)


def test_cli_build_and_list(tmp_path: Path, capsys):
    from umedpt_hf.cli.main import main

    assert main(["data", "build", "--out", str(tmp_path), "--only", "dsb2018_nuclei_det", "--no-progress"]) == 0
    assert "dsb2018_nuclei_det" in capsys.readouterr().out
    assert main(["data", "build", "--out", str(tmp_path), "--only", "xray_bodypart_cls", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["data", "list", str(tmp_path)]) == 0  # a partial rebuild keeps the tasks built before
    listing = capsys.readouterr().out
    assert "dsb2018_nuclei_det" in listing and "xray_bodypart_cls" in listing and "(held out)" in listing
    assert main(["data", "list", str(tmp_path / "nothing")]) == 2
