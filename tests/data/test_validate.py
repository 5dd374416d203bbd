"""The validator: canonical datasets pass; every broken column gives a ValueError naming the task and the column."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

from umedpt_hf.data import TaskSchemaError, make_spec, task_features, validate_task_dataset


def _grey(seed: int = 0, size: int = 16, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, (size, size)).astype(dtype)


def _dataset(task_type: str, class_names: list[str], **rows) -> Dataset:
    return Dataset.from_dict(rows, features=task_features(task_type, class_names))


def test_canonical_datasets_of_each_type_pass():
    labels = ["a", "b"]
    cases = {
        "classification": {"image": [_grey()], "label": [1]},
        "multilabel": {"image": [_grey()], "labels": [[1.0, 0.0]]},
        "segmentation": {"image": [_grey()], "mask": [np.ones((16, 16), np.uint8)]},
        "detection": {
            "image": [_grey(), _grey(1)],
            "objects": [{"bbox": [[1, 2, 3, 4]], "category": [1]}, {"bbox": [], "category": []}],
        },
    }
    for task_type, rows in cases.items():
        data = DatasetDict({"train": _dataset(task_type, labels, **rows)})
        validate_task_dataset(data, make_spec(task_type, labels, "mri"), task_type)


def test_int16_hounsfield_units_survive_the_image_feature():
    hu = np.array([[-1024, -500], [0, 3071]], dtype=np.int16)
    data = _dataset("classification", ["x"], image=[hu], label=[0])
    assert np.array_equal(np.asarray(data[0]["image"]), hu)


@pytest.mark.parametrize(
    ("task_type", "rows", "column", "problem"),
    [
        ("classification", {"image": [_grey()]}, "'label'", "missing"),
        ("multilabel", {"image": [_grey()], "labels": [[1.0, 0.0, 1.0]]}, "'labels'", "length 2"),
        ("multilabel", {"image": [_grey()], "labels": [[1.5, 0.0]]}, "'labels'", "0 or 1"),
        ("segmentation", {"image": [_grey()], "mask": [np.ones((8, 8), np.uint8)]}, "'mask'", "differs from image"),
        (
            "segmentation",
            {"image": [_grey()], "mask": [np.full((16, 16), 7, np.uint8)]},
            "'mask'",
            "outside the 2 classes 0..1",
        ),
        (
            "detection",
            {"image": [_grey()], "objects": [{"bbox": [[1, 1, -2, 3]], "category": [0]}]},
            "'objects.bbox'",
            "w, h > 0",
        ),
        (
            "detection",
            {"image": [_grey()], "objects": [{"bbox": [[10, 10, 30, 3]], "category": [0]}]},
            "'objects.bbox'",
            "outside the 16x16 image",
        ),
        (
            "detection",
            {"image": [_grey()], "objects": [{"bbox": [[1, 1, 2, 2]], "category": []}]},
            "'objects'",
            "1 boxes but 0 categories",
        ),
    ],
)
def test_broken_rows_name_task_and_column(task_type, rows, column, problem):
    labels = ["a", "b"]
    features = task_features(task_type, labels)
    if task_type == "classification":
        features = Features({"image": Image()})
    data = Dataset.from_dict(rows, features=features)
    with pytest.raises(ValueError, match="task 'brain'") as error:
        validate_task_dataset(data, make_spec(task_type, labels, "mri"), "brain")
    assert column in str(error.value) and problem in str(error.value)
    assert isinstance(error.value, TaskSchemaError)


def test_class_names_must_match_the_spec():
    data = _dataset("classification", ["cat", "dog"], image=[_grey()], label=[0])
    with pytest.raises(ValueError, match=r"task 'pets', split 'train', column 'label': class names"):
        validate_task_dataset(DatasetDict({"train": data}), make_spec("classification", ["a", "b"], "xray"), "pets")


def test_wrong_feature_types_are_named():
    data = Dataset.from_dict(
        {"image": [_grey()], "label": ["yes"]}, features=Features({"image": Image(), "label": Value("string")})
    )
    with pytest.raises(ValueError, match="column 'label': must be ClassLabel"):
        validate_task_dataset(data, make_spec("classification", ["yes", "no"], "xray"), "t")
    plain = Dataset.from_dict(
        {"image": ["x.png"], "label": [0]},
        features=Features({"image": Value("string"), "label": ClassLabel(names=["a"])}),
    )
    with pytest.raises(ValueError, match=r"column 'image': must be datasets.Image\(\)"):
        validate_task_dataset(plain, make_spec("classification", ["a"], "xray"), "t")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"type": "regression", "labels": ["a"], "modality": "ct"}, "unknown task type"),
        ({"type": "classification", "labels": [], "modality": "ct"}, "non-empty list"),
        ({"type": "classification", "labels": ["a", "a"], "modality": "ct"}, "duplicate"),
    ],
)
def test_bad_specs(spec, problem):
    data = _dataset("classification", ["a"], image=[_grey()], label=[0])
    with pytest.raises(ValueError, match=problem):
        validate_task_dataset(data, spec, "t")


def test_not_a_dataset_is_a_type_error():
    with pytest.raises(TypeError, match="task 't'"):
        validate_task_dataset([1, 2], make_spec("classification", ["a"], "ct"), "t")
