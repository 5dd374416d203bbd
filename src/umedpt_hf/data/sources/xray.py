"""Radiographs from pydicom-data: a chest (RG1_UNCR, CR, CHEST) and a tibia (RG3_UNCR, CR, EXTREMITY), uint16."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

from ..schema import make_spec
from .base import BuiltTask, Located, Source, append_row, cap_rows, empty_rows, existing, package_dir
from .spatial import BlockPartition, resize

DOWNSAMPLE, PATCH, STRIDE = 4, 64, 16  # patches of 256 px of the full radiograph, stored at 64 px
RADIOGRAPHS = {"RG1_UNCR.dcm": "chest", "RG3_UNCR.dcm": "extremity"}
BODY_PART_CLASSES = ("chest", "extremity")


def locate_pydicom_data() -> Located | None:
    root = package_dir("data_store")  # the pydicom-data package; never call get_testdata_file (it downloads)
    if root is None or package_dir("pydicom") is None:
        return None
    return existing({name: root / "data" / name for name in RADIOGRAPHS})


PYDICOM_DATA = Source(
    name="pydicom_data",
    description="real DICOM test images of pydicom-data: CR chest and tibia radiographs, CT, MR, US",
    install_hint="pip install pydicom pydicom-data",
    licence="pydicom-data: MIT (images from public DICOM test sets, e.g. the NEMA WG-04 compression set)",
    locate=locate_pydicom_data,
)


def read_dicom(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """Pixel array (rescaled to HU where the file says so) and a few header tags."""
    import pydicom
    from pydicom.pixels import apply_rescale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
        if "RescaleSlope" in dataset and dataset.get("Modality") == "CT":
            pixels = np.rint(apply_rescale(pixels, dataset)).astype(np.int16)
    tags = {key: str(dataset.get(key, "")) for key in ("Modality", "BodyPartExamined", "PhotometricInterpretation")}
    if tags["PhotometricInterpretation"] == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels, tags


@functools.lru_cache(maxsize=4)
def load_radiograph(path: str) -> np.ndarray:
    """The radiograph downsampled by 4 (area averaging), uint16."""
    pixels, _ = read_dicom(path)
    pixels = pixels.astype(np.uint16)
    height, width = pixels.shape[0] // DOWNSAMPLE, pixels.shape[1] // DOWNSAMPLE
    import cv2

    small = cv2.resize(pixels.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small), 0, 65535).astype(np.uint16)


def column_partition(width: int) -> BlockPartition:
    """Vertical strips of 96 px (384 px of the full radiograph): train, validation, train, test."""
    return BlockPartition(length=width, block=96, pattern=("train", "validation", "train", "test"))


def radiograph_patches(path: str, stride: int = STRIDE):
    """Yield (split, region in full-resolution pixels, uint16 patch) for patches that are not blank background."""
    image = load_radiograph(path)
    spread = float(np.percentile(image, 99) - np.percentile(image, 1)) or 1.0
    height, width = image.shape
    for x0, x1, split in column_partition(width).windows(PATCH, stride):
        for y0 in range(0, height - PATCH + 1, stride):
            patch = image[y0 : y0 + PATCH, x0:x1]
            if patch.std() < 0.03 * spread:
                continue
            region = [0, 1, y0 * DOWNSAMPLE, (y0 + PATCH) * DOWNSAMPLE, x0 * DOWNSAMPLE, x1 * DOWNSAMPLE]
            yield split, region, patch


def build_xray_bodypart_cls(located: dict[str, Located]) -> BuiltTask:
    paths = located["pydicom_data"]
    rows = empty_rows(("image", "label", "source", "region"))
    for name, body_part in RADIOGRAPHS.items():
        for split, region, patch in radiograph_patches(str(paths[name])):
            append_row(
                rows,
                split,
                image=resize(patch, PATCH),
                label=BODY_PART_CLASSES.index(body_part),
                source=f"pydicom-data/{name}",
                region=region,
            )
    return BuiltTask(
        name="xray_bodypart_cls",
        spec=make_spec("classification", list(BODY_PART_CLASSES), "xray"),
        rows=cap_rows(rows, {"train": 120, "validation": 30, "test": 60}, by="label", seed=3),
        label_origin="DICOM BodyPartExamined of the radiograph (CHEST / EXTREMITY); a smoke task with two images",
        description="256 px patches (stored at 64 px, uint16) of a chest and a tibia radiograph",
    )
