"""Paired augmentation on real images: image, mask and boxes move together; seeded; dtypes and HU kept."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from umedpt_hf.data import PairedAugmentation, build_augmentation


def _tile(nuclei_arrays, y0=64, x0=64, size=64):
    image, instances = nuclei_arrays
    return image[y0 : y0 + size, x0 : x0 + size].copy(), instances[y0 : y0 + size, x0 : x0 + size].copy()


def _run(augmentation: PairedAugmentation, image: np.ndarray, times: int = 4) -> list[np.ndarray]:
    return [augmentation(image)[0] for _ in range(times)]


def test_same_seed_same_sequence_other_seed_other_sequence(nuclei_arrays):
    image, _ = _tile(nuclei_arrays)
    first = _run(PairedAugmentation("classification", "microscopy", seed=3), image)
    again = _run(PairedAugmentation("classification", "microscopy", seed=3), image)
    other = _run(PairedAugmentation("classification", "microscopy", seed=4), image)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    assert any(not np.array_equal(a, image) for a in first)


def test_mask_follows_the_image(nuclei_arrays):
    image, _ = _tile(nuclei_arrays)
    smooth = ndimage.gaussian_filter(image.astype(np.float32), 2).astype(np.uint8)  # real image, smoothed
    mask = (smooth // 24).astype(np.uint8)  # classes 0..9 by intensity: the mask is the image quantised
    augmentation = PairedAugmentation("segmentation", "microscopy", seed=0, intensity=False)
    augmentation.geometric.transforms[-1].p = 1.0  # always apply the affine
    moved = 0
    for _ in range(6):
        out_image, out_mask, _, _ = augmentation(smooth, mask)
        valid = out_mask != 255
        paired = np.abs((out_image // 24).astype(int) - out_mask)[valid].mean()
        unpaired = np.abs((out_image // 24).astype(int) - mask)[valid].mean()  # as if the mask had stayed put
        assert paired < 0.2
        if not np.array_equal(out_mask, mask):
            moved += 1
            assert paired < unpaired
    assert moved >= 4


def test_boxes_follow_the_image(nuclei_arrays):
    image, instances = _tile(nuclei_arrays)
    found = [(i + 1, f) for i, f in enumerate(ndimage.find_objects(instances)) if f is not None]
    boxes = np.array(
        [[f[1].start, f[0].start, f[1].stop - f[1].start, f[0].stop - f[0].start] for _, f in found], np.float32
    )
    foreground = (instances > 0).astype(np.uint8)
    augmentation = PairedAugmentation("detection", "microscopy", seed=1)
    for _ in range(6):
        _, out_mask, out_boxes, out_categories = augmentation(image, foreground, boxes, np.zeros(len(boxes), np.int64))
        assert len(out_boxes) == len(out_categories) >= 1
        for x, y, w, h in out_boxes:
            assert x >= 0 and y >= 0 and x + w <= 64.001 and y + h <= 64.001
            inside = out_mask[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))]
            inside = inside[inside != 255]
            assert inside.size == 0 or (inside == 1).mean() > 0.3  # a nucleus box is mostly nucleus


def test_zero_boxes_are_fine(nuclei_arrays):
    image, _ = _tile(nuclei_arrays)
    _, _, boxes, categories = PairedAugmentation("detection", "microscopy", seed=0)(image, None, None, None)
    assert boxes.shape == (0, 4) and categories.shape == (0,)


def test_hounsfield_units_keep_dtype_and_air_fills_borders():
    from umedpt_hf.data.sources import locate_source
    from umedpt_hf.data.sources.head_ct import load_head_ct

    located = locate_source("invesalius")
    if located is None:
        pytest.skip("invesalius-examples not installed (apt-get install invesalius-examples)")
    hu = load_head_ct(str(located["project"]))[54, ::2, ::2].copy()
    augmentation = PairedAugmentation("segmentation", "ct", seed=0)
    augmentation.geometric.transforms[-1].p = 1.0
    out, _, _, _ = augmentation(hu, np.zeros(hu.shape, np.uint8))
    assert out.dtype == np.int16
    assert out.min() >= hu.min() and out.max() <= hu.max()
    assert out[0, 0] == hu.min()  # the corner the affine brings in is air, not water (0 HU)


@pytest.mark.parametrize("task_type", ["classification", "multilabel", "segmentation", "detection"])
@pytest.mark.parametrize("modality", ["ct", "mri", "xray", "microscopy", None])
def test_presets_exist_for_every_type_and_modality(task_type, modality):
    compose = build_augmentation(task_type, modality, seed=0)
    assert len(compose.transforms) >= 2
    names = {type(t).__name__ for t in compose.transforms}
    assert ("VerticalFlip" in names) == (modality == "microscopy")
