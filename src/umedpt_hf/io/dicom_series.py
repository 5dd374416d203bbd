"""Stack a folder of single-slice DICOM files (one CT/MR series) into a 3-D volume, refusing gaps and broken slices."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .dicom import load_dicom, read_dicom_dataset

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
SPACING_TOLERANCE = 0.01  # relative: slice distances within 1 % of their median count as even


def load_dicom_series(
    source: str | os.PathLike | Iterable[str | os.PathLike],
    series_uid: str | None = None,
    skip_unreadable: bool = False,
    allow_uneven_spacing: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM series -> (volume (slices, H, W), metadata); slices ordered along the patient axis.

    `source` is a folder or a list of files. In a folder, files that are not DICOM (no DICM preamble, no .dcm-like
    name) and DICOM files that are not images (reports, RT plans) are left out and listed in "ignored_files". A
    DICOM slice that cannot be read, and slices whose distances are uneven (a gap: a missing or skipped slice), are
    errors naming the files; `skip_unreadable=True` leaves unreadable slices out (listed in "skipped"), and
    `allow_uneven_spacing=True` accepts uneven distances (all of them in "slice_spacings").

    Slices are sorted by their position along the slice normal (ImagePositionPatient . normal of
    ImageOrientationPatient), falling back to InstanceNumber. CT comes back in HU as in `load_dicom`. With several
    series in the folder, pass `series_uid`.

    Metadata: that of the first slice plus "spacing" (slice spacing, row spacing, column spacing in mm; the slice
    spacing is the median distance), "slice_positions" and "slice_spacings" (mm, None without positions),
    "uneven_spacing", "num_slices", "series_uid", "files" (in volume order), "skipped" ([{"file", "reason"}]) and
    "ignored_files". Iterate the slices with `iter_slices(volume, axis=0)`.
    """
    paths, listed = _list_files(source)
    headers, skipped, ignored = [], [], []
    for path in paths:
        try:
            header, _ = read_dicom_dataset(path, stop_before_pixels=True)
        except (ValueError, OSError) as error:
            if not listed and not _looks_like_dicom(path):
                ignored.append(path)  # a README, a thumbnail, ...: not part of any series
            elif skip_unreadable:
                skipped.append({"file": path, "reason": str(error)})
            else:
                raise ValueError(
                    f"Unreadable DICOM slice {path!r}: {error} (skip_unreadable=True leaves it out; the spacing check "
                    "then shows the gap)"
                ) from error
            continue
        if "Rows" in header:  # an image (RT plans, reports and other non-images have no rows)
            headers.append((path, header))
        elif "SOPClassUID" in header:  # a DICOM object of another kind: a report, an RT plan, ...
            ignored.append(path)
        elif skip_unreadable:
            skipped.append({"file": path, "reason": "no image header and no SOP class"})
        else:
            raise ValueError(f"Unreadable DICOM slice {path!r}: no image header and no SOP class (a damaged file?)")
    if not headers:
        raise ValueError(f"No DICOM image slices found in {source!r}.")
    headers = _one_series(headers, series_uid)
    positions = [_position(h) for _, h in headers]
    if all(p is not None for p in positions):
        order = [int(i) for i in np.argsort(positions, kind="stable")]
        sorted_positions = [positions[i] for i in order]
        if len(set(np.round(sorted_positions, 4))) != len(sorted_positions):
            raise ValueError("Several slices share one position: the folder holds duplicates or several series.")
    else:
        order = [int(i) for i in np.argsort([int(h.get("InstanceNumber", 0) or 0) for _, h in headers], kind="stable")]
        sorted_positions = None

    slices, files, first_meta = [], [], None
    for index in order:
        path = headers[index][0]
        try:
            array, meta = load_dicom(path)
        except ValueError as error:
            if not skip_unreadable:
                raise ValueError(
                    f"Unreadable DICOM slice {path!r}: {error} (skip_unreadable=True leaves it out)"
                ) from error
            skipped.append({"file": path, "reason": str(error)})
            continue
        if array.ndim != 2:
            raise ValueError(f"{path!r} is not a single grey slice (shape {array.shape}).")
        if slices and array.shape != slices[0].shape:
            raise ValueError(f"Slice shapes differ in the series: {slices[0].shape} and {array.shape} ({path!r}).")
        slices.append(array)
        files.append(path)
        first_meta = first_meta or meta
    if not slices:
        raise ValueError(f"No readable DICOM slice in {source!r}; skipped: {[s['file'] for s in skipped]}.")
    volume = np.stack(slices).astype(np.result_type(*[s.dtype for s in slices]), copy=False)

    kept = set(files)
    positions_kept = [p for i, p in zip(order, sorted_positions or []) if headers[i][0] in kept] or None
    slice_spacing, spacings, uneven = _slice_spacing(positions_kept, files, skipped, allow_uneven_spacing)
    if slice_spacing is None:
        thickness = first_meta.get("slice_thickness")
        slice_spacing = float(thickness) if thickness else None
    metadata = dict(first_meta)
    metadata.update(
        shape=tuple(volume.shape),
        num_slices=len(slices),
        spacing=(slice_spacing, *(first_meta.get("pixel_spacing") or (None, None))),
        slice_positions=positions_kept,
        slice_spacings=spacings,
        uneven_spacing=uneven,
        series_uid=str(headers[0][1].get("SeriesInstanceUID", "")) or None,
        files=files,
        skipped=skipped,
        ignored_files=ignored,
    )
    return volume, metadata


