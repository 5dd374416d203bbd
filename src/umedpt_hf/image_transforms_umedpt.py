"""Array-level transforms behind `UMedPTImageProcessor`: input checks, intensity scaling, channels and geometry.

Everything here works on one image at a time, channels-first. It may import only numpy, torch, PIL and transformers
(the file is copied next to saved weights for remote-code loading).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

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
#   "percentile": clip to the `percentiles` of the image, then min-max
#   "minmax":     min-max over the image
#   "window":     CT window in HU (`window`)
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

# Integer and float dtypes accepted as images. Booleans, complex numbers and objects are rejected.
SUPPORTED_KINDS = ("u", "i", "f")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion


# ----------------------------------------------------------------------------------------------------------- inputs
def to_numpy(image: Any, *, what: str = "image") -> np.ndarray:
    """PIL image, numpy array or torch tensor -> numpy array (PIL modes normalised to L, RGB, RGBA, I;16, I or F)."""
    if isinstance(image, PIL.Image.Image):
        keeps_values = image.mode in ("L", "RGB", "RGBA", "F") or image.mode.startswith("I")  # I, I;16, I;16B, ...
        if what != "image" and (keeps_values or image.mode in ("P", "1")):
            return np.array(image)  # label maps: palette indices are the labels
        if image.mode in ("1", "LA", "La"):
            image = image.convert("L")
        elif not keeps_values:
            image = image.convert("RGB")
        return np.array(image)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(image, np.ndarray):
        return image
    raise TypeError(
        f"Unsupported {what} type {type(image).__name__}: pass a PIL image, a numpy array or a torch tensor."
    )


def as_channels_first(array: np.ndarray, *, prefer_channels_first: bool = False, what: str = "image") -> np.ndarray:
    """Check shape and dtype of one image and return it as (C, H, W) with C in (1, 3) (alpha is dropped)."""
    if array.dtype.kind not in SUPPORTED_KINDS or array.dtype.itemsize > 8:
        raise TypeError(
            f"Unsupported {what} dtype {array.dtype}: use uint8, uint16, int16 (e.g. Hounsfield units), int32, "
            "float32 or float64 (boolean, complex and object arrays are not images)."
        )
    if array.size == 0:
        raise ValueError(f"Empty {what} with shape {tuple(array.shape)}.")
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        first, last = array.shape[0] in (1, 3, 4), array.shape[-1] in (1, 3, 4)
        if first and (prefer_channels_first or not last):
            pass
        elif last:
            array = np.moveaxis(array, -1, 0)
        else:
            raise ValueError(
                f"Cannot read a 3-D {what} with shape {tuple(array.shape)}: expected (H, W, C) or (C, H, W) with "
                "C in (1, 3, 4). For a volume, iterate its slices with umedpt_hf.io.iter_slices."
            )
    else:
        raise ValueError(
            f"Got a {array.ndim}-D {what} with shape {tuple(array.shape)}: pass 2-D (H, W) or 3-D (H, W, C) / "
            "(C, H, W) images one by one or as a list (volumes: umedpt_hf.io.iter_slices / extract_volume_features)."
        )
    if array.shape[0] == 4:
        array = array[:3]
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"Empty {what}: height and width must be positive, got shape {tuple(array.shape)}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"The {what} contains {bad} NaN or infinite values; replace them before processing.")
    return array


# -------------------------------------------------------------------------------------------------------- intensity
def resolve_window(window: Any) -> list[tuple[float, float]]:
    """Window name, (centre, width) pair, or a list of those -> list of (centre, width) pairs."""
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
            raise ValueError(f"A CT window needs a finite centre and a positive width, got {tuple(window)}.")
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


def scale_intensity(
    image: np.ndarray,
    scaling: str,
    *,
    percentiles: Sequence[float] = (0.5, 99.5),
    window: Any = None,
    value_range: Sequence[float] | None = None,
) -> np.ndarray:
    """Map one (C, H, W) image to float32 in [0, 1] (several CT windows give one channel each).

    Computation is in float64, so 16-bit and HU values are scaled without loss. `value_range` (low, high) replaces the
    per-image statistics of "percentile"/"minmax" (e.g. computed once over a whole volume).
    """
    kind = image.dtype.kind
    if scaling == "none":
        return image.astype(np.float32)
    if scaling == "window" and kind == "u" and image.dtype.itemsize == 1:
        scaling = "dtype"  # 8-bit CT (PNG/JPEG exports) is already windowed for display
    if scaling == "auto":
        is_unit_float = kind == "f" and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        scaling = "dtype" if (kind == "u" and image.dtype.itemsize == 1) or is_unit_float else "percentile"
    data = image.astype(np.float64)
    if scaling == "dtype":
        if kind == "f":
            low, high = float(data.min()), float(data.max())
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"Float image with values in [{low:.4g}, {high:.4g}] cannot use dtype scaling (it expects [0, 1]); "
                    "pass uint8/uint16 data or set intensity_scaling='minmax' or 'percentile'."
                )
            return data.astype(np.float32)
        return (np.clip(data, 0, None) / float(np.iinfo(image.dtype).max)).astype(np.float32)
    if scaling == "window":
        channels = [
            _clip_scale(data, centre - width / 2, centre + width / 2) for centre, width in resolve_window(window)
        ]
        if len(channels) == 1:
            return channels[0]
        if data.shape[0] != 1:
            raise ValueError(f"Several CT windows need a single-channel image, got {data.shape[0]} channels.")
        return np.concatenate(channels, axis=0)
    if value_range is not None:
        low, high = float(value_range[0]), float(value_range[1])
    elif scaling == "percentile":
        low_p, high_p = float(percentiles[0]), float(percentiles[1])
        if not 0.0 <= low_p < high_p <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(percentiles)}.")
        low, high = (float(v) for v in np.percentile(data, [low_p, high_p]))
    elif scaling == "minmax":
        low, high = float(data.min()), float(data.max())
    else:
        raise ValueError(f"Unknown intensity scaling {scaling!r}; use one of {INTENSITY_SCALINGS}.")
    return _clip_scale(data, low, high)


def _clip_scale(data: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:
        return np.zeros(data.shape, dtype=np.float32)
    magnitude = max(abs(low), abs(high))
    if magnitude > 1e300:  # keep (high - low) finite for values near the float64 limit
        data, low, high = data / magnitude, low / magnitude, high / magnitude
    return ((np.clip(data, low, high) - low) / (high - low)).astype(np.float32)


def match_channels(image: np.ndarray, num_channels: int) -> np.ndarray:
    """Replicate grey to 3 channels, or turn RGB into luminance for a 1-channel model."""
    if num_channels not in (1, 3):
        raise ValueError(f"num_channels must be 1 or 3, got {num_channels}.")
    channels = image.shape[0]
    if channels == num_channels:
        return image
    if channels == 1:
        return np.repeat(image, num_channels, axis=0)
    if channels == 3 and num_channels == 1:
        weights = np.asarray(LUMA_WEIGHTS, dtype=image.dtype)[:, None, None]
        return (image * weights).sum(axis=0, keepdims=True)
    raise ValueError(f"Cannot convert an image with {channels} channels to {num_channels}.")


# --------------------------------------------------------------------------------------------------------- geometry
def content_size(height: int, width: int, target_height: int, target_width: int, keep_aspect: bool) -> tuple[int, int]:
    """Size of the resized image inside the (target_height, target_width) canvas."""
    if not keep_aspect:
        return target_height, target_width
    scale = min(target_height / height, target_width / width)
    return (
        max(1, min(target_height, round(height * scale))),
        max(1, min(target_width, round(width * scale))),
    )


_TORCH_MODES = {0: "nearest-exact", 2: "bilinear", 3: "bicubic", 1: "bilinear", 4: "bilinear", 5: "bicubic"}


def resize_image(image: np.ndarray, height: int, width: int, resample: int = 2) -> torch.Tensor:
    """Resize a float (C, H, W) image with torch (anti-aliased, no 8-bit round trip); values stay in their range."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    if tuple(tensor.shape[-2:]) != (height, width):
        mode = _TORCH_MODES.get(int(resample), "bilinear")
        if mode == "nearest-exact":
            tensor = F.interpolate(tensor, size=(height, width), mode=mode)
        else:
            low, high = float(tensor.min()), float(tensor.max())
            tensor = F.interpolate(tensor, size=(height, width), mode=mode, align_corners=False, antialias=True)
            tensor = tensor.clamp(low, high)
    return tensor[0]


