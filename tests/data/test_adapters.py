"""Each adapter on small real files written from the installed images (DSB 2018 nuclei, skimage cell)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage
from scipy import ndimage

from umedpt_hf.data import (
    from_coco,
    from_hf_dataset,
    from_image_folder,
    from_mask_folder,
    from_medmnist_npz,
    validate_task_dataset,
)


def _tiles(image: np.ndarray, size: int, count: int) -> list[np.ndarray]:
    starts = range(0, 512 - size + 1, size)
    return [image[y : y + size, x : x + size] for y in starts for x in starts][:count]


def _boxes(instances: np.ndarray) -> list[list[float]]:
    found = [f for f in ndimage.find_objects(instances) if f is not None]
    return [
        [float(f[1].start), float(f[0].start), float(f[1].stop - f[1].start), float(f[0].stop - f[0].start)]
        for f in found
    ]


def test_image_folder_with_class_subfolders(tmp_path: Path, nuclei_arrays):
    image, instances = nuclei_arrays
    for index, tile in enumerate(_tiles(image, 32, 24)):
        cls = "crowded" if (instances[(index // 16) * 32, (index % 16) * 32] > 0) else "sparse"
        (tmp_path / cls).mkdir(exist_ok=True)
        PILImage.fromarray(tile).save(tmp_path / cls / f"tile{index:02d}.png")
    (tmp_path / "crowded").mkdir(exist_ok=True)
    PILImage.fromarray(image[:32, :32]).save(tmp_path / "crowded" / "extra.png")
    (tmp_path / "sparse").mkdir(exist_ok=True)
    PILImage.fromarray(image[-32:, -32:]).save(tmp_path / "sparse" / "extra.png")
    with pytest.warns(UserWarning, match="not patient-disjoint"):
        task = from_image_folder(tmp_path, name="nuclei_density", modality="microscopy", test_fraction=0.25)
    assert task.spec == {"type": "classification", "labels": ["crowded", "sparse"], "modality": "microscopy"}
    assert set(task.splits) == {"train", "validation", "test"}
    assert sum(task.split_sizes().values()) == 26
    first = task.splits["train"][0]
    assert np.asarray(first["image"]).shape == (32, 32)


def test_image_folder_missing_is_file_not_found(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_image_folder(tmp_path / "nope")


def test_mask_folder_pairs_images_and_masks_per_split(tmp_path: Path, nuclei_arrays):
    image, instances = nuclei_arrays
    for split, x0 in (("train", 0), ("val", 128), ("test", 256)):
        for index in range(3):
            y0 = index * 64
            for sub, array in (("images", image), ("masks", (instances > 0).astype(np.uint8))):
                folder = tmp_path / split / sub
                folder.mkdir(parents=True, exist_ok=True)
                PILImage.fromarray(array[y0 : y0 + 64, x0 : x0 + 64]).save(folder / f"tile{index}.png")
    task = from_mask_folder(tmp_path, labels=["background", "nucleus"], modality="microscopy", name="nuclei_seg")
    assert task.split_sizes() == {"train": 3, "validation": 3, "test": 3}
    row = task.splits["validation"][1]
    expected = (instances[64:128, 128:192] > 0).astype(np.uint8)
    assert np.array_equal(np.asarray(row["mask"]), expected)


def test_mask_folder_unmatched_stems(tmp_path: Path, nuclei_arrays):
    image, _ = nuclei_arrays
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    PILImage.fromarray(image[:16, :16]).save(tmp_path / "images" / "a.png")
    PILImage.fromarray(image[:16, :16]).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match="do not pair up"):
        from_mask_folder(tmp_path, labels=["bg", "fg"])


def _write_coco(tmp_path: Path, image: np.ndarray, instances: np.ndarray, offsets: list[int], name: str) -> Path:
    images, annotations = [], []
    for image_id, x0 in enumerate(offsets):
        file_name = f"{name}_{x0}.png"
        PILImage.fromarray(image[:64, x0 : x0 + 64]).save(tmp_path / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": 64, "height": 64})
        for box in _boxes(instances[:64, x0 : x0 + 64]):
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": image_id,
                    "category_id": 7,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "nucleus"}]})
    )
    return path


def test_coco_json_per_split(tmp_path: Path, nuclei_arrays):
    image, instances = nuclei_arrays
    files = {
        split: _write_coco(tmp_path, image, instances, offsets, split)
        for split, offsets in (("train", [0, 64, 128]), ("validation", [256]), ("test", [384, 448]))
    }
    task = from_coco(files, modality="microscopy", name="nuclei_det")
    assert task.spec["labels"] == ["nucleus"]
    assert task.split_sizes() == {"train": 3, "validation": 1, "test": 2}
    objects = task.splits["train"][1]["objects"]
    assert np.allclose(objects["bbox"], _boxes(instances[:64, 64:128]))
    assert set(objects["category"]) == {0}


def test_coco_errors_are_clear(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        from_coco(bad)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"images": [{"id": 0, "file_name": "x.png"}], "annotations": [], "categories": []}))
    with pytest.raises(FileNotFoundError, match=r"x\.png"):
        from_coco(missing)


def _medmnist(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """The MedMNIST .npz layout: {train,val,test}_{images,labels}, labels (N, 1) or (N, C)."""
    parts = {"train": slice(0, 12), "val": slice(12, 16), "test": slice(16, 20)}
    np.savez(
        path,
        **{f"{s}_images": images[p] for s, p in parts.items()},
        **{f"{s}_labels": labels[p] for s, p in parts.items()},
    )


@pytest.mark.parametrize("side", [28, 64])  # MedMNIST v2 and a MedMNIST+ size
def test_medmnist_npz_classification_and_multilabel(tmp_path: Path, nuclei_arrays, side: int):
    image, instances = nuclei_arrays
    tiles = np.stack(_tiles(image, side, 20)).astype(np.uint8)
    masks = np.stack(_tiles(instances, side, 20))
    counts = np.array([len(np.unique(m)) - 1 for m in masks])
    single = (counts > np.median(counts)).astype(np.uint8)[:, None]
    _medmnist(tmp_path / "single.npz", tiles, single)
    task = from_medmnist_npz(tmp_path / "single.npz", labels=["few", "many"], modality="microscopy")
    assert task.type == "classification" and task.split_sizes() == {"train": 12, "validation": 4, "test": 4}
    assert np.asarray(task.splits["test"][0]["image"]).shape == (side, side)
    assert task.splits["train"]["label"] == single[:12, 0].tolist()
    multi = np.stack([counts > 0, counts > 2, (masks > 0).mean(axis=(1, 2)) > 0.2], axis=1).astype(np.uint8)
    _medmnist(tmp_path / "multi.npz", np.repeat(tiles[..., None], 3, axis=-1), multi)
    task = from_medmnist_npz(tmp_path / "multi.npz")
    assert task.type == "multilabel" and task.labels == ["0", "1", "2"]
    assert task.splits["validation"][0]["labels"] == multi[12].astype(np.float32).tolist()


def test_medmnist_errors(tmp_path: Path):
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks arrays"):
        from_medmnist_npz(tmp_path / "partial.npz")
    volume = {f"{s}_images": np.zeros((2, 28, 28, 28), np.uint8) for s in ("train", "val", "test")}
    np.savez(tmp_path / "volume.npz", **volume, **{f"{s}_labels": np.zeros((2, 1)) for s in ("train", "val", "test")})
    with pytest.raises(ValueError, match="only 2D"):
        from_medmnist_npz(tmp_path / "volume.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        from_medmnist_npz(tmp_path / "junk.npz")


def test_generic_adapter_column_mapping_and_string_labels(nuclei_arrays):
    image, _ = nuclei_arrays
    tiles = _tiles(image, 32, 9)
    names = ["dim" if t.mean() < image.mean() else "bright" for t in tiles]
    data = {
        split: Dataset.from_dict(
            {"img": tiles[i : i + 3], "finding": names[i : i + 3]},
            features=Features({"img": Image(), "finding": Value("string")}),
        )
        for split, i in (("train", 0), ("valid", 3), ("test", 6))
    }
    task = from_hf_dataset(data, "classification", column_mapping={"img": "image", "finding": "label"}, name="b")
    assert task.labels == sorted(set(names))
    assert set(task.splits) == {"train", "validation", "test"}
    assert isinstance(task.splits["train"].features["label"], ClassLabel)
    assert [task.labels[i] for i in task.splits["test"]["label"]] == names[6:9]


def test_generic_adapter_detection_subfields_and_xyxy(nuclei_arrays):
    image, instances = nuclei_arrays
    tile, boxes = image[:64, :64], _boxes(instances[:64, :64])
    xyxy = [[x, y, x + w, y + h] for x, y, w, h in boxes]
    data = Dataset.from_dict(
        {"image": [tile], "boxes": [xyxy], "classes": [[0] * len(xyxy)]},
        features=Features({"image": Image(), "boxes": [[Value("float32")]], "classes": [Value("int64")]}),
    )
    task = from_hf_dataset(
        {"train": data, "validation": data, "test": data},
        "detection",
        labels=["nucleus"],
        column_mapping={"boxes": "objects.bbox", "classes": "objects.category"},
        bbox_format="xyxy",
    )
    assert np.allclose(task.splits["test"][0]["objects"]["bbox"], boxes)


def test_generic_adapter_reads_a_hub_style_parquet_repository(tmp_path: Path, nuclei_arrays):
    """A local folder laid out like a Hub dataset repo goes through load_dataset, as a Hub name would."""
    image, _ = nuclei_arrays
    features = Features({"image": Image(), "label": ClassLabel(names=["left", "right"])})
    for split, x0 in (("train", 0), ("validation", 256), ("test", 384)):
        rows = {"image": [image[y : y + 32, x0 : x0 + 32] for y in (0, 64, 128)], "label": [0, 1, 0]}
        (tmp_path / "data").mkdir(exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    task = from_hf_dataset(str(tmp_path), "classification", modality="microscopy", name="repo")
    assert task.split_sizes() == {"train": 3, "validation": 3, "test": 3}
    assert task.labels == ["left", "right"]
    validate_task_dataset(task.splits, task.spec, "repo")


def test_generic_adapter_missing_column_names_it():
    data = Dataset.from_dict({"image": [np.zeros((8, 8), np.uint8)]}, features=Features({"image": Image()}))
    with pytest.raises(ValueError, match=r"task 'x', column 'mask': missing .* column_mapping"):
        from_hf_dataset({"train": data, "validation": data, "test": data}, "segmentation", labels=["a"], name="x")
