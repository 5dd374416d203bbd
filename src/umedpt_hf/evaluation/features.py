"""Frozen image features of a dataset: batched, with a progress bar and an optional on-disk cache.

Works with UMedPT models (`get_image_features`) and with any transformers image model or backbone: the pooled output
when the model has one, else the spatial mean of the deepest feature map or the token mean of `last_hidden_state`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .progress import progress as progress_bar

logger = logging.getLogger(__name__)

LABEL_COLUMN_CANDIDATES = ("label", "labels")


@dataclass
class FeatureSet:
    """Features (N, D) float32 and labels: (N,) class indices, an (N, C) multi-hot matrix, or None."""

    features: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.features)


def _to_vector(value: Any) -> torch.Tensor | None:
    """(B, D) from a tensor that is already pooled, a (B, C, H, W) map or a (B, T, D) token sequence."""
    if value is None or not isinstance(value, torch.Tensor):
        return None
    if value.ndim == 2:
        return value
    if value.ndim == 4:  # (B, C, H, W); (B, C, 1, 1) pooled maps (ResNet) included
        return value.mean(dim=(2, 3))
    if value.ndim == 3:  # (B, tokens, D)
        return value.mean(dim=1)
    return None


def _model_channels(model: torch.nn.Module) -> int | None:
    config = getattr(model, "config", None)
    channels = getattr(config, "num_channels", None)
    if channels is None and getattr(config, "backbone_config", None) is not None:
        channels = getattr(config.backbone_config, "num_channels", None)
    return channels


def check_finite(values: np.ndarray, what: str) -> None:
    """Raise ValueError naming the first (row, column) of `values` (N, D) that is NaN or infinite."""
    finite = np.isfinite(values)
    if not finite.all():
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{what}: NaN or infinite value at row {row} (example), column {column} (feature)")


def adapt_channels_to_encoder(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Repeat a grayscale batch to the encoder's channel count (or average RGB to 1) when `model` expects another
    number of input channels than the batch has (the processor's `match_channels` works on one image array)."""
    want = _model_channels(model)
    have = pixel_values.shape[1]
    if want is None or want == have:
        return pixel_values
    if have == 1:
        return pixel_values.expand(-1, want, -1, -1)
    if want == 1:
        return pixel_values.mean(dim=1, keepdim=True)
    raise ValueError(f"the model expects {want} input channels but the images have {have}")


