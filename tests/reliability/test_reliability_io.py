"""Reliability of umedpt_hf.io: broken, foreign and truncated DICOM / NIfTI files, series with gaps and bad slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reliability_cases import Case, case_id, run_case

from umedpt_hf.io import iter_slices, load_dicom, load_dicom_series, load_nifti

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")


def pydicom_file(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom-data does not ship {name}")
    return path


def copy_of(name: str, target: str = "input.dcm", cut: int = 0):
    """A prepare step: a copy of a pydicom test file (its last `cut` bytes removed)."""

    def prepare(folder: Path) -> Path:
        payload = Path(pydicom_file(name)).read_bytes()
        path = folder / target
        path.write_bytes(payload[: len(payload) - cut] if cut else payload)
        return path

    return prepare


def written(name: str, payload: bytes):
    def prepare(folder: Path) -> Path:
        (folder / name).write_bytes(payload)
        return folder / name

    return prepare


def series(z_positions, *, shapes=None, uids=None, broken=None, extra=None):
    """A prepare step: a folder of copies of the real CT slice at `z_positions` (mm)."""

    def prepare(folder: Path) -> Path:
        root = folder / "series"
        root.mkdir()
        for k, z in enumerate(z_positions):
            dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
            pixels = dataset.pixel_array
            if shapes and shapes[k]:
                pixels = np.ascontiguousarray(pixels[: shapes[k], : shapes[k]])
                dataset.Rows, dataset.Columns = pixels.shape
            dataset.PixelData = pixels.tobytes()
            dataset.ImagePositionPatient = [0.0, 0.0, float(z)]
            if uids:
                dataset.SeriesInstanceUID = uids[k]
            dataset.save_as(root / f"slice_{k:02d}.dcm")
        if broken is not None:
            path = root / f"slice_{broken:02d}.dcm"
            path.write_bytes(path.read_bytes()[:-4000])
        for name, payload in (extra or {}).items():
            (root / name).write_bytes(payload)
        return root

    return prepare


def nifti(volume: np.ndarray, cut: int = 0):
    def prepare(folder: Path) -> Path:
        path = folder / "volume.nii.gz"
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), path)
        if cut:
            path.write_bytes(path.read_bytes()[:-cut])
        return path

    return prepare


def read_dicom(folder, path):
    return load_dicom(path)


def read_series(**kwargs):
    return lambda folder, path: load_dicom_series(path, **kwargs)


def check_skipped_and_spacing(result, folder):
    volume, meta = result
    assert volume.shape[0] == 3 and [Path(s["file"]).name for s in meta["skipped"]] == ["slice_01.dcm"]
    assert meta["uneven_spacing"] and meta["slice_spacings"] == pytest.approx([5.0, 2.5])


CASES = [
    # single files
    Case("missing DICOM file", lambda f, p: load_dicom(f / "nowhere.dcm"), error=FileNotFoundError, phrase="No DICOM"),
    Case("empty file", read_dicom, prepare=written("empty.dcm", b""), error=ValueError, phrase="not a DICOM file"),
    Case(
        "random bytes named .dcm",
        read_dicom,
        prepare=written("noise.dcm", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        error=ValueError,
        phrase="noise.dcm' is not a DICOM file",
    ),
    Case(
        "a text file",
        read_dicom,
        prepare=written("notes.txt", b"not an image"),
        error=ValueError,
        phrase="not a DICOM file",
    ),
    Case(
        "a PNG passed as DICOM",
        read_dicom,
        prepare=written("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(200)),
        error=ValueError,
        phrase="not a DICOM file",
    ),
    Case(
        "truncated pixel data",
        read_dicom,
        prepare=copy_of("CT_small.dcm", cut=5000),
        error=ValueError,
        phrase="Cannot decode the pixel data of .*input.dcm",
    ),
    Case(
        "DICOM object without pixels (RT plan)",
        read_dicom,
        prepare=copy_of("rtplan.dcm"),
        error=ValueError,
        phrase="has no pixel data",
    ),
    Case(
        "header cut in the middle",
        read_dicom,
        prepare=copy_of("CT_small.dcm", cut=len(Path(pydicom_file("CT_small.dcm")).read_bytes()) - 300),
        error=ValueError,
        phrase="input.dcm",
    ),
    Case(
        "the file's bytes read like its path",
        lambda folder, path: (load_dicom(path.read_bytes()), load_dicom(path)),
        prepare=copy_of("MR_small.dcm"),
        check=lambda result, folder: np.testing.assert_array_equal(result[0][0], result[1][0]),
    ),
    Case("not a source at all", lambda f, p: load_dicom(3.5), error=TypeError, phrase="path, bytes or a binary file"),
    # series
    Case("missing series folder", read_series(), prepare=lambda f: f / "nope", error=FileNotFoundError, phrase="nope"),
    Case(
        "empty series folder",
        read_series(),
        prepare=lambda f: (f / "empty").mkdir() or f / "empty",
        error=ValueError,
        phrase="No DICOM image slices",
    ),
    Case(
        "series with a missing slice (gap)",
        read_series(),
        prepare=series([0.0, 2.5, 7.5, 10.0]),
        error=ValueError,
        phrase=r"Uneven slice spacing: 5 mm between .*slice_01.dcm' and .*slice_02.dcm'",
    ),
    Case(
        "series with a truncated slice",
        read_series(),
        prepare=series([0.0, 2.5, 5.0, 7.5], broken=1),
        error=ValueError,
        phrase=r"Unreadable DICOM slice .*slice_01\.dcm",
    ),
    Case(
        "truncated slice skipped on request: the gap is still an error",
        read_series(skip_unreadable=True),
        prepare=series([0.0, 2.5, 5.0, 7.5], broken=1),
        error=ValueError,
        phrase=r"Uneven slice spacing.*skipped as unreadable: .*slice_01\.dcm",
    ),
    Case(
        "skip and allow on request: skipped slice and real distances reported",
        read_series(skip_unreadable=True, allow_uneven_spacing=True),
        prepare=series([0.0, 2.5, 5.0, 7.5], broken=1),
        check=check_skipped_and_spacing,
    ),
    Case(
        "series with a garbage .dcm file",
        read_series(),
        prepare=series([0.0, 2.5], extra={"slice_99.dcm": b"\0" * 128 + b"DICM" + b"\xff" * 40}),
        error=ValueError,
        phrase=r"Unreadable DICOM slice .*slice_99\.dcm",
    ),
    Case(
        "a README next to the slices is listed, not read",
        read_series(),
        prepare=series([0.0, 2.5], extra={"README.txt": b"notes"}),
        check=lambda result, folder: np.testing.assert_array_equal(
            [Path(p).name for p in result[1]["ignored_files"]], ["README.txt"]
        ),
    ),
    Case(
        "two slices at one position",
        read_series(),
        prepare=series([1.0, 1.0]),
        error=ValueError,
        phrase="share one position",
    ),
    Case(
        "two series in one folder",
        read_series(),
        prepare=series([0.0, 2.5], uids=["1.2.3", "1.2.4"]),
        error=ValueError,
        phrase="2 series found",
    ),
    Case(
        "slices of different sizes",
        read_series(),
        prepare=series([0.0, 2.5], shapes=[None, 64]),
        error=ValueError,
        phrase="Slice shapes differ",
    ),
    # NIfTI and volumes
    Case(
        "truncated NIfTI",
        lambda folder, path: load_nifti(path),
        prepare=nifti(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32), cut=3000),
        error=ValueError,
        phrase="Corrupt or truncated NIfTI file .*volume.nii.gz",
    ),
    Case(
        "a text file named .nii",
        lambda folder, path: load_nifti(path),
        prepare=written("scan.nii", b"hello " * 100),
        error=ValueError,
        phrase="scan.nii' is not a readable NIfTI",
    ),
    Case("missing NIfTI", lambda f, p: load_nifti(f / "x.nii.gz"), error=FileNotFoundError, phrase="No NIfTI"),
    Case(
        "slices of a 2-D array",
        lambda f, p: list(iter_slices(np.zeros((4, 4)))),
        error=ValueError,
        phrase="Expected a 3-D volume",
    ),
    Case(
        "slice index beyond the volume",
        lambda f, p: list(iter_slices(np.zeros((4, 4, 4)), indices=[7])),
        error=ValueError,
        phrase="Slice index 7 is out of range",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_io(case, tmp_path):
    run_case(case, tmp_path)
