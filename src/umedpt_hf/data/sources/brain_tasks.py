"""Tasks built from the brain MRI sources: Colin27 + AAL (pretraining), MNI152 + Harvard-Oxford (held out)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..schema import make_spec
from .aal import DEEP_GREY_NUCLEI, LOBES, nucleus_lookup
from .base import BuiltTask, Located, append_row, cap_rows, empty_rows
from .brain import AAL_ATLAS_ID, COLIN27_T1_ID, MNI152_T1_ID, load_colin27, load_mni152, slab_partition
from .harvard_oxford import HO_ATLAS_ID, HO_LOBES, HO_OTHER, lobes_on_grid
from .spatial import to_square

SEG_SIZE, DET_SIZE, PATCH_SIZE = 96, 128, 64
PATCH, PATCH_STRIDE = 32, 16


def _slices_with(labels: np.ndarray, min_fraction: float) -> list[int]:
    area = (labels > 0).reshape(len(labels), -1).mean(axis=1)
    return [int(z) for z in np.nonzero(area >= min_fraction)[0]]


def _segmentation_rows(image: np.ndarray, labels: np.ndarray, source: str, step: int = 1) -> dict:
    rows = empty_rows(("image", "mask", "source", "region"))
    partition = slab_partition(len(image))
    _, height, width = image.shape
    for z in _slices_with(labels, 0.03)[::step]:
        split = partition.split_of(z, z + 1)
        if split is None:
            continue
        picture, _, _ = to_square(image[z], SEG_SIZE)
        mask, _, _ = to_square(labels[z], SEG_SIZE, is_mask=True)
        append_row(rows, split, image=picture, mask=mask, source=source, region=[z, z + 1, 0, height, 0, width])
    return rows


def build_colin27_lobe_seg(located: dict[str, Located]) -> BuiltTask:
    colin = load_colin27(located["mricron"])
    return BuiltTask(
        name="colin27_lobe_seg",
        spec=make_spec("segmentation", ["background", *LOBES], "mri"),
        rows=_segmentation_rows(colin["t1"], colin["lobes"], COLIN27_T1_ID),
        label_origin="AAL atlas regions (drawn on Colin27) grouped into lobes",
        label_sources=[AAL_ATLAS_ID],
        description="axial slices of the Colin27 T1; lobe / deep grey / cerebellum segmentation",
    )


def build_colin27_deep_grey_det(located: dict[str, Located]) -> BuiltTask:
    colin = load_colin27(located["mricron"])
    nuclei = nucleus_lookup(colin["names"])
    image, aal = colin["t1"], colin["aal"]
    partition = slab_partition(len(image))
    _, height, width = image.shape
    rows = empty_rows(("image", "objects", "source", "region"))
    for z in range(len(image)):
        split = partition.split_of(z, z + 1)
        present = [index for index in nuclei if np.any(aal[z] == index)] if split else []
        if not present:
            continue
        picture, scale, (top, left) = to_square(image[z], DET_SIZE)
        boxes, categories = [], []
        for index in present:
            found = ndimage.find_objects((aal[z] == index).astype(np.int32))[0]
            y0, y1, x0, x1 = found[0].start, found[0].stop, found[1].start, found[1].stop
            if (y1 - y0) < 3 or (x1 - x0) < 3:
                continue
            boxes.append([(x0 + left) * scale, (y0 + top) * scale, (x1 - x0) * scale, (y1 - y0) * scale])
            categories.append(nuclei[index])
        if boxes:
            objects = {"bbox": boxes, "category": categories}
            append_row(
                rows,
                split,
                image=picture,
                objects=objects,
                source=COLIN27_T1_ID,
                region=[z, z + 1, 0, height, 0, width],
            )
    return BuiltTask(
        name="colin27_deep_grey_det",
        spec=make_spec("detection", list(DEEP_GREY_NUCLEI), "mri"),
        rows=rows,
        label_sources=[AAL_ATLAS_ID],
        label_origin="bounding boxes of the left and right AAL caudate, putamen, pallidum, thalamus, hippocampus and "
        "amygdala in each slice",
        description="axial slices of the Colin27 T1; detection of deep grey nuclei",
    )


def _patches(image: np.ndarray, lobes: np.ndarray, slice_step: int):
    """Yield (split, z, y, x, image patch, lobe patch) for brain patches inside one slab."""
    partition = slab_partition(len(image))
    _, height, width = image.shape
    for z in range(0, len(image), slice_step):
        split = partition.split_of(z, z + 1)
        if split is None:
            continue
        for y in range(0, height - PATCH + 1, PATCH_STRIDE):
            for x in range(0, width - PATCH + 1, PATCH_STRIDE):
                lobe_patch = lobes[z, y : y + PATCH, x : x + PATCH]
                if (lobe_patch > 0).mean() >= 0.3:
                    yield split, z, y, x, image[z, y : y + PATCH, x : x + PATCH], lobe_patch


def build_mni152_lobe_cls(located: dict[str, Located]) -> BuiltTask:
    """Held out: MNI152 patches labelled by the Harvard-Oxford atlas; no pretraining task uses either volume."""
    mni = load_mni152()
    lobes = lobes_on_grid(located["harvard_oxford"], mni["t1_img"])
    rows = empty_rows(("image", "label", "source", "region"))
    for split, z, y, x, picture, lobe_patch in _patches(mni["t1"], lobes, slice_step=2):
        counts = np.bincount(lobe_patch.ravel(), minlength=HO_OTHER + 1)
        labelled, classes = counts[1:].sum(), counts[1 : len(HO_LOBES) + 1]
        dominant = int(np.argmax(classes))
        if classes[dominant] < 0.6 * labelled:
            continue
        append_row(
            rows,
            split,
            image=to_square(picture, PATCH_SIZE)[0],
            label=dominant,
            source=MNI152_T1_ID,
            region=[z, z + 1, y, y + PATCH, x, x + PATCH],
        )
    return BuiltTask(
        name="mni152_lobe_cls",
        spec=make_spec("classification", list(HO_LOBES), "mri"),
        rows=cap_rows(rows, {"train": 60, "validation": 15, "test": 40}, by="label", seed=1),
        label_origin="dominant lobe (>= 60 % of the labelled cortex in the patch) of the Harvard-Oxford cortical atlas "
        "carried onto MNI152 by the NIfTI affines (both in MNI space)",
        label_sources=[HO_ATLAS_ID],
        description="32 mm axial patches of the MNI152 T1 template; cortical lobe classification",
    )


def build_colin27_lobe_multilabel(located: dict[str, Located]) -> BuiltTask:
    colin = load_colin27(located["mricron"])
    rows = empty_rows(("image", "labels", "source", "region"))
    for split, z, y, x, picture, lobe_patch in _patches(colin["t1"], colin["lobes"], slice_step=3):
        fractions = np.bincount(lobe_patch.ravel(), minlength=len(LOBES) + 1)[1:] / lobe_patch.size
        multi_hot = (fractions >= 0.1).astype(np.float32).tolist()
        picture, _, _ = to_square(picture, PATCH_SIZE)
        append_row(
            rows,
            split,
            image=picture,
            labels=multi_hot,
            source=COLIN27_T1_ID,
            region=[z, z + 1, y, y + PATCH, x, x + PATCH],
        )
    return BuiltTask(
        name="colin27_lobe_multilabel",
        spec=make_spec("multilabel", list(LOBES), "mri"),
        rows=cap_rows(rows, {"train": 240, "validation": 60, "test": 60}, seed=2),
        label_origin="AAL lobes covering >= 10 % of the patch",
        label_sources=[AAL_ATLAS_ID],
        description="32 mm axial patches of the Colin27 T1; which lobes a patch contains (multi-label)",
    )
