"""Slices of 3-D volumes and one feature vector per slice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..image_intensity_umedpt import resolve_intensity_scaling


def _check_volume(volume: Any, axis: int) -> tuple[np.ndarray, int]:
    if isinstance(volume, torch.Tensor):
        volume = volume.detach().cpu().numpy()
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"A volume must be a numpy array or torch tensor, got {type(volume).__name__}.")
    if volume.ndim != 3:
        raise ValueError(f"Expected a 3-D volume, got shape {tuple(volume.shape)} ({volume.ndim}-D).")
    if volume.size == 0:
        raise ValueError(f"Empty volume of shape {tuple(volume.shape)}.")
    if not -3 <= axis < 3:
        raise ValueError(f"axis must be in [-3, 2] for a 3-D volume, got {axis}.")
    return volume, axis % 3


def iter_slices(
    volume: Any, axis: int = 2, indices: Sequence[int] | None = None, step: int = 1
) -> Iterator[np.ndarray]:
    """Yield the 2-D slices of a 3-D volume along `axis` (all, every `step`-th, or those in `indices`).

    For a canonical (RAS+) NIfTI volume, axis 2 gives axial, 1 coronal and 0 sagittal slices; for a multi-frame DICOM
    array (frames, H, W), use axis 0.
    """
    volume, axis = _check_volume(volume, axis)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}.")
    count = volume.shape[axis]
    chosen = range(0, count, step) if indices is None else [int(i) for i in indices]
    for index in chosen:
        if not -count <= index < count:
            raise ValueError(f"Slice index {index} is out of range for {count} slices along axis {axis}.")
        yield np.take(volume, index, axis=axis)


def volume_value_range(volume: np.ndarray, scaling: str, percentiles: Sequence[float]) -> tuple[float, float] | None:
    """Clipping range shared by all slices (so the same tissue gets the same value in every slice)."""
    if scaling not in ("percentile", "minmax", "auto") or (scaling == "auto" and volume.dtype == np.uint8):
        return None
    if scaling == "auto" and volume.dtype.kind == "f" and volume.min() >= 0 and volume.max() <= 1:
        return None  # the "auto" rule keeps [0, 1] floats as they are
    flat = volume.reshape(-1)
    if flat.size > 4_000_000:  # a regular subsample is enough for percentiles
        flat = flat[:: flat.size // 4_000_000 + 1]
    flat = flat.astype(np.float64)
    if scaling == "minmax":
        low, high = float(flat.min()), float(flat.max())
    else:
        low, high = (float(v) for v in np.percentile(flat, [float(percentiles[0]), float(percentiles[1])]))
    return (low, high) if high > low else None


@torch.inference_mode()
def extract_volume_features(
    model: Any,
    processor: Any,
    volume: Any,
    axis: int = 2,
    batch_size: int = 16,
    indices: Sequence[int] | None = None,
    step: int = 1,
    modality: str | None = None,
    window: Any = None,
    shared_intensity: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """One feature vector per slice of a 3-D volume: returns (num_slices, hidden_size) float32 on the CPU.

    Slices go through `processor` in batches of `batch_size` and through `model.get_image_features`. With
    `shared_intensity` (default), percentile / min-max clipping is computed once over the whole volume rather than per
    slice, so features of different slices are comparable (CT windows are fixed anyway).
    """
    volume, axis = _check_volume(volume, axis)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    modality = modality if modality is not None else getattr(processor, "modality", None)
    scaling = resolve_intensity_scaling(modality, getattr(processor, "intensity_scaling", None))
    call_kwargs: dict[str, Any] = {"modality": modality, "window": window, "return_tensors": "pt"}
    if shared_intensity and getattr(processor, "do_rescale", True):
        value_range = volume_value_range(volume, scaling, getattr(processor, "percentiles", (0.5, 99.5)))
        if value_range is not None:
            call_kwargs["value_range"] = value_range
            if scaling == "auto":
                call_kwargs["intensity_scaling"] = "percentile"
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    was_training = getattr(model, "training", False)
    model.eval()
    slices = list(iter_slices(volume, axis=axis, indices=indices, step=step))
    features = []
    try:
        for start in tqdm(range(0, len(slices), batch_size), desc="slices", disable=not progress, unit="batch"):
            batch = slices[start : start + batch_size]
            pixel_values = processor(batch, **call_kwargs)["pixel_values"].to(device=device, dtype=dtype)
            output = model.get_image_features(pixel_values=pixel_values)
            if not isinstance(output, torch.Tensor):
                output = output.pooler_output
            features.append(output.float().cpu())
    finally:
        if was_training:
            model.train()
    return torch.cat(features) if features else torch.empty(0)
