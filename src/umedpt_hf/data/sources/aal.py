"""AAL atlas (Tzourio-Mazoyer et al. 2002, on Colin27) region names and their grouping into lobes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LOBES = ("frontal", "parietal", "temporal", "occipital", "limbic", "deep_grey", "cerebellum")
LOBE_PREFIXES = {
    "frontal": ("Precentral", "Frontal", "Rolandic", "Supp_Motor", "Olfactory", "Rectus", "Paracentral"),
    "parietal": ("Postcentral", "Parietal", "SupraMarginal", "Angular", "Precuneus"),
    "temporal": ("Heschl", "Temporal", "Fusiform"),
    "occipital": ("Calcarine", "Cuneus", "Lingual", "Occipital"),
    "limbic": ("Insula", "Cingulum", "Hippocampus", "ParaHippocampal", "Amygdala"),
    "deep_grey": ("Caudate", "Putamen", "Pallidum", "Thalamus"),
    "cerebellum": ("Cerebelum", "Vermis"),
}
DEEP_GREY_NUCLEI = ("caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala")


def read_region_names(path: Path) -> dict[int, str]:
    """``aal.nii.txt``: lines ``<index> <name> <code>`` -> {index: name}."""
    names = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    if not names:
        raise ValueError(f"no AAL region names found in {path}")
    return names


def lobe_lookup(names: dict[int, str]) -> np.ndarray:
    """Array mapping an AAL index to 1 + lobe index (0 = background / unassigned)."""
    lookup = np.zeros(max(names) + 1, dtype=np.uint8)
    for index, name in names.items():
        for lobe_index, lobe in enumerate(LOBES):
            if name.startswith(LOBE_PREFIXES[lobe]):
                lookup[index] = lobe_index + 1
                break
    return lookup


def nucleus_lookup(names: dict[int, str]) -> dict[int, int]:
    """{AAL index: deep-grey-nucleus category} for the left and right caudate, putamen, ... amygdala."""
    out = {}
    for index, name in names.items():
        base = name.rsplit("_", 1)[0].lower()
        if base in DEEP_GREY_NUCLEI:
            out[index] = DEEP_GREY_NUCLEI.index(base)
    return out


def axial_stack(volume: np.ndarray) -> np.ndarray:
    """RAS-ordered (x, y, z) volume -> (z, rows, cols) axial slices with anterior at the top."""
    return np.ascontiguousarray(np.flip(np.transpose(volume, (2, 1, 0)), axis=1))