def resize_mask(mask: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of an (H, W) integer label map (pixel centres aligned with the image resize)."""
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))
    if tuple(tensor.shape) == (height, width):
        return tensor
    resized = F.interpolate(tensor[None, None].double(), size=(height, width), mode="nearest-exact")
    return resized[0, 0].round().long()


def pad_bottom_right(tensor: torch.Tensor, height: int, width: int, value: float) -> torch.Tensor:
    """Pad the last two dimensions to (height, width) on the bottom and right."""
    pad_h, pad_w = height - tensor.shape[-2], width - tensor.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return tensor
    return F.pad(tensor, (0, pad_w, 0, pad_h), value=value)


def check_mask(mask: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Validate a label map against its image and return it as an (H, W) int64 array."""
    if mask.dtype.kind == "b":
        mask = mask.astype(np.uint8)
    if mask.dtype.kind not in SUPPORTED_KINDS:
        raise TypeError(f"Unsupported segmentation map dtype {mask.dtype}: use an integer (or bool) label map.")
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]):
        mask = mask[0] if mask.shape[0] == 1 else mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"A segmentation map must be (H, W) (or with one channel), got shape {tuple(mask.shape)}.")
    if tuple(mask.shape) != tuple(image_hw):
        raise ValueError(
            f"Segmentation map shape {tuple(mask.shape)} differs from its image's (H, W) {tuple(image_hw)}."
        )
    if mask.dtype.kind == "f" and (not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask))):
        raise ValueError("A float segmentation map must hold whole class indices (no NaN, inf or fractions).")
    if mask.size and float(mask.min()) < 0:
        raise ValueError(f"Segmentation map holds negative labels (min {mask.min()}); use 255 for 'ignore'.")
    return mask.astype(np.int64)


