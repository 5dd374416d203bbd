"""Real medical files shipped by installed packages (pydicom-data, nilearn): nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest


def dicom_test_file(name: str) -> str:
    """Path of a DICOM file from pydicom / pydicom-data (skips if the data package is missing)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom-data does not ship {name}")
    return path


@pytest.fixture
def dicom_file():
    """`dicom_file(name)` -> path of a real DICOM test file."""
    return dicom_test_file


@pytest.fixture(scope="session")
def mni_nifti_path(tmp_path_factory) -> Path:
    """The MNI152 T1 template (1 mm, 197 x 233 x 189) saved as a real .nii.gz file."""
    import nibabel
    from nilearn.datasets import load_mni152_template

    path = tmp_path_factory.mktemp("nifti") / "mni152_t1_1mm.nii.gz"
    nibabel.save(load_mni152_template(resolution=1), path)
    return path
