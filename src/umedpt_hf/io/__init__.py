"""Medical image I/O: DICOM and NIfTI readers, volume slicing, per-slice feature extraction.

pydicom and nibabel are optional extras (`pip install "umedpt_hf[dicom]"` / `"umedpt_hf[nifti]"`); they are imported
only when a file is read.
"""

from __future__ import annotations

from .dicom import DICOM_MODALITY_MAP, load_dicom
from .dicom_series import load_dicom_series
from .nifti import load_nifti
from .volumes import extract_volume_features, iter_slices, volume_value_range

__all__ = [
    "DICOM_MODALITY_MAP",
    "extract_volume_features",
    "iter_slices",
    "load_dicom",
    "load_dicom_series",
    "load_nifti",
    "volume_value_range",
]
