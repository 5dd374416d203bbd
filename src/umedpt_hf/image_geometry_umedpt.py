"""Geometry behind `UMedPTImageProcessor`: output sizes, resizing in torch (no 8-bit round trip), padding, boxes.

Imports only numpy and torch (copied next to saved weights for remote-code loading).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# PIL resampling codes -> torch interpolation (NEAREST 0, LANCZOS 1, BILINEAR 2, BICUBIC 3, BOX 4, HAMMING 5)
_TORCH_MODES = {0: "nearest-exact", 1: "bilinear", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bicubic"}


def content_size(height: int, width: int, target_height: int, target_width: int, keep_aspect: bool) -> tuple[int, int]:
    """Size of the resized image inside the (target_height, target_width) canvas."""
    if not keep_aspect:
        return target_height, target_width
    scale = min(target_height / height, target_width / width)
    return (
        max(1, min(target_height, round(height * scale))),
        max(1, min(target_width, round(width * scale))),
    )


def canvas_size(shapes: list[tuple[int, int]], size: Any, do_resize: bool, do_pad: bool) -> tuple[int, int]:
    """The (height, width) of the output batch: `size` when resizing, else the common (or, padding, the largest)."""
    if do_resize:
        return size.height, size.width
    heights, widths = {h for h, _ in shapes}, {w for _, w in shapes}
    if do_pad:
        return max(heights), max(widths)
    if len(heights) > 1 or len(widths) > 1:
        raise ValueError(
            "Images of different sizes cannot be batched with do_resize=False; enable do_resize or do_pad."
        )
    return heights.pop(), widths.pop()


def resize_image(image: np.ndarray | torch.Tensor, height: int, width: int, resample: int = 2) -> torch.Tensor:
    """Resize a float (C, H, W) image with `torch.nn.functional.interpolate` (anti-aliased); values keep their range.

    The interpolation runs in float32 (the scaled intensities are float32 in [0, 1]): exact inputs, no 8-bit
    quantisation as in PIL. Bilinear / bicubic results are clamped to the input's range (bicubic overshoots).
    """
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)) if isinstance(image, np.ndarray) else image
    tensor = tensor.float()[None]
    if tuple(tensor.shape[-2:]) == (height, width):
        return tensor[0]
    mode = _TORCH_MODES.get(int(resample), "bilinear")
    if mode == "nearest-exact":
        return F.interpolate(tensor, size=(height, width), mode=mode)[0]
    resized = F.interpolate(tensor, size=(height, width), mode=mode, align_corners=False, antialias=True)
    if mode == "bicubic":
        resized = resized.clamp(float(tensor.min()), float(tensor.max()))
    return resized[0]


def nearest_indices(source: int, target: int) -> np.ndarray:
    """Source index of every target index for a nearest-exact resize (pixel centres aligned, as in torch)."""
    scale = source / target
    return np.minimum(np.floor((np.arange(target) + 0.5) * scale).astype(np.int64), source - 1)


def resize_mask(mask: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of an (H, W) integer label map by indexing: every label value is kept exactly."""
    if tuple(mask.shape) != (height, width):
        mask = mask[nearest_indices(mask.shape[0], height)[:, None], nearest_indices(mask.shape[1], width)[None, :]]
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))


def pad_bottom_right(tensor: torch.Tensor, height: int, width: int, value: float) -> torch.Tensor:
    """Pad the last two dimensions to (height, width) on the bottom and right."""
    pad_h, pad_w = height - tensor.shape[-2], width - tensor.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return tensor
    return F.pad(tensor, (0, pad_w, 0, pad_h), value=value)


def boxes_to_canvas(boxes: np.ndarray, content_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> np.ndarray:
    """Normalised (cx, cy, w, h) of the original image -> normalised to the padded canvas (content top-left)."""
    scale = np.array([content_hw[1] / canvas_hw[1], content_hw[0] / canvas_hw[0]] * 2, dtype=np.float32)
    return (boxes * scale).astype(np.float32)
