"""Stack a folder of single-slice DICOM files (one CT/MR series) into a 3-D volume."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._optional import require
from .dicom import load_dicom


def load_dicom_series(
    source: str | os.PathLike | Iterable[str | os.PathLike], series_uid: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM series -> (volume (slices, H, W), metadata); slices ordered along the patient axis.

    `source` is a folder (every readable DICOM image in it; other files are skipped) or a list of files. Slices are
    sorted by their position along the slice normal (ImagePositionPatient . normal of ImageOrientationPatient),
    falling back to InstanceNumber. CT comes back in HU as in `load_dicom`. With several series in the folder, pass
    `series_uid`.

    Metadata: that of the first slice plus "spacing" (slice spacing, row spacing, column spacing in mm), "num_slices",
    "series_uid". Iterate the slices with `iter_slices(volume, axis=0)`.
    """
    pydicom = require("pydicom", "dicom")
    paths = _list_files(source)
    headers = []
    for path in paths:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # not DICOM: skipped, like other files in a folder
            continue
        if "Rows" in header:  # an image (RT plans, reports and other non-images have no rows)
            headers.append((path, header))
    if not headers:
        raise ValueError(f"No DICOM image slices found in {source!r}.")
    uids = sorted({str(h.get("SeriesInstanceUID", "")) for _, h in headers})
    if series_uid is None and len(uids) > 1:
        raise ValueError(f"{len(uids)} series found ({uids}); choose one with series_uid=.")
    if series_uid is not None:
        headers = [(p, h) for p, h in headers if str(h.get("SeriesInstanceUID", "")) == series_uid]
        if not headers:
            raise ValueError(f"No slices of series {series_uid!r} found; available: {uids}.")
    positions = [_position(h) for _, h in headers]
    if all(p is not None for p in positions):
        order = np.argsort(positions, kind="stable")
        sorted_positions = np.asarray(positions)[order]
        if len(set(np.round(sorted_positions, 4))) != len(sorted_positions):
            raise ValueError("Several slices share one position: the folder holds duplicates or several series.")
    else:
        order = np.argsort([int(h.get("InstanceNumber", 0) or 0) for _, h in headers], kind="stable")
        sorted_positions = None

    slices, first_meta = [], None
    for index in order:
        array, meta = load_dicom(headers[index][0])
        if array.ndim != 2:
            raise ValueError(f"{headers[index][0]!r} is not a single grey slice (shape {array.shape}).")
        if slices and array.shape != slices[0].shape:
            raise ValueError(f"Slice shapes differ in the series: {slices[0].shape} and {array.shape}.")
        slices.append(array)
        first_meta = first_meta or meta
    dtype = np.result_type(*[s.dtype for s in slices])
    volume = np.stack(slices).astype(dtype, copy=False)

    if sorted_positions is not None and len(sorted_positions) > 1:
        slice_spacing = float(np.median(np.diff(sorted_positions)))
    else:
        thickness = first_meta.get("slice_thickness")
        slice_spacing = float(thickness) if thickness else None
    pixel_spacing = first_meta.get("pixel_spacing") or (None, None)
    metadata = dict(first_meta)
    metadata.update(
        shape=tuple(volume.shape),
        num_slices=len(slices),
        spacing=(slice_spacing, *pixel_spacing),
        series_uid=str(headers[0][1].get("SeriesInstanceUID", "")) or None,
    )
    return volume, metadata


def _list_files(source: Any) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return sorted(str(p) for p in path.iterdir() if p.is_file())
        if path.is_file():
            return [str(path)]
        raise FileNotFoundError(f"No DICOM folder or file at {str(path)!r}.")
    paths = [str(p) for p in source]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"Missing DICOM files: {missing[:3]}{' ...' if len(missing) > 3 else ''}")
    return paths


def _position(header: Any) -> float | None:
    position, orientation = header.get("ImagePositionPatient"), header.get("ImageOrientationPatient")
    if position is None or orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    return float(np.dot(normal, np.asarray(position, float)))
