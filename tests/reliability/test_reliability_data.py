"""Reliability of the data adapters and validation under bad input (the build and the CLI: *_build.py).

Each case names the problem (class + phrase) or checks the correct result of a valid edge case, and nothing outside
the case's out/ folder changes (`run_case`). Inputs are written by `data_inputs`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from data_inputs import (
    PLAIN_FEATURES,
    coco_file,
    dataset,
    grey,
    image_folder,
    mask_folder,
    medmnist_file,
    rows,
    sixteen_bit_masks,
    tasks_file,
    with_row,
)
from reliability_cases import Case, case_id, run_case

from umedpt_hf.data import (
    TaskSchemaError,
    from_coco,
    from_hf_dataset,
    from_image_folder,
    from_mask_folder,
    from_medmnist_npz,
    load_task_database,
)

ABC = ["a", "b", "c"]


def adapt(task_type: str, data, **options):
    """Adapt ``data`` (a Dataset given as train, validation and test, so that its row numbers stay)."""
    splits = {"train": data, "validation": data, "test": data}
    return lambda folder, prepared: from_hf_dataset(splits, task_type, labels=options.pop("labels", ABC), **options)


def late_bad_box(box: list[float]):
    data = rows("detection")
    data["objects"][5] = {"bbox": [box], "category": [0]}
    return dataset("detection", data)


def missing_images(folder: Path) -> dict:
    data = dataset("x", {"image": [str(folder / "gone.png")] * 2, "label": [0, 1]}, PLAIN_FEATURES["class3"])
    return {"train": data, "validation": data, "test": data}


def checked_clip(result, folder: Path) -> None:
    boxes = result.splits["train"][5]["objects"]["bbox"]
    assert boxes == [[10.0, 12.0, 6.0, 4.0]]


CASES = [
    # ---- generic adapter (a user's Dataset / Hub data / saved folder): every row is checked, not the first few
    Case(
        "missing label column",
        adapt("classification", dataset("x", {"image": [grey()] * 6}, PLAIN_FEATURES["image_only"])),
        error=TaskSchemaError,
        phrase=r"column 'label': missing",
    ),
    Case(
        "label value not a class",
        adapt("classification", dataset("x", {"image": [grey()] * 3, "label": [0, 1, 7]}, PLAIN_FEATURES["int32"])),
        error=ValueError,
        phrase=r"value 7 is not a class",
    ),
    Case(
        "empty train split",
        adapt("classification", dataset("classification", {"image": [], "label": []})),
        error=TaskSchemaError,
        phrase=r"split 'train': is empty",
    ),
    Case(
        "multilabel target 5.0 in a late row",
        adapt("multilabel", with_row("multilabel", 5, "labels", [5.0, 0, 1])),
        error=TaskSchemaError,
        phrase=r"row \d+, column 'labels': values must be 0 or 1.*5\.0",
    ),
    Case(
        "multilabel target -1",
        adapt("multilabel", with_row("multilabel", 3, "labels", [0, -1.0, 1])),
        error=TaskSchemaError,
        phrase=r"values must be 0 or 1",
    ),
    Case(
        "multilabel vector of the wrong length",
        adapt("multilabel", with_row("multilabel", 4, "labels", [1.0, 0.0])),
        error=TaskSchemaError,
        phrase=r"length 3 expected, got 2",
    ),
    Case(
        "16-bit mask value 300 does not wrap",
        adapt("segmentation", sixteen_bit_masks(300)),
        error=TaskSchemaError,
        phrase=r"column 'mask': mask values \[300\] outside the 3 classes",
    ),
    Case(
        "16-bit mask value 255 is ignore",
        adapt("segmentation", sixteen_bit_masks(255)),
        check=lambda task, folder: np.asarray(task.splits["train"][0]["mask"]).dtype == np.uint16,
    ),
    Case(
        "mask smaller than its image",
        adapt("segmentation", with_row("segmentation", 5, "mask", np.zeros((8, 8), np.uint8))),
        error=TaskSchemaError,
        phrase=r"row \d+, column 'mask': mask size \(8, 8\) differs",
    ),
    Case(
        "zero-width box in row 5",
        adapt("detection", late_bad_box([3, 3, 0, 4])),
        error=TaskSchemaError,
        phrase=r"row \d+, column 'objects.bbox': box .* w, h > 0",
    ),
    Case(
        "box partly outside the image",
        adapt("detection", late_bad_box([10, 12, 9, 4])),
        error=TaskSchemaError,
        phrase=r"outside the 16x16 image",
    ),
    Case(
        "NaN box",
        adapt("detection", late_bad_box([float("nan"), 1, 2, 2])),
        error=TaskSchemaError,
        phrase=r"not finite",
    ),
    Case(
        "box category beyond the classes",
        adapt(
            "detection",
            with_row("detection", 5, "objects", {"bbox": [[1, 1, 2, 2]], "category": [2]}),
            labels=["a", "b"],
        ),
        error=(TaskSchemaError, ValueError),
        phrase=r"class index 2 outside 0..1|category",
    ),
    Case(
        "boxes clipped only when asked, with a count",
        adapt("detection", late_bad_box([10, 12, 9, 4]), clip_boxes=True),
        check=checked_clip,
    ),
    Case(
        "xyxy boxes converted",
        adapt("detection", late_bad_box([1, 2, 5, 9]), bbox_format="xyxy"),
        check=lambda task, folder: task.splits["train"][5]["objects"]["bbox"] == [[1.0, 2.0, 4.0, 7.0]],
    ),
    Case(
        "int32 labels are class indices",
        adapt("classification", dataset("x", rows("classification"), PLAIN_FEATURES["int32"])),
        check=lambda task, folder: task.splits["train"].features["label"].names == ABC,
    ),
    Case(
        "bool labels against named classes",
        adapt(
            "classification",
            dataset("x", {"image": [grey()] * 6, "label": [True, False] * 3}, PLAIN_FEATURES["bool"]),
            labels=["x", "y"],
        ),
        error=ValueError,
        phrase=r"value True is not a class",
    ),
    Case(
        "image path that does not exist",
        lambda f, p: from_hf_dataset(missing_images(f), "classification", labels=ABC),
        error=(TaskSchemaError, FileNotFoundError),
        phrase=r"gone\.png",
    ),
    Case(
        "unknown task type",
        adapt("regression", dataset("classification", rows("classification"))),
        error=ValueError,
        phrase=r"unknown task type 'regression'",
    ),
    Case(
        "unknown split name",
        lambda f, p: from_hf_dataset({"holdout": dataset("classification", rows("classification"))}, "classification"),
        error=ValueError,
        phrase=r"unknown split name 'holdout'",
    ),
    Case(
        "saved folder adapted without cache files beside it",
        prepare=lambda f: late_bad_box([1, 2, 5, 9]).save_to_disk(str(f / "saved")),
        action=lambda f, p: from_hf_dataset(str(f / "saved"), "detection", labels=ABC, bbox_format="xyxy"),
        check=lambda task, folder: len(task.splits["train"]) > 0,
    ),
    # ---- image folders, mask folders, COCO, MedMNIST
    Case(
        "single-class image folder",
        prepare=lambda f: image_folder(f / "derm", ["nevus"]),
        action=lambda f, p: from_image_folder(p),
        error=ValueError,
        phrase=r"one class sub-folder \('nevus'\).*at least two classes",
    ),
    Case(
        "image folder missing",
        lambda f, p: from_image_folder(f / "nowhere"),
        error=FileNotFoundError,
        phrase=r"nowhere.*does not exist",
    ),
    Case(
        "two-class image folder",
        prepare=lambda f: image_folder(f / "derm", ["mel", "nevus"], 5),
        action=lambda f, p: from_image_folder(p),
        check=lambda task, folder: task.labels == ["mel", "nevus"],
    ),
    Case(
        "mask folder with an unpaired image",
        prepare=lambda f: mask_folder(f / "m", drop_mask=True),
        action=lambda f, p: from_mask_folder(p, ["bg", "fg"]),
        error=ValueError,
        phrase=r"do not pair up.*case2",
    ),
    Case(
        "mask value beyond the labels in the last mask",
        prepare=lambda f: mask_folder(f / "m", count=6, bad_value=9),
        action=lambda f, p: from_mask_folder(p, ["bg", "fg"]),
        error=TaskSchemaError,
        phrase=r"mask values \[9\] outside the 2 classes",
    ),
    Case(
        "COCO annotation without bbox",
        prepare=lambda f: coco_file(f, {"id": 2, "image_id": 1, "category_id": 7}),
        action=lambda f, p: from_coco(p),
        error=ValueError,
        phrase=r"coco\.json: annotations\[1\] lacks \['bbox'\]",
    ),
    Case(
        "COCO top level is a list",
        prepare=lambda f: coco_file(f, content=[1, 2]),
        action=lambda f, p: from_coco(p),
        error=ValueError,
        phrase=r"coco\.json: the top level must be an object",
    ),
    Case(
        "COCO bbox of three numbers",
        prepare=lambda f: coco_file(f, {"id": 2, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3]}),
        action=lambda f, p: from_coco(p),
        error=ValueError,
        phrase=r"bbox must be 4 numbers",
    ),
    Case(
        "COCO annotation of an unknown image",
        prepare=lambda f: coco_file(f, {"id": 2, "image_id": 9, "category_id": 7, "bbox": [1, 1, 2, 2]}),
        action=lambda f, p: from_coco(p),
        error=ValueError,
        phrase=r"annotation 2 refers to an unknown image",
    ),
    Case(
        "COCO box outside its image",
        prepare=lambda f: coco_file(f, {"id": 2, "image_id": 1, "category_id": 7, "bbox": [12, 12, 8, 8]}),
        action=lambda f, p: from_coco({"train": p, "validation": p, "test": p}),
        error=TaskSchemaError,
        phrase=r"row 1, column 'objects.bbox'.*outside the 16x16 image",
    ),
    Case(
        "COCO image file missing",
        prepare=lambda f: coco_file(f, image=False),
        action=lambda f, p: from_coco(p),
        error=FileNotFoundError,
        phrase=r"img0\.png does not exist",
    ),
    Case(
        "COCO file that is not JSON",
        prepare=lambda f: (f / "c.json").write_text("{images"),
        action=lambda f, p: from_coco(f / "c.json"),
        error=ValueError,
        phrase=r"c\.json is not valid JSON",
    ),
    Case(
        "MedMNIST file lacking test labels",
        prepare=lambda f: medmnist_file(f, drop="test_labels"),
        action=lambda f, p: from_medmnist_npz(p),
        error=ValueError,
        phrase=r"lacks arrays \['test_labels'\]",
    ),
    Case(
        "MedMNIST 3D volumes",
        prepare=lambda f: medmnist_file(f, shape=(4, 2, 8, 8)),
        action=lambda f, p: from_medmnist_npz(p),
        error=ValueError,
        phrase=r"only 2D",
    ),
    Case(
        "MedMNIST file that is not an npz",
        prepare=lambda f: (f / "x.npz").write_text("no zip"),
        action=lambda f, p: from_medmnist_npz(f / "x.npz"),
        error=ValueError,
        phrase=r"x\.npz.*not a readable \.npz",
    ),
    Case(
        "MedMNIST file loads",
        prepare=lambda f: medmnist_file(f),
        action=lambda f, p: from_medmnist_npz(p),
        check=lambda task, folder: task.split_sizes() == {"train": 4, "validation": 4, "test": 4},
    ),
    # ---- task databases (tasks.json)
    Case(
        "tasks.json whose top level is a list",
        prepare=lambda f: tasks_file(f / "db", [{"name": "x"}]),
        action=lambda f, p: load_task_database(p),
        error=ValueError,
        phrase=r"tasks\.json: the top level must be an object",
    ),
    Case(
        "tasks.json entry without a name",
        prepare=lambda f: tasks_file(f / "db", {"tasks": [{"path": "x"}]}),
        action=lambda f, p: load_task_database(p),
        error=ValueError,
        phrase=r"tasks\[0\] must be an object with a 'name'",
    ),
    Case(
        "tasks.json entry of an unknown format",
        prepare=lambda f: tasks_file(f / "db", {"tasks": [{"name": "t", "path": "t", "format": "dicomdir"}]}),
        action=lambda f, p: load_task_database(p),
        error=ValueError,
        phrase=r"unknown format 'dicomdir'",
    ),
]


def test_case_table_is_distinct():
    assert len({case.id for case in CASES}) == len(CASES) >= 35


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_data_reliability(case: Case, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_case(case, tmp_path)


def test_clipping_counts_what_it_changed() -> None:
    data = late_bad_box([10, 12, 9, 4])
    data = data.map(lambda row, i: {"objects": {"bbox": [[-9, 0, 4, 4]], "category": [1]}} if i == 0 else {},
                    with_indices=True)  # fmt: skip
    with pytest.warns(UserWarning, match=r"clipped 3 boxes to their image and dropped 3 with no area"):
        task = from_hf_dataset(
            {"train": data, "test": data, "validation": data}, "detection", labels=ABC, clip_boxes=True
        )
    assert task.splits["train"][0]["objects"]["bbox"] == [] and len(task.splits["train"]) == 6
