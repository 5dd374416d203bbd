"""load_dicom on real radiographs, CT and MR files from pydicom-data (paths, bytes, file objects), and broken files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
from umedpt_hf.io import load_dicom

PROCESSOR = UMedPTImageProcessor(size={"height": 64, "width": 64})


def test_chest_radiograph_to_pixel_values_in_two_lines(dicom_file):
    array, meta = load_dicom(dicom_file("RG1_UNCR.dcm"))
    pixel_values = PROCESSOR(array, modality=meta["modality"])["pixel_values"]

    assert pixel_values.shape == (1, 3, 64, 64) and torch.isfinite(pixel_values).all()
    assert meta["modality"] == "xray" and meta["dicom_modality"] == "CR" and meta["body_part"] == "CHEST"
    assert array.shape == (1955, 1841) and array.dtype == np.uint16  # 16-bit kept
    assert meta["photometric_interpretation"] == "MONOCHROME1" and meta["inverted"]
    raw = pydicom.dcmread(dicom_file("RG1_UNCR.dcm")).pixel_array
    np.testing.assert_array_equal(array, raw.max() + raw.min() - raw.astype(np.int64))
    # after inversion dense tissue is bright: mediastinum brighter than both lung fields
    height, width = array.shape

    def region(y0, y1, x0, x1):
        return np.median(array[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)])

    mediastinum = region(0.3, 0.5, 0.45, 0.55)
    assert mediastinum > region(0.3, 0.5, 0.2, 0.35) and mediastinum > region(0.3, 0.5, 0.65, 0.8)


def test_ct_slice_in_hounsfield_units(dicom_file):
    array, meta = load_dicom(dicom_file("CT_small.dcm"))
    pixel_values = PROCESSOR(array, modality=meta["modality"], window="soft_tissue")["pixel_values"]

    assert pixel_values.shape == (1, 3, 64, 64)
    raw = pydicom.dcmread(dicom_file("CT_small.dcm")).pixel_array
    np.testing.assert_array_equal(array, raw.astype(np.int32) - 1024)  # slope 1, intercept -1024
    assert meta["units"] == "HU" and meta["modality"] == "ct" and meta["rescale_intercept"] == -1024
    assert meta["pixel_spacing"] == pytest.approx((0.661468, 0.661468))
    # known tissue values on the real slice: air-like voxels black, fat darker than water, bone white
    windowed = UMedPTImageProcessor(do_resize=False, do_normalize=False)(array, modality="ct", window="soft_tissue")
    values = windowed["pixel_values"][0, 0].numpy()
    assert (values[array < -500] == 0).all() and (values[array > 700] == 1).all()
    fat, water_like = (array > -150) & (array < -50), (array > -10) & (array < 10)
    assert fat.sum() > 50 and water_like.sum() > 10
    assert values[fat].max() < values[water_like].min()
    bone = UMedPTImageProcessor(do_resize=False, do_normalize=False)(array, modality="ct", window="bone")
    assert bone["pixel_values"][0, 0].numpy()[array > 700].min() > 0.6  # bone > 700 HU stays bright in the bone window


def test_mr_single_and_multi_frame(dicom_file):
    array, meta = load_dicom(dicom_file("MR_small.dcm"))
    assert meta["modality"] == "mri" and array.shape == (64, 64) and array.dtype == np.int16
    assert PROCESSOR(array, modality=meta["modality"])["pixel_values"].shape == (1, 3, 64, 64)

    frames, meta = load_dicom(dicom_file("emri_small.dcm"))
    assert frames.shape == (10, 64, 64) and meta["number_of_frames"] == 10
    assert PROCESSOR(list(frames), modality="mri")["pixel_values"].shape == (10, 3, 64, 64)


def test_compressed_and_colour_files(dicom_file):
    rle, _ = load_dicom(dicom_file("MR_small_RLE.dcm"))
    plain, _ = load_dicom(dicom_file("MR_small.dcm"))
    np.testing.assert_array_equal(rle, plain)
    colour, meta = load_dicom(dicom_file("US1_UNCR.dcm"))
    assert colour.shape == (480, 640, 3) and meta["modality"] == "ultrasound"
    assert PROCESSOR(colour, modality=meta["modality"])["pixel_values"].shape == (1, 3, 64, 64)


def test_voi_lut_is_applied_on_request(dicom_file):
    array, meta = load_dicom(dicom_file("RG3_UNCR.dcm"), apply_voi=True)
    assert meta["voi_applied"] and array.dtype == np.float32 and meta["window"] == (550.0, 1024.0)


def test_broken_files_raise_clear_errors(dicom_file, tmp_path):
    with pytest.raises(ValueError, match="no pixel data"):
        load_dicom(dicom_file("rtplan.dcm"))
    with pytest.raises(ValueError, match="Cannot decode the pixel data"):
        load_dicom(dicom_file("MR_truncated.dcm"))
    truncated = tmp_path / "half.dcm"
    with open(dicom_file("CT_small.dcm"), "rb") as handle:
        payload = handle.read()
    truncated.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="pixel data"):
        load_dicom(truncated)
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="not a DICOM file"):
        load_dicom(noise)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="not a DICOM file"):
        load_dicom(text)
    with pytest.raises(FileNotFoundError):
        load_dicom(tmp_path / "missing.dcm")


def test_missing_pydicom_names_the_extra(dicom_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match=r'pip install "umedpt_hf\[dicom\]"'):
        load_dicom(dicom_file("CT_small.dcm"))


def test_bytes_and_file_objects_read_like_paths(dicom_file):
    path = dicom_file("RG1_UNCR.dcm")
    expected, expected_meta = load_dicom(path)
    payload = Path(path).read_bytes()
    from_bytes, meta = load_dicom(payload)
    assert np.array_equal(from_bytes, expected) and meta == expected_meta
    with open(path, "rb") as handle:
        from_handle, _ = load_dicom(handle)
    assert np.array_equal(from_handle, expected)
    with pytest.raises(ValueError, match=r"<4096 bytes> is not a DICOM file"):
        load_dicom(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(TypeError, match="path, bytes or a binary file object"):
        load_dicom(12)
