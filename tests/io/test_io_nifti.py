"""load_nifti on the MNI152 template saved as a real .nii.gz, reorientation, and broken files."""

from __future__ import annotations

import gzip
import sys

import nibabel
import numpy as np
import pytest

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.io import iter_slices, load_nifti


def test_mni152_slice_to_pixel_values_in_two_lines(mni_nifti_path):
    volume, meta = load_nifti(mni_nifti_path)
    pixel_values = UMedPTImageProcessor(size={"height": 64, "width": 64})(volume[:, :, 90], modality="mri")[
        "pixel_values"
    ]

    assert pixel_values.shape == (1, 3, 64, 64)
    assert volume.shape == (197, 233, 189) and meta["shape"] == (197, 233, 189)
    assert meta["spacing"] == (1.0, 1.0, 1.0) and meta["orientation"] == "RAS"
    assert np.asarray(meta["affine"]).shape == (4, 4)
    assert pixel_values.std() > 0.1  # a real brain slice, not a blank


def test_reorientation_to_ras(mni_nifti_path, tmp_path):
    volume, _ = load_nifti(mni_nifti_path)
    image = nibabel.load(mni_nifti_path)
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = volume.shape[0] - 1
    flipped = nibabel.Nifti1Image(np.asarray(image.dataobj)[::-1].copy(), image.affine @ flip)
    path = tmp_path / "las.nii.gz"
    nibabel.save(flipped, path)

    canonical, meta = load_nifti(path)
    assert meta["original_orientation"] == "LAS" and meta["orientation"] == "RAS"
    np.testing.assert_allclose(canonical, volume)
    raw, raw_meta = load_nifti(path, canonical=False)
    assert raw_meta["orientation"] == "LAS"
    np.testing.assert_allclose(raw, volume[::-1])


def test_slices_along_each_axis(mni_nifti_path):
    volume, _ = load_nifti(mni_nifti_path)
    assert [s.shape for s in iter_slices(volume, axis=0, indices=[0, 98])] == [(233, 189)] * 2
    axial = list(iter_slices(volume, axis=2, step=20))
    assert len(axial) == 10 and axial[0].shape == (197, 233)
    np.testing.assert_array_equal(axial[1], volume[:, :, 20])
    with pytest.raises(ValueError, match="out of range"):
        list(iter_slices(volume, axis=1, indices=[500]))
    with pytest.raises(ValueError, match="3-D volume"):
        list(iter_slices(volume[0]))
    with pytest.raises(ValueError, match="axis"):
        list(iter_slices(volume, axis=3))


def test_broken_nifti_files_raise_clear_errors(mni_nifti_path, tmp_path):
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(mni_nifti_path.read_bytes()[:20000])
    with pytest.raises(ValueError, match="NIfTI"):
        load_nifti(truncated)
    not_nifti = tmp_path / "text.nii.gz"
    not_nifti.write_bytes(gzip.compress(b"hello" * 100))
    with pytest.raises(ValueError, match="NIfTI"):
        load_nifti(not_nifti)
    with pytest.raises(FileNotFoundError):
        load_nifti(tmp_path / "missing.nii.gz")


def test_missing_nibabel_names_the_extra(monkeypatch, mni_nifti_path):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r'pip install "umedpt_hf\[nifti\]"'):
        load_nifti(mni_nifti_path)
