"""Intensity rules behind `UMedPTImageProcessor`: modality -> rule, CT windows, dtype / percentile / min-max scaling.

Works on one channels-first image at a time. Imports only numpy (copied next to saved weights for remote code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# CT display windows in Hounsfield units as (centre, width).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "mediastinum": (50.0, 350.0),
    "liver": (60.0, 160.0),
    "wide": (0.0, 2000.0),
}
DEFAULT_CT_WINDOW = "soft_tissue"

# How each modality maps raw values to [0, 1] unless `intensity_scaling` overrides it.
#   "dtype":      divide by the dtype's maximum (uint8 / 255, uint16 / 65535); float images must already be in [0, 1]
#   "percentile": clip to the `percentiles` of the image (or to `value_range`), then min-max
#   "minmax":     min-max over the image (or over `value_range`)
#   "window":     CT window in HU (`window`); 8-bit CT exports are taken as already windowed ("dtype")
#   "auto":       uint8 -> "dtype", float in [0, 1] -> "dtype", anything else -> "percentile"
MODALITY_INTENSITY: dict[str, str] = {
    "microscopy": "dtype",
    "histology": "dtype",
    "fluorescence": "dtype",
    "dermoscopy": "dtype",
    "fundus": "dtype",
    "endoscopy": "dtype",
    "rgb": "dtype",
    "xray": "percentile",
    "mammography": "percentile",
    "mri": "percentile",
    "ultrasound": "percentile",
    "pet": "percentile",
    "nuclear": "percentile",
    "ct": "window",
}
INTENSITY_SCALINGS = ("auto", "dtype", "percentile", "minmax", "window", "none")

FLOAT32_EXACT = 2**24  # integers up to this magnitude are exact in float32 (24-bit significand)
HISTOGRAM_SPAN = 2**16  # integer images spanning at most this many values get their percentiles from a histogram


def working_dtype(image: np.ndarray) -> type:
    """float32 when it holds every value of `image` exactly (by value, so int16 and int32 HU give identical results),
    else float64."""
    if image.dtype.kind == "f":
        return np.float32 if image.dtype.itemsize <= 4 else np.float64
    if image.dtype.itemsize <= 2:
        return np.float32
    return np.float32 if int(image.min()) >= -FLOAT32_EXACT and int(image.max()) <= FLOAT32_EXACT else np.float64


def resolve_window(window: Any) -> list[tuple[float, float]]:
    """Window name, (centre, width) pair, or a list of those -> list of (centre, width) pairs (None: soft tissue)."""
    if window is None:
        window = DEFAULT_CT_WINDOW
    if isinstance(window, str):
        if window not in CT_WINDOWS:
            raise ValueError(
                f"Unknown CT window {window!r}; use one of {sorted(CT_WINDOWS)} or a (centre, width) pair."
            )
        return [CT_WINDOWS[window]]
    if isinstance(window, Sequence) and len(window) == 2 and all(_is_number(v) for v in window):
        centre, width = float(window[0]), float(window[1])
        if not (math.isfinite(centre) and math.isfinite(width)) or width <= 0:
            raise ValueError(f"A CT window needs a finite centre and a positive finite width, got {tuple(window)}.")
        return [(centre, width)]
    if isinstance(window, Sequence) and len(window) > 0 and not isinstance(window, str):
        return [pair for item in window for pair in resolve_window(item)]
    raise ValueError(f"Invalid CT window {window!r}: use a preset name {sorted(CT_WINDOWS)} or a (centre, width) pair.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def resolve_intensity_scaling(modality: str | None, intensity_scaling: str | None) -> str:
    """The scaling rule for a modality, unless `intensity_scaling` names one explicitly."""
    if modality is not None and modality not in MODALITY_INTENSITY:
        raise ValueError(f"Unknown modality {modality!r}; use one of {sorted(MODALITY_INTENSITY)} or None.")
    if intensity_scaling is not None:
        if intensity_scaling not in INTENSITY_SCALINGS:
            raise ValueError(f"Unknown intensity_scaling {intensity_scaling!r}; use one of {INTENSITY_SCALINGS}.")
        return intensity_scaling
    return MODALITY_INTENSITY.get(modality, "auto") if modality is not None else "auto"


def check_value_range(value_range: Any) -> tuple[float, float] | None:
    """A fixed clipping range (low, high): two finite numbers with low < high (None: per-image statistics)."""
    if value_range is None:
        return None
    if (
        not isinstance(value_range, Sequence)
        or isinstance(value_range, str)
        or len(value_range) != 2
        or not all(_is_number(v) for v in value_range)
    ):
        raise ValueError(f"value_range must be two numbers (low, high), got {value_range!r}.")
    low, high = float(value_range[0]), float(value_range[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"value_range must be finite, got ({low}, {high}): an infinite bound makes every pixel NaN.")
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got ({low}, {high}).")
    return low, high


def check_percentiles(percentiles: Any) -> tuple[float, float]:
    """Clipping percentiles (low, high) with 0 <= low < high <= 100."""
    if (
        not isinstance(percentiles, Sequence)
        or isinstance(percentiles, str)
        or len(percentiles) != 2
        or not all(_is_number(v) for v in percentiles)
        or not 0.0 <= float(percentiles[0]) < float(percentiles[1]) <= 100.0
    ):
        raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 100, got {percentiles!r}.")
    return float(percentiles[0]), float(percentiles[1])


def percentile_range(image: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """np.percentile (linear) of the whole image at `low` and `high`; integer images spanning up to 2**16 values go
    through a histogram (exact, and the same for any integer dtype holding the same values)."""
    offset = int(image.min()) if image.dtype.kind in "ui" else 0
    if image.dtype.kind in "ui" and int(image.max()) - offset < HISTOGRAM_SPAN:
        flat = image.reshape(-1)
        direct = offset == 0 and image.dtype.kind == "u" and image.dtype.itemsize <= 2
        counts = np.bincount(flat if direct else flat.astype(np.intp) - offset)
        cumulative = np.cumsum(counts)
        values = []
        for q in (low, high):
            position = q / 100.0 * (flat.size - 1)
            below = math.floor(position)
            lo, hi = np.searchsorted(cumulative, [below, min(below + 1, flat.size - 1)], side="right")
            values.append(float(lo + offset) + (position - below) * float(hi - lo))
        return values[0], values[1]
    data = image if image.dtype.kind == "f" else image.astype(np.float64)
    values = np.percentile(data, [low, high])
    return float(values[0]), float(values[1])


def scale_intensity(
    image: np.ndarray,
    scaling: str,
    *,
    percentiles: Sequence[float] = (0.5, 99.5),
    window: Any = None,
    value_range: Sequence[float] | None = None,
) -> np.ndarray:
    """Map one (C, H, W) image to float32 in [0, 1] (several CT windows give one channel each).

    Arithmetic is in float32 where it is exact for the input dtype (8/16-bit integers, float16/32) and in float64
    otherwise, so 16-bit and HU values are scaled without loss. `value_range` (low, high) replaces the per-image
    statistics of "percentile"/"minmax" (e.g. computed once over a whole volume).
    """
    kind = image.dtype.kind
    if scaling == "none":
        return image.astype(np.float32)
    if scaling == "window" and kind == "u" and image.dtype.itemsize == 1:
        scaling = "dtype"  # 8-bit CT (PNG/JPEG exports) is already windowed for display
    if scaling == "auto":
        is_unit_float = kind == "f" and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        scaling = "dtype" if (kind == "u" and image.dtype.itemsize == 1) or is_unit_float else "percentile"
    working = working_dtype(image)
    if scaling == "dtype":
        if kind == "f":
            low, high = float(image.min()), float(image.max())
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"Float image with values in [{low:.4g}, {high:.4g}] cannot use dtype scaling (it expects [0, 1]); "
                    "pass uint8/uint16 data or set intensity_scaling='minmax' or 'percentile'."
                )
            return image.astype(np.float32)
        maximum = float(np.iinfo(image.dtype).max)
        scaled = image.astype(working) if kind == "u" else np.clip(image, 0, None).astype(working)
        return (scaled / working(maximum)).astype(np.float32, copy=False)
    if scaling == "window":
        channels = [_clip_scale(image, centre - width / 2, centre + width / 2, working) for centre, width in
                    resolve_window(window)]  # fmt: skip
        if len(channels) == 1:
            return channels[0]
        if image.shape[0] != 1:
            raise ValueError(f"Several CT windows need a single-channel image, got {image.shape[0]} channels.")
        return np.concatenate(channels, axis=0)
    fixed = check_value_range(value_range)
    if fixed is not None:
        low, high = fixed
    elif scaling == "percentile":
        low, high = percentile_range(image, *check_percentiles(percentiles))
    elif scaling == "minmax":
        low, high = float(image.min()), float(image.max())
    else:
        raise ValueError(f"Unknown intensity scaling {scaling!r}; use one of {INTENSITY_SCALINGS}.")
    return _clip_scale(image, low, high, working)


def _clip_scale(image: np.ndarray, low: float, high: float, working: type) -> np.ndarray:
    if not high > low:
        return np.zeros(image.shape, dtype=np.float32)
    magnitude = max(abs(low), abs(high))
    if magnitude > 1e300:  # keep (high - low) finite for values near the float64 limit
        data = image.astype(np.float64) / magnitude
        return (
            (np.clip(data, low / magnitude, high / magnitude) - low / magnitude) / ((high - low) / magnitude)
        ).astype(np.float32)
    if working is np.float32 and not (_fits_float32(low) and _fits_float32(high)):
        working = np.float64
    data = np.clip(image.astype(working), working(low), working(high))
    data -= working(low)
    data /= working(high - low)
    return data.astype(np.float32, copy=False)


def _fits_float32(value: float) -> bool:
    return float(np.float32(value)) == value