@torch.no_grad()
def image_features(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The (B, D) image vector of `model` for one batch, without gradients."""
    return image_vector(model, pixel_values)


def image_vector(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The (B, D) image vector of `model` for one batch (differentiable: used by fine-tuning)."""
    pixel_values = adapt_channels_to_encoder(model, pixel_values)
    if hasattr(model, "get_image_features"):
        out = model.get_image_features(pixel_values=pixel_values)
        vector = _to_vector(out) if isinstance(out, torch.Tensor) else _to_vector(getattr(out, "pooler_output", None))
        if vector is not None:
            return vector
    out = model(pixel_values=pixel_values)
    for name in ("pooler_output", "image_embeds"):
        vector = _to_vector(getattr(out, name, None))
        if vector is not None:
            return vector
    feature_maps = getattr(out, "feature_maps", None)
    if feature_maps:
        return _to_vector(feature_maps[-1])
    vector = _to_vector(getattr(out, "last_hidden_state", None))
    if vector is None:
        raise TypeError(
            f"{type(model).__name__} returned no pooled output, feature maps or last_hidden_state: not an image encoder"
        )
    return vector


def find_label_column(dataset: Any, label_column: str | None = None) -> str | None:
    """The label column: the one asked for (must exist), else 'label' or 'labels' if present, else None."""
    columns = list(getattr(dataset, "column_names", []) or [])
    if label_column is not None:
        if label_column not in columns:
            raise ValueError(f"label column {label_column!r} not in the dataset (columns: {columns})")
        return label_column
    return next((c for c in LABEL_COLUMN_CANDIDATES if c in columns), None)


def call_processor(processor: Any, images: list, modality: str | None = None, **kwargs: Any) -> dict:
    """`processor(images, return_tensors="pt")`, passing `modality` only to processors that accept it and only when it
    is a modality the UMedPT processor knows (other values leave the intensity rule on auto)."""
    from ..image_transforms_umedpt import MODALITY_INTENSITY

    if modality is not None and modality in MODALITY_INTENSITY:
        params = inspect.signature(processor.__call__).parameters
        preprocess = inspect.signature(getattr(processor, "preprocess", processor.__call__)).parameters
        if "modality" in params or "modality" in preprocess:
            kwargs["modality"] = modality
    return processor(images, return_tensors="pt", **kwargs)


def iterate_batches(
    data: Any,
    processor: Any = None,
    batch_size: int = 32,
    label_column: str | None = None,
    image_column: str = "image",
    modality: str | None = None,
    raw_labels: bool = False,
) -> Iterator[tuple[torch.Tensor, Any]]:
    """(pixel_values, labels) batches from a `datasets.Dataset` (decoded and run through `processor`) or from an
    iterable of batch dicts with `pixel_values` (a DataLoader from `make_task_dataloader`). Labels come as numpy
    image-level labels (None for masks / boxes) unless `raw_labels`, which passes a loader's labels through."""
    if hasattr(data, "column_names") and hasattr(data, "__getitem__"):
        if processor is None:
            raise ValueError("a datasets.Dataset needs an image processor to turn its images into pixel_values")
        if image_column not in data.column_names:
            raise ValueError(f"image column {image_column!r} not in the dataset (columns: {data.column_names})")
        column = find_label_column(data, label_column)
        for start in range(0, len(data), batch_size):
            rows = data[start : start + batch_size]
            images = list(rows[image_column])
            pixel_values = call_processor(processor, images, modality)["pixel_values"]
            labels = np.asarray(rows[column]) if column is not None else None
            yield pixel_values, labels
        return
    if not isinstance(data, Iterable):
        raise TypeError(f"expected a datasets.Dataset or an iterable of batches, got {type(data).__name__}")
    for batch in data:
        if not isinstance(batch, dict) or "pixel_values" not in batch:
            raise TypeError("each batch must be a dict with 'pixel_values' (and optionally 'labels')")
        labels = batch.get("labels")
        if raw_labels:  # as the loader made them (segmentation masks, detection dicts) for training a model
            yield batch["pixel_values"], labels
            continue
        if isinstance(labels, torch.Tensor) and labels.ndim <= 2:
            labels = labels.cpu().numpy()
        elif not isinstance(labels, np.ndarray):
            labels = None  # segmentation masks / detection dicts: not image-level labels
        yield batch["pixel_values"], labels


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the class, the config and every parameter and buffer of the model."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        digest.update(config.to_json_string(use_diff=False).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


def data_fingerprint(data: Any) -> str | None:
    """The `datasets` fingerprint of a Dataset, or of a DataLoader's dataset plus its sampler and collator (a
    `TaskCollator`'s spec and window); None when there is none or the loader shuffles."""
    fingerprint = getattr(data, "_fingerprint", None)
    if fingerprint is not None:
        return fingerprint
    fingerprint = getattr(getattr(data, "dataset", None), "_fingerprint", None)
    sampler = type(getattr(data, "sampler", None)).__name__
    if fingerprint is None or sampler != "SequentialSampler":
        return None
    collate = getattr(data, "collate_fn", None)
    collate_key = json.dumps(
        [type(collate).__name__, getattr(collate, "spec", None), getattr(collate, "window", None),
         getattr(collate, "augmentation", None) is not None],
        default=str,
    )  # fmt: skip
    return f"{fingerprint}-loader-{getattr(data, 'batch_size', None)}-{collate_key}"


def _processor_fingerprint(processor: Any) -> str:
    if processor is None:
        return "none"
    to_json = getattr(processor, "to_json_string", None)
    return to_json() if callable(to_json) else repr(processor)


def extract_features(
    model: torch.nn.Module,
    data: Any,
    *,
    processor: Any = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    label_column: str | None = None,
    image_column: str = "image",
    modality: str | None = None,
    progress: bool = True,
    desc: str = "features",
) -> FeatureSet:
    """Image vectors (N, D) and labels of every example of `data`, the model in eval mode without gradients.

    `data` is a `datasets.Dataset` with an image column (then `processor` is required) or an iterable of batch
    dicts with `pixel_values` (e.g. a non-shuffling DataLoader with a `TaskCollator`). With `cache_dir`, results are
    stored as `<cache_dir>/<key>.npz`, the key hashing the model weights and config, the dataset fingerprint, the
    processor settings and the arguments; data without a dataset fingerprint (or a shuffling loader) is not cached.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if hasattr(data, "__len__") and len(data) == 0:
        raise ValueError("cannot extract features of an empty dataset")
    cache_path = None
    if cache_dir is not None:
        fingerprint = data_fingerprint(data)
        if fingerprint is None:
            logger.warning("the data has no datasets fingerprint: features are not cached")
        else:
            processor_key = _processor_fingerprint(
                processor or getattr(getattr(data, "collate_fn", None), "processor", None)
            )
            key = json.dumps(
                [model_fingerprint(model), fingerprint, processor_key, label_column, image_column, modality]
            )
            cache_path = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"
            if cache_path.is_file():
                with np.load(cache_path) as cached:
                    labels = cached["labels"] if "labels" in cached.files else None
                    return FeatureSet(cached["features"], labels)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(device).eval()
    features, labels = [], []
    if hasattr(data, "column_names"):
        total = (len(data) + batch_size - 1) // batch_size
    else:
        total = len(data) if hasattr(data, "__len__") else None
    try:
        batches = iterate_batches(data, processor, batch_size, label_column, image_column, modality)
        for pixel_values, batch_labels in progress_bar(
            batches, desc=desc, total=total, enabled=progress, unit="batches"
        ):
            dtype = next(model.parameters()).dtype
            features.append(image_features(model, pixel_values.to(device=device, dtype=dtype)).float().cpu().numpy())
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
    finally:
        model.train(was_training)
    result = FeatureSet(np.concatenate(features).astype(np.float32), np.concatenate(labels) if labels else None)
    check_finite(result.features, f"{desc}: the features {type(model).__name__} produced")
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"features": result.features}
        if result.labels is not None:
            arrays["labels"] = result.labels
        tmp = cache_path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(cache_path)
    return result