def _slice_spacing(
    positions: list[float] | None, files: list[str], skipped: list[dict], allow_uneven: bool
) -> tuple[float | None, list[float] | None, bool]:
    """(median distance, all distances, uneven?) of sorted slice positions; uneven is an error unless allowed."""
    if not positions or len(positions) < 2:
        return None, None, False
    distances = np.diff(positions)
    median = float(np.median(distances))
    worst = int(np.argmax(np.abs(distances - median)))
    uneven = bool(abs(distances[worst] - median) > SPACING_TOLERANCE * median)
    if uneven and not allow_uneven:
        note = f"; skipped as unreadable: {[s['file'] for s in skipped]}" if skipped else ""
        raise ValueError(
            f"Uneven slice spacing: {distances[worst]:.4g} mm between {files[worst]!r} and {files[worst + 1]!r}, "
            f"{median:.4g} mm elsewhere (a missing slice?){note}. allow_uneven_spacing=True keeps the volume and "
            "reports every distance in metadata['slice_spacings']."
        )
    return median, [float(d) for d in distances], uneven


def _one_series(headers: list[tuple[str, Any]], series_uid: str | None) -> list[tuple[str, Any]]:
    uids = sorted({str(h.get("SeriesInstanceUID", "")) for _, h in headers})
    if series_uid is None and len(uids) > 1:
        raise ValueError(f"{len(uids)} series found ({uids}); choose one with series_uid=.")
    if series_uid is not None:
        headers = [(p, h) for p, h in headers if str(h.get("SeriesInstanceUID", "")) == series_uid]
        if not headers:
            raise ValueError(f"No slices of series {series_uid!r} found; available: {uids}.")
    return headers


def _looks_like_dicom(path: str) -> bool:
    """A DICOM name (.dcm, .dicom, .ima) or the DICM magic after the 128-byte preamble."""
    if path.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _list_files(source: Any) -> tuple[list[str], bool]:
    """(files, listed by the caller?) of a folder, a file or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return sorted(str(p) for p in path.iterdir() if p.is_file()), False
        if path.is_file():
            return [str(path)], True
        raise FileNotFoundError(f"No DICOM folder or file at {str(path)!r}.")
    paths = [str(p) for p in source]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"Missing DICOM files: {missing[:3]}{' ...' if len(missing) > 3 else ''}")
    return paths, True


def _position(header: Any) -> float | None:
    position, orientation = header.get("ImagePositionPatient"), header.get("ImageOrientationPatient")
    if position is None or orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    return float(np.dot(normal, np.asarray(position, float)))
