"""Input handling behind `UMedPTImageProcessor`: image containers to channels-first arrays, and the channel policy.

Everything here works on one image at a time. It may import only numpy, torch, PIL and its siblings (the file is
copied next to saved weights for remote-code loading). The intensity rules live in `image_intensity_umedpt`, resizing
and padding in `image_geometry_umedpt`, target checks in `image_targets_umedpt`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import torch

# the intensity vocabulary other modules reach through this one (re-exported, defined in image_intensity_umedpt)
from .image_intensity_umedpt import CT_WINDOWS, MODALITY_INTENSITY, resolve_intensity_scaling  # noqa: F401

# Integer and float dtypes accepted as images. Booleans, complex numbers and objects are rejected.
SUPPORTED_KINDS = ("u", "i", "f")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion
CHANNEL_COUNTS = (1, 3, 4)


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


def as_channels_first(
    array: np.ndarray,
    *,
    input_data_format: Any = None,
    prefer_channels_first: bool = False,
    what: str = "image",
) -> np.ndarray:
    """Check shape and dtype of one image and return it as (C, H, W) with C in (1, 3) (alpha is dropped).

    `input_data_format` ("channels_first" / "channels_last", or transformers' `ChannelDimension`) says where the
    channels of a 3-D array are; by default they are inferred (C in 1, 3, 4 first or last; `prefer_channels_first`
    breaks ties such as (3, H, 3), as torch tensors are channels-first).
    """
    if array.dtype.kind not in SUPPORTED_KINDS or array.dtype.itemsize > 8:
        raise TypeError(
            f"Unsupported {what} dtype {array.dtype}: use uint8, uint16, int16 (e.g. Hounsfield units), int32, "
            "float32 or float64 (boolean, complex and object arrays are not images)."
        )
    if array.size == 0:
        raise ValueError(f"Empty {what} with shape {tuple(array.shape)}.")
    layout = channel_layout(input_data_format)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        first, last = array.shape[0] in CHANNEL_COUNTS, array.shape[-1] in CHANNEL_COUNTS
        if layout is None:
            layout = "first" if first and (prefer_channels_first or not last) else "last" if last else None
        if layout == "first" and first:
            pass
        elif layout == "last" and last:  # copied at the input dtype: float work then runs on contiguous rows
            array = np.ascontiguousarray(np.moveaxis(array, -1, 0)[:3])
        else:
            stated = f" as {input_data_format!s}" if input_data_format is not None else ""
            raise ValueError(
                f"Cannot read a 3-D {what} with shape {tuple(array.shape)}{stated}: expected (H, W, C) or (C, H, W) "
                "with C in (1, 3, 4). For a volume, iterate its slices with umedpt_hf.io.iter_slices."
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


def image_to_channels_first(image: Any, input_data_format: Any = None) -> np.ndarray:
    """One PIL image, array or tensor -> a checked (C, H, W) array (`as_channels_first`; PIL is always (H, W[, C]))."""
    array = to_numpy(image)
    if isinstance(image, PIL.Image.Image):
        return as_channels_first(array, input_data_format="channels_last" if array.ndim == 3 else None)
    return as_channels_first(
        array, input_data_format=input_data_format, prefer_channels_first=isinstance(image, torch.Tensor)
    )


def channel_layout(data_format: Any, name: str = "input_data_format") -> str | None:
    """ "first", "last" or None (infer) from a `ChannelDimension` or its string value."""
    if data_format is None:
        return None
    value = getattr(data_format, "value", data_format)
    if value in ("channels_first", "first"):
        return "first"
    if value in ("channels_last", "last"):
        return "last"
    raise ValueError(f"{name} must be 'channels_first', 'channels_last' or None, got {data_format!r}.")


def match_channels(image: np.ndarray | torch.Tensor, num_channels: int) -> np.ndarray | torch.Tensor:
    """Replicate grey to 3 channels, or turn RGB into luminance for a 1-channel model ((C, H, W) array or tensor)."""
    if num_channels not in (1, 3):
        raise ValueError(f"num_channels must be 1 or 3, got {num_channels}.")
    channels, is_tensor = image.shape[0], isinstance(image, torch.Tensor)
    if channels == num_channels:
        return image
    if channels == 1:
        return image.repeat(num_channels, 1, 1) if is_tensor else np.repeat(image, num_channels, axis=0)
    if channels == 3 and num_channels == 1:
        if is_tensor:
            return (image * torch.tensor(LUMA_WEIGHTS, dtype=image.dtype).reshape(3, 1, 1)).sum(0, keepdim=True)
        return (image * np.asarray(LUMA_WEIGHTS, dtype=image.dtype)[:, None, None]).sum(axis=0, keepdims=True)
    raise ValueError(f"Cannot convert an image with {channels} channels to {num_channels}.")


def as_list(items: Any, name: str) -> list[Any]:
    if isinstance(items, (list, tuple)):
        if len(items) == 0:
            raise ValueError(f"Got an empty list of {name}.")
        return list(items)
    if items is None:
        raise ValueError(f"No {name} given.")
    return [items]


def per_image(items: Any, name: str, count: int) -> list[Any]:
    """Boxes/labels: one entry per image (a single image may give its (N, 4) boxes / (N,) labels directly)."""
    if count == 1:
        try:
            array = np.asarray(to_numpy(items, what=name) if not isinstance(items, (list, tuple)) else items, float)
        except (TypeError, ValueError):
            array = None
        if array is not None and (
            (name == "boxes" and array.ndim == 2 and array.shape[1] == 4)
            or (name == "box_labels" and array.ndim == 1)
            or array.size == 0
        ):
            return [items]
    if not isinstance(items, (list, tuple)) or len(items) != count:
        length = len(items) if isinstance(items, (list, tuple)) else "a single array"
        raise ValueError(f"{name} must be a list with one entry per image ({count}), got {length}.")
    return list(items)


def to_numpy_tree(value: Any) -> Any:
    """Tensors (also inside lists and dicts) -> numpy arrays."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, list):
        return [to_numpy_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: to_numpy_tree(v) for k, v in value.items()}
    return value
