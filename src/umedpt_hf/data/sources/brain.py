"""Brain MRI sources: the MNI ICBM152 2009a template (nilearn) and Colin27 + AAL (Debian mricron-data)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .aal import axial_stack, lobe_lookup, read_region_names
from .base import Located, Source, existing
from .spatial import BlockPartition

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
SLAB = 6  # axial slices per block; first slice of each block unused (gap) so splits never touch
# source ids (tasks.json "source_ids", the rows' "source"): one per volume, image or atlas, whatever task uses it
MNI152_T1_ID, COLIN27_T1_ID, AAL_ATLAS_ID = "mni152_t1_2009a", "colin27_t1", "aal_atlas"


def locate_mni152() -> Located | None:
    if importlib.util.find_spec("nilearn") is None:
        return None
    return {"loader": "nilearn.datasets.load_mni152_template"}


def locate_mricron() -> Located | None:
    return existing(
        {
            "t1": MRICRON_TEMPLATES / "ch2.nii.gz",
            "aal": MRICRON_TEMPLATES / "aal.nii.gz",
            "aal_names": MRICRON_TEMPLATES / "aal.nii.txt",
        }
    )


MNI152 = Source(
    name="mni152",
    description="MNI ICBM152 2009a nonlinear symmetric T1 template, 1 mm (nilearn)",
    install_hint="pip install nilearn",
    licence="MNI ICBM152 template: free use with copyright notice (McConnell Brain Imaging Centre); nilearn BSD-3",
    locate=locate_mni152,
)
MRICRON = Source(
    name="mricron",
    description="Colin27 T1 (ch2) with the AAL atlas, 1 mm, same grid (Debian mricron-data)",
    install_hint="apt-get install mricron-data",
    licence="MRIcron BSD-3-clause; Colin27 (MNI) free with notice; AAL: cite Tzourio-Mazoyer et al. 2002",
    locate=locate_mricron,
)


def slab_partition(num_slices: int) -> BlockPartition:
    return BlockPartition(length=num_slices, block=SLAB, gap=1)


@functools.lru_cache(maxsize=1)
def load_mni152() -> dict[str, Any]:
    """The T1 template (uint16, 0..4095) as an axial stack, and its NIfTI image (for resampling atlases onto it)."""
    from nilearn import datasets

    t1_img = datasets.load_mni152_template(1)
    t1_uint16 = np.rint(np.clip(t1_img.get_fdata(), 0, 1) * 4095).astype(np.uint16)
    return {"t1": axial_stack(t1_uint16), "t1_img": t1_img}


def load_colin27(located: Located) -> dict[str, Any]:
    """Colin27 T1 (uint8), AAL indices and lobe labels (0 bg, 1 + index in `LOBES`) as axial stacks."""
    return _load_colin27(str(located["t1"]), str(located["aal"]), str(located["aal_names"]))


@functools.lru_cache(maxsize=1)
def _load_colin27(t1_path: str, aal_path: str, names_path: str) -> dict[str, Any]:
    import nibabel as nib

    t1 = np.asanyarray(nib.load(t1_path).dataobj).astype(np.uint8)
    aal = np.asanyarray(nib.load(aal_path).dataobj).astype(np.uint8)
    if t1.shape != aal.shape:
        raise ValueError(f"Colin27 {t1_path} {t1.shape} and AAL {aal_path} {aal.shape} grids differ")
    names = read_region_names(Path(names_path))
    lobes = lobe_lookup(names)[aal]
    return {"t1": axial_stack(t1), "aal": axial_stack(aal), "lobes": axial_stack(lobes), "names": names}
