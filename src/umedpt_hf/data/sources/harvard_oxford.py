"""Harvard-Oxford cortical atlas (FSL; shipped by Debian mricron-data): its 48 regions grouped into lobes.

The atlas file carries no names; the label values 1..48 follow the order of FSL's ``HarvardOxford-Cortical.xml``
(checked against the region centroids: value 1, frontal pole, lies at y = +53 mm; value 48, occipital pole, at
y = -97 mm). Regions that belong to no single lobe (insula, cingulate, parahippocampal, opercular and
temporo-occipital regions) are "other": they count as labelled cortex but are no class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Located, Source, existing

HARVARD_OXFORD_CORTICAL = Path("/usr/share/mricron/templates/HarvardOxford-cort-maxprob-thr0-1mm.nii.gz")
HO_LOBES = ("frontal", "parietal", "temporal", "occipital")
HO_LOBE_VALUES = {  # atlas value -> lobe (values of FSL's HarvardOxford-Cortical.xml, index + 1)
    "frontal": (1, 3, 4, 5, 6, 7, 25, 26, 28, 33, 41),
    "parietal": (17, 18, 19, 20, 21, 31, 43),
    "temporal": (8, 9, 10, 11, 12, 13, 14, 15, 16, 37, 38, 44, 45, 46),
    "occipital": (22, 23, 24, 32, 36, 40, 47, 48),
}
HO_OTHER = 255  # labelled cortex of no class (insula 2, subcallosal 27, cingulate 29-30, ...)
HO_ATLAS_ID = "harvard_oxford_cort_atlas"


def locate_harvard_oxford() -> Located | None:
    return existing({"atlas": HARVARD_OXFORD_CORTICAL})


HARVARD_OXFORD = Source(
    name="harvard_oxford",
    description="Harvard-Oxford cortical maximum-probability atlas, 1 mm MNI space (FSL, via Debian mricron-data)",
    install_hint="apt-get install mricron-data",
    licence="Harvard-Oxford atlas: FSL licence (non-commercial use; cite Desikan et al. 2006, Makris et al. 2006)",
    locate=locate_harvard_oxford,
)


def lobe_lookup() -> np.ndarray:
    """Array mapping an atlas value to 1 + index in `HO_LOBES`, `HO_OTHER` for other cortex, 0 for background."""
    lookup = np.full(256, HO_OTHER, dtype=np.uint8)
    lookup[0] = 0
    for index, lobe in enumerate(HO_LOBES):
        lookup[list(HO_LOBE_VALUES[lobe])] = index + 1
    return lookup


def lobes_on_grid(located: Located, target_img) -> np.ndarray:
    """Harvard-Oxford lobes resampled onto ``target_img``'s grid (nearest neighbour through the NIfTI affines),
    as an axial stack: 0 background, 1 + lobe index, `HO_OTHER` for cortex of no class."""
    import nibabel as nib
    from nilearn.image import resample_to_img

    from .aal import axial_stack

    atlas = nib.load(located["atlas"])
    resampled = resample_to_img(atlas, target_img, interpolation="nearest", force_resample=True, copy_header=True)
    values = np.clip(np.rint(resampled.get_fdata()), 0, 255).astype(np.uint8)
    return axial_stack(lobe_lookup()[values])
