"""Read DICOM images into arrays a `UMedPTImageProcessor` understands (HU for CT, 16-bit kept, MONOCHROME1 inverted)."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

import numpy as np

from ._optional import require

# DICOM Modality (0008,0060) -> processor modality.
DICOM_MODALITY_MAP: dict[str, str] = {
    "CT": "ct",
    "MR": "mri",
    "CR": "xray",
    "DX": "xray",
    "DR": "xray",
    "RG": "xray",
    "RF": "xray",
    "XA": "xray",
    "PX": "xray",
    "IO": "xray",
    "MG": "mammography",
    "US": "ultrasound",
    "PT": "pet",
    "NM": "nuclear",
    "SM": "histology",
    "XC": "rgb",
    "ES": "endoscopy",
    "OP": "fundus",
    "GM": "microscopy",
}
_XRAY_LIKE = {"xray", "mammography"}
DicomSource = str | os.PathLike | bytes | bytearray | BinaryIO


def source_name(source: Any) -> str:
    """How a DICOM source is named in messages: its path, a file object's name, or "<N bytes>"."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(source).__name__}>"


def read_dicom_dataset(source: DicomSource, stop_before_pixels: bool = False) -> tuple[Any, str]:
    """(pydicom dataset, name for messages) of a path, bytes or binary file object; one-line ValueError otherwise."""
    pydicom = require("pydicom", "dicom")
    from pydicom.errors import InvalidDicomError

    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"No DICOM file at {name}.")
        handle: Any = os.fspath(source)
    elif isinstance(source, (bytes, bytearray)):
        handle = io.BytesIO(bytes(source))
    elif hasattr(source, "read") and hasattr(source, "seek"):
        handle = source
    else:
        raise TypeError(f"A DICOM source is a path, bytes or a binary file object, got {type(source).__name__}.")
    start = handle.tell() if not isinstance(handle, str) else 0
    try:
        try:
            dataset = pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            # raw datasets without the 128-byte preamble are legal; accept them only if they parse as an image
            if not isinstance(handle, str):
                handle.seek(start)
            dataset = pydicom.dcmread(handle, force=True, stop_before_pixels=stop_before_pixels)
            if "Rows" not in dataset or ("PixelData" not in dataset and not stop_before_pixels):
                raise ValueError(f"{name} is not a DICOM file (no DICM preamble and no image header).") from None
    except ValueError:
        raise
    except Exception as error:  # pydicom raises many types for damaged headers
        raise ValueError(f"Corrupt DICOM file {name}: {type(error).__name__}: {error}") from error
    return dataset, name


def load_dicom(path: DicomSource, apply_voi: bool | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM file -> (pixel array, metadata).

    `path` is a file path, the file's bytes, or a binary file-like object (an upload, a dataset row's bytes).

    - Rescale slope/intercept (modality LUT) is applied: CT comes back in Hounsfield units (float32).
    - The VOI LUT / window is applied when `apply_voi` is True; by default (None) only for X-ray-like modalities that
      carry a VOI LUT sequence (CT keeps HU for the processor's windows, MR keeps its raw range).
    - MONOCHROME1 is inverted (min + max - value, dtype kept), so bright means dense everywhere.
    - Multi-frame files give (frames, H, W[, 3]); iterate them with `umedpt_hf.io.iter_slices(array, axis=0)`.
    - Integer data without rescaling keeps its dtype (16-bit stays uint16/int16, no loss).

    Metadata holds acquisition facts only (no patient identifiers): "modality" (a processor modality or None),
    "dicom_modality", "body_part", "photometric_interpretation", "shape", "number_of_frames", "pixel_spacing" (mm,
    row/column), "slice_thickness", "rescale_slope", "rescale_intercept", "units", "window" (file's first centre/width),
    "voi_applied", "inverted", "bits_stored", "transfer_syntax".
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    dataset, name = read_dicom_dataset(path)
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        sop = getattr(dataset, "SOPClassUID", None)
        kind = getattr(sop, "name", str(sop)) if sop is not None else "unknown SOP class"
        raise ValueError(f"DICOM file {name} has no pixel data ({kind}): it is not an image.")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for truncated or undecodable pixel data
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        raise ValueError(
            f"Cannot decode the pixel data of {name} (transfer syntax {getattr(syntax, 'name', syntax)}): "
            f"{type(error).__name__}: {error}. Truncated file, or a compressed syntax needing pylibjpeg/gdcm."
        ) from error

    dicom_modality = str(dataset.get("Modality", "") or "").upper()
    modality = DICOM_MODALITY_MAP.get(dicom_modality)
    photometric = str(dataset.get("PhotometricInterpretation", "") or "").upper()
    slope, intercept = dataset.get("RescaleSlope"), dataset.get("RescaleIntercept")
    has_rescale = slope is not None or intercept is not None or "ModalityLUTSequence" in dataset
    is_colour = pixels.ndim >= 3 and pixels.shape[-1] == 3 and int(dataset.get("SamplesPerPixel", 1)) == 3

    if has_rescale and not is_colour:
        rescaled = apply_modality_lut(pixels, dataset)
        exact_int = float(slope if slope is not None else 1) == 1 and float(intercept or 0).is_integer()
        pixels = rescaled.astype(np.int16 if exact_int and _fits_int16(rescaled) else np.float32)
    if apply_voi is None:
        apply_voi = modality in _XRAY_LIKE and "VOILUTSequence" in dataset
    if apply_voi and not is_colour:
        pixels = apply_voi_lut(pixels, dataset).astype(np.float32)
    inverted = photometric == "MONOCHROME1"
    if inverted:
        low, high = pixels.min(), pixels.max()
        if pixels.dtype.kind == "f":
            pixels = (high - pixels) + low
        else:
            pixels = (np.int64(high) - pixels.astype(np.int64) + np.int64(low)).astype(pixels.dtype)

    spacing = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    centre, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    metadata: dict[str, Any] = {
        "modality": modality,
        "dicom_modality": dicom_modality or None,
        "body_part": str(dataset.get("BodyPartExamined")) if dataset.get("BodyPartExamined") else None,
        "photometric_interpretation": photometric or None,
        "shape": tuple(pixels.shape),
        "number_of_frames": frames,
        "pixel_spacing": tuple(float(v) for v in spacing) if spacing else None,
        "slice_thickness": float(dataset.SliceThickness) if dataset.get("SliceThickness") else None,
        "rescale_slope": float(slope) if slope is not None else None,
        "rescale_intercept": float(intercept) if intercept is not None else None,
        "units": "HU" if dicom_modality == "CT" and has_rescale else (str(dataset.get("RescaleType") or "") or None),
        "window": (_first(centre), _first(width)) if centre is not None and width is not None else None,
        "voi_applied": bool(apply_voi and not is_colour),
        "inverted": inverted,
        "bits_stored": int(dataset.get("BitsStored", 0) or 0) or None,
        "transfer_syntax": str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "")) or None,
    }
    return pixels, metadata


def _first(value: Any) -> float:
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _fits_int16(array: np.ndarray) -> bool:
    return bool(array.size) and array.min() >= -32768 and array.max() <= 32767
