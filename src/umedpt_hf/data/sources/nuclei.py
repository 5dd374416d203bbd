"""Fluorescence nuclei (2018 Data Science Bowl image shipped with stardist, CC0): tiles with nucleus boxes."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..schema import make_spec
from .base import BuiltTask, Located, Source, append_row, empty_rows, existing, package_dir
from .spatial import BlockPartition

TILE, TILE_STRIDE = 64, 32
NUCLEI_SOURCE, NUCLEI_MASK_SOURCE = "stardist_img2d", "stardist_mask2d"  # source ids: the image, its instance masks


def locate_stardist() -> Located | None:
    root = package_dir("stardist")
    if root is None:
        return None
    images = root / "data" / "images"
    return existing({"image": images / "img2d.tif", "instances": images / "mask2d.tif", "histo": images / "histo.jpg"})


STARDIST = Source(
    name="stardist",
    description="512x512 fluorescence nuclei image with 125 instance masks (DSB 2018) and an H&E tile, from stardist",
    install_hint="pip install --no-deps stardist",
    licence="image CC0 (2018 Data Science Bowl, BBBC038); stardist BSD-3",
    locate=locate_stardist,
)


@functools.lru_cache(maxsize=2)
def load_nuclei(image_path: str, mask_path: str) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    image, instances = tifffile.imread(image_path), tifffile.imread(mask_path)
    if image.shape != instances.shape or image.ndim != 2:
        raise ValueError(f"{image_path} {image.shape} and {mask_path} {instances.shape} must be equal 2D shapes")
    image = image.astype(np.uint8) if image.max() <= 255 else image.astype(np.uint16)  # 8-bit data in a 16-bit TIFF
    return image, instances.astype(np.int32)


def column_partition(width: int) -> BlockPartition:
    """Vertical strips of 128 px: train, validation, train, test."""
    return BlockPartition(length=width, block=128, pattern=("train", "validation", "train", "test"))


def build_nuclei_det(located: dict[str, Located]) -> BuiltTask:
    paths = located["stardist"]
    image, instances = load_nuclei(str(paths["image"]), str(paths["instances"]))
    areas = np.bincount(instances.ravel())
    height, width = image.shape
    rows = empty_rows(("image", "objects", "source", "region"))
    for x0, x1, split in column_partition(width).windows(TILE, TILE_STRIDE):
        for y0 in range(0, height - TILE + 1, TILE_STRIDE):
            tile = instances[y0 : y0 + TILE, x0:x1]
            boxes = []
            for label, found in enumerate(ndimage.find_objects(tile), start=1):
                if found is None:
                    continue
                visible = np.count_nonzero(tile[found] == label)
                h, w = found[0].stop - found[0].start, found[1].stop - found[1].start
                if visible >= 0.4 * areas[label] and h >= 3 and w >= 3:
                    boxes.append([float(found[1].start), float(found[0].start), float(w), float(h)])
            objects = {"bbox": boxes, "category": [0] * len(boxes)}
            append_row(
                rows,
                split,
                image=image[y0 : y0 + TILE, x0:x1].copy(),
                objects=objects,
                source=NUCLEI_SOURCE,
                region=[0, 1, y0, y0 + TILE, x0, x1],
            )
    return BuiltTask(
        name="dsb2018_nuclei_det",
        spec=make_spec("detection", ["nucleus"], "microscopy"),
        rows=rows,
        label_sources=[NUCLEI_MASK_SOURCE],
        label_origin="boxes of the expert instance masks (scipy.ndimage.find_objects); nuclei cut by the tile edge "
        "to < 40 % of their area are dropped",
        description="64 px tiles of a fluorescence microscopy image (8-bit values); nucleus detection",
    )