def check_boxes(boxes: Any, labels: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one image's normalised (cx, cy, w, h) boxes and their class labels."""
    boxes = np.asarray(to_numpy(boxes, what="boxes") if not isinstance(boxes, (list, tuple)) else boxes, dtype=float)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"Boxes of image {index} must be an (N, 4) array of (cx, cy, w, h), got {boxes.shape}.")
    if not np.isfinite(boxes).all():
        raise ValueError(f"Boxes of image {index} contain NaN or infinite values.")
    if (boxes[:, 2:] < 0).any():
        raise ValueError(f"Boxes of image {index} have negative width or height.")
    tol = 1e-4
    corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
    if corners.size and (corners.min() < -tol or corners.max() > 1 + tol):
        raise ValueError(
            f"Boxes of image {index} reach outside the image: boxes are normalised (cx, cy, w, h) and every corner "
            f"must lie in [0, 1] (got corners in [{corners.min():.4g}, {corners.max():.4g}])."
        )
    if labels is None:
        raise ValueError("box_labels are required with boxes: one class index per box.")
    labels = np.asarray(to_numpy(labels, what="box labels") if not isinstance(labels, (list, tuple)) else labels)
    labels = labels.reshape(-1)
    if labels.size and (labels.dtype.kind not in "uif" or not np.array_equal(labels, np.round(labels))):
        raise ValueError(f"box_labels of image {index} must be whole class indices, got dtype {labels.dtype}.")
    if labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"Image {index} has {boxes.shape[0]} boxes but {labels.shape[0]} box labels.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"box_labels of image {index} must be non-negative.")
    return boxes.astype(np.float32), labels.astype(np.int64)


def boxes_to_canvas(boxes: np.ndarray, content_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> np.ndarray:
    """Normalised (cx, cy, w, h) of the original image -> normalised to the padded canvas (content top-left)."""
    scale = np.array(
        [content_hw[1] / canvas_hw[1], content_hw[0] / canvas_hw[0]] * 2,
        dtype=np.float32,
    )
    return (boxes * scale).astype(np.float32)
