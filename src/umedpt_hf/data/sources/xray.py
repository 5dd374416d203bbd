"""Radiographs from pydicom-data: a chest (RG1_UNCR, CR, CHEST) and a tibia (RG3_UNCR, CR, EXTREMITY), uint16.

Each radiograph is cut into a grid of small square blocks; within every coarse region of 3 x 2 blocks the blocks
rotate through train/validation/test in a seeded order (`BlockGrid`). Patches lie wholly inside one block, and
patches that mostly show background (saturated, collimated or flat) are dropped. So train, validation and test draw
on the same anatomy of each radiograph (lung, ribs, mediastinum, diaphragm; tibia, fibula, ankle, soft tissue)
instead of different strips of it, and a model's validation score predicts its test score.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..schema import make_spec
from .base import BuiltTask, Located, Source, append_row, cap_rows, empty_rows, existing, package_dir
from .spatial import BlockGrid, resize

DOWNSAMPLE, PATCH, STRIDE = 2, 64, 8  # patches of 128 px of the full radiograph, stored at 64 px
BLOCK, GRID_SEED = 80, 1  # split blocks of 160 px of the full radiograph (see `radiograph_grid`)
BACKGROUND_MARGIN, MIN_FOREGROUND, MIN_STD = 0.05, 0.6, 0.03
RADIOGRAPHS = {"RG1_UNCR.dcm": "chest", "RG3_UNCR.dcm": "extremity"}  # the only radiographs offline: held out
NEMA_ENCODINGS = ("_UNCR", "_UNCI", "_J2KR", "_J2KI")
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


def dicom_image_id(file_name: str) -> str:
    """The source id of a DICOM test image: ``pydicom:<stem>`` without the NEMA encoding suffix, so that the
    encodings of one image (``RG1_UNCR.dcm``, ``RG1_J2KI.dcm``, ...) share one id."""
    stem = Path(file_name).name.removesuffix(".dcm")
    for suffix in NEMA_ENCODINGS:
        stem = stem.removesuffix(suffix)
    return f"pydicom:{stem}"


@functools.lru_cache(maxsize=4)
def load_radiograph(path: str) -> np.ndarray:
    """The radiograph (read by `umedpt_hf.io.load_dicom`: MONOCHROME1 inverted) downsampled by ``DOWNSAMPLE``
    (area averaging), uint16."""
    import cv2

    from ...io import load_dicom

    pixels, _ = load_dicom(path)
    if pixels.dtype != np.uint16:
        raise ValueError(f"{path}: expected a 16-bit unsigned radiograph, got {pixels.dtype}")
    height, width = pixels.shape[0] // DOWNSAMPLE, pixels.shape[1] // DOWNSAMPLE

    small = cv2.resize(pixels.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small), 0, 65535).astype(np.uint16)


def radiograph_grid(height: int, width: int) -> BlockGrid:
    """Square blocks of ``BLOCK`` px (``BLOCK * DOWNSAMPLE`` px of the full radiograph), stratified over the image."""
    return BlockGrid(height=height, width=width, block=BLOCK, seed=GRID_SEED)


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Pixels showing anatomy: neither saturated (unexposed / shielded) nor at the dark floor (collimated, air)."""
    low, high = float(image.min()), float(image.max())
    margin = BACKGROUND_MARGIN * max(high - low, 1.0)
    return (image > low + margin) & (image < high - margin)


def radiograph_patches(path: str, stride: int = STRIDE):
    """Yield (split, region in full-resolution pixels, uint16 patch) for patches that mostly show anatomy."""
    image = load_radiograph(path)
    foreground = foreground_mask(image)
    spread = float(np.percentile(image, 99) - np.percentile(image, 1)) or 1.0
    for y0, y1, x0, x1, split in radiograph_grid(*image.shape).windows(PATCH, stride):
        patch = image[y0:y1, x0:x1]
        if foreground[y0:y1, x0:x1].mean() < MIN_FOREGROUND or patch.std() < MIN_STD * spread:
            continue
        region = [0, 1, y0 * DOWNSAMPLE, y1 * DOWNSAMPLE, x0 * DOWNSAMPLE, x1 * DOWNSAMPLE]
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
                source=dicom_image_id(name),
                region=region,
            )
    return BuiltTask(
        name="xray_bodypart_cls",
        spec=make_spec("classification", list(BODY_PART_CLASSES), "xray"),
        rows=cap_rows(rows, {"train": 96, "validation": 30, "test": 60}, by="label", seed=3),
        label_origin="DICOM BodyPartExamined of the radiograph (CHEST / EXTREMITY); a smoke task with two images",
        description=(
            "128 px patches (stored at 64 px, uint16) of a chest and a tibia radiograph showing anatomy; splits are "
            "160 px blocks stratified over each radiograph, so every split sees comparable anatomy of each class"
        ),
    )
