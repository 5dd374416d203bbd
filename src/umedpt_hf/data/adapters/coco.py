"""Adapter: COCO-style detection JSON (images, annotations with xywh bbox, categories) -> detection task."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Image

from ..schema import label_feature
from ..task import TaskDataset
from .generic import from_hf_dataset

REQUIRED = {
    "images": ("id", "file_name"),
    "annotations": ("image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


def _load_coco(json_path: Path) -> dict[str, list]:
    """The parsed COCO file with its three lists checked: each entry an object with the keys COCO requires."""
    if not json_path.is_file():
        raise FileNotFoundError(f"COCO file {json_path} does not exist")
    try:
        coco = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"COCO file {json_path} is not valid JSON: {error}") from None
    if not isinstance(coco, dict):
        raise ValueError(f"COCO file {json_path}: the top level must be an object, got {type(coco).__name__}")
    for key, needed in REQUIRED.items():
        entries = coco.get(key)
        if not isinstance(entries, list):
            raise ValueError(f"COCO file {json_path} has no {key!r} list")
        for position, entry in enumerate(entries):
            missing = [name for name in needed if not isinstance(entry, dict) or name not in entry]
            if missing:
                raise ValueError(f"COCO file {json_path}: {key}[{position}] lacks {missing}")
    for position, annotation in enumerate(coco["annotations"]):
        box = annotation["bbox"]
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            raise ValueError(f"COCO file {json_path}: annotations[{position}] bbox must be 4 numbers, got {box!r}")
    return coco


def _read_coco(json_path: Path, image_dir: Path) -> tuple[dict[str, list], list[str]]:
    coco = _load_coco(json_path)
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    index_of = {c["id"]: i for i, c in enumerate(categories)}
    per_image: dict[Any, list[dict]] = {image["id"]: [] for image in coco["images"]}
    for annotation in coco["annotations"]:
        if annotation["image_id"] not in per_image:
            raise ValueError(f"COCO file {json_path}: annotation {annotation.get('id')} refers to an unknown image")
        if annotation["category_id"] not in index_of:
            raise ValueError(f"COCO file {json_path}: annotation {annotation.get('id')} has an unknown category")
        per_image[annotation["image_id"]].append(annotation)
    rows: dict[str, list] = {"image": [], "objects": []}
    for image in coco["images"]:
        path = image_dir / image["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"COCO file {json_path}: image {path} does not exist")
        annotations = [a for a in per_image[image["id"]] if not a.get("iscrowd", 0)]
        rows["image"].append(str(path))
        rows["objects"].append(
            {
                "bbox": [[float(v) for v in a["bbox"]] for a in annotations],
                "category": [index_of[a["category_id"]] for a in annotations],
            }
        )
    return rows, [str(c["name"]) for c in categories]


def from_coco(
    annotations: str | os.PathLike | dict[str, str | os.PathLike],
    image_dir: str | os.PathLike | None = None,
    name: str | None = None,
    modality: str = "unknown",
    **kwargs: Any,
) -> TaskDataset:
    """Read one COCO JSON or ``{split: json_path}``.

    Image file names resolve against ``image_dir`` (default: the JSON's folder); crowd annotations are skipped.
    """
    files = annotations if isinstance(annotations, dict) else {"train": annotations}
    splits, labels = {}, None
    for split, json_path in files.items():
        json_path = Path(json_path)
        rows, names = _read_coco(json_path, Path(image_dir) if image_dir else json_path.parent)
        if labels is not None and names != labels:
            raise ValueError(f"COCO split {split!r} has categories {names}, other splits have {labels}")
        labels = names
        features = Features({"image": Image(), "objects": label_feature("detection", names)})
        splits[split] = Dataset.from_dict(rows, features=features)
    name = name or Path(next(iter(files.values()))).stem
    return from_hf_dataset(DatasetDict(splits), "detection", labels=labels, modality=modality, name=name, **kwargs)
