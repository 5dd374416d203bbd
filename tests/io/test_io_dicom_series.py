"""load_dicom_series on series built from a real CT slice: spatial order, spacing, gaps, broken and foreign files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from umedpt_hf.io import iter_slices, load_dicom, load_dicom_series


def _write_series(folder, dicom_file, z_positions, series_uid=None):
    """Copies of the real CT slice at the given z positions (pixel values + k to tell them apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, z in enumerate(z_positions):
        dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
        dataset.PixelData = (dataset.pixel_array + k).astype(dataset.pixel_array.dtype).tobytes()
        dataset.ImagePositionPatient = [-158.135803, -179.035797, float(z)]
        dataset.InstanceNumber = 100 - k  # deliberately not in spatial order
        if series_uid is not None:
            dataset.SeriesInstanceUID = series_uid
        dataset.save_as(folder / f"slice_{(k * 7) % len(z_positions):02d}_{k}.dcm")


def test_dicom_series_is_stacked_in_spatial_order(dicom_file, tmp_path):
    z_positions = [-70.7, -75.7, -63.2, -68.2, -73.2, -65.7]  # 2.5 mm apart, shuffled
    _write_series(tmp_path, dicom_file, z_positions)
    (tmp_path / "README.txt").write_text("not DICOM")
    (tmp_path / "plan.dcm").write_bytes(Path(dicom_file("rtplan.dcm")).read_bytes())

    volume, meta = load_dicom_series(tmp_path)
    assert volume.shape == (6, 128, 128) and meta["num_slices"] == 6 and meta["units"] == "HU"
    assert meta["spacing"] == pytest.approx((2.5, 0.661468, 0.661468))
    hu, _ = load_dicom(dicom_file("CT_small.dcm"))
    offsets = [int(np.median(s.astype(np.int32) - hu)) for s in iter_slices(volume, axis=0)]
    assert offsets == [int(k) for k in np.argsort(z_positions)]  # slice i is the copy with the i-th smallest z


def test_dicom_series_errors(dicom_file, tmp_path):
    with pytest.raises(ValueError, match="No DICOM image slices"):
        load_dicom_series(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_dicom_series(tmp_path / "nowhere")
    _write_series(tmp_path, dicom_file, [0.0, 2.0], series_uid="1.2.3")
    other = tmp_path / "other"
    other.mkdir()
    _write_series(other, dicom_file, [0.0, 2.0], series_uid="1.2.4")
    for path in other.iterdir():
        path.rename(tmp_path / f"b_{path.name}")
    with pytest.raises(ValueError, match="2 series found"):
        load_dicom_series(tmp_path)
    volume, meta = load_dicom_series(tmp_path, series_uid="1.2.4")
    assert volume.shape[0] == 2 and meta["series_uid"] == "1.2.4"
    duplicate = tmp_path / "dup"
    duplicate.mkdir()
    _write_series(duplicate, dicom_file, [1.0, 1.0])
    with pytest.raises(ValueError, match="share one position"):
        load_dicom_series(duplicate)


def test_a_gap_in_the_series_is_an_error_naming_the_files(dicom_file, tmp_path):
    _write_series(tmp_path, dicom_file, [0.0, 2.5, 5.0, 10.0, 12.5])  # the slice at 7.5 mm is missing
    with pytest.raises(ValueError, match=r"Uneven slice spacing: 5 mm between .*slice_\d+_2.dcm' and .*_3.dcm'"):
        load_dicom_series(tmp_path)
    volume, meta = load_dicom_series(tmp_path, allow_uneven_spacing=True)
    assert volume.shape[0] == 5 and meta["uneven_spacing"]
    assert meta["slice_spacings"] == pytest.approx([2.5, 2.5, 5.0, 2.5]) and meta["spacing"][0] == pytest.approx(2.5)
    assert meta["slice_positions"] == pytest.approx([0.0, 2.5, 5.0, 10.0, 12.5])


def test_an_unreadable_slice_is_an_error_unless_skipped(dicom_file, tmp_path):
    _write_series(tmp_path, dicom_file, [0.0, 2.5, 5.0, 7.5])
    broken = sorted(tmp_path.glob("*_2.dcm"))[0]  # z = 5.0: truncate its pixel data
    broken.write_bytes(broken.read_bytes()[:-5000])
    with pytest.raises(ValueError, match=rf"Unreadable DICOM slice .*{broken.name}.*pixel data"):
        load_dicom_series(tmp_path)
    with pytest.raises(ValueError, match=rf"Uneven slice spacing.*skipped as unreadable: .*{broken.name}"):
        load_dicom_series(tmp_path, skip_unreadable=True)
    volume, meta = load_dicom_series(tmp_path, skip_unreadable=True, allow_uneven_spacing=True)
    assert volume.shape[0] == 3 and [Path(s["file"]).name for s in meta["skipped"]] == [broken.name]
    assert meta["slice_spacings"] == pytest.approx([2.5, 5.0])  # the real distances, gap included
    garbage = tmp_path / "fresh" / "slice_99.dcm"  # DICM magic, but nothing readable behind it
    _write_series(garbage.parent, dicom_file, [0.0, 2.5])
    garbage.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    with pytest.raises(ValueError, match=r"Unreadable DICOM slice .*slice_99\.dcm"):
        load_dicom_series(garbage.parent)


def test_foreign_files_are_listed_not_read(dicom_file, tmp_path):
    _write_series(tmp_path, dicom_file, [0.0, 2.5])
    (tmp_path / "README.txt").write_text("not DICOM")
    (tmp_path / "plan.dcm").write_bytes(Path(dicom_file("rtplan.dcm")).read_bytes())
    volume, meta = load_dicom_series(tmp_path)
    assert volume.shape[0] == 2 and meta["skipped"] == [] and not meta["uneven_spacing"]
    assert sorted(Path(p).name for p in meta["ignored_files"]) == ["README.txt", "plan.dcm"]
