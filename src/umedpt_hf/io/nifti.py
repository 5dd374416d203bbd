"""Read NIfTI volumes (nibabel), reoriented to RAS+ by default."""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from ._optional import require


def load_nifti(path: str | os.PathLike, canonical: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a NIfTI-1/2 file -> (volume, metadata).

    With `canonical` (default) the volume is reoriented to the closest RAS+ orientation, so axis 0 runs left->right,
    axis 1 posterior->anterior and axis 2 inferior->superior (axial slices: `axis=2`). Scaling (scl_slope/inter) is
    applied by nibabel; unscaled integer data keeps its dtype.

    Metadata: "spacing" (voxel size in mm per axis), "orientation" (axis codes such as "RAS"), "affine" (4x4 list),
    "shape", "dtype", "original_orientation".
    """
    nibabel = require("nibabel", "nifti")
    from nibabel.filebasedimages import ImageFileError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No NIfTI file at {path!r}.")
    try:
        image = nibabel.load(path)
        original = "".join(nibabel.aff2axcodes(image.affine))
        if canonical:
            image = nibabel.as_closest_canonical(image)
        volume = np.asarray(image.dataobj)
    except ImageFileError as error:
        raise ValueError(f"{path!r} is not a readable NIfTI file: {error}") from error
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise ValueError(f"Corrupt or truncated NIfTI file {path!r}: {type(error).__name__}: {error}") from error
    if volume.size == 0:
        raise ValueError(f"NIfTI file {path!r} holds an empty volume of shape {volume.shape}.")
    zooms = image.header.get_zooms()
    metadata = {
        "spacing": tuple(float(z) for z in zooms[: min(3, volume.ndim)]),
        "orientation": "".join(nibabel.aff2axcodes(image.affine)),
        "original_orientation": original,
        "affine": np.asarray(image.affine, dtype=float).tolist(),
        "shape": tuple(volume.shape),
        "dtype": str(volume.dtype),
    }
    return volume, metadata
