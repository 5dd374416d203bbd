"""UMedPTImageProcessor: the modality-aware preprocessing contract saved next to UMedPT weights.

Every intensity and geometry decision is a field of `preprocessor_config.json`. Imports only numpy, torch, PIL,
transformers and sibling `*_umedpt.py` files (the file is copied for remote-code loading).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import get_size_dict
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs

from .image_transforms_umedpt import (
    CT_WINDOWS,
    MODALITY_INTENSITY,
    as_channels_first,
    boxes_to_canvas,
    check_boxes,
    check_mask,
    content_size,
    match_channels,
    pad_bottom_right,
    resize_image,
    resize_mask,
    resolve_intensity_scaling,
    resolve_window,
    scale_intensity,
    to_numpy,
)
from .post_processing_umedpt import classification_scores, decode_detections, semantic_label_maps

GREY_MEAN = (float(np.mean(IMAGENET_DEFAULT_MEAN)),)
GREY_STD = (float(np.mean(IMAGENET_DEFAULT_STD)),)


class UMedPTImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    num_channels (`int`): channels of `pixel_values`: 3 (grey replicated) or 1 (RGB turned into luminance).
    modality (`str`): picks the intensity rule: "xray", "mri", "ct", "microscopy", "histology", ... or None (auto).
    window (`str` | `(centre, width)` | list of them): CT window(s) in HU; several windows give one channel each.
    intensity_scaling (`str`): overrides the modality's rule: "auto", "dtype", "percentile", "minmax", "window", "none".
    percentiles (`(low, high)`): clipping percentiles of the "percentile" rule.
    value_range (`(low, high)`): fixed clipping range for "percentile"/"minmax" (e.g. computed over a whole volume).
    mask_pad_value (`int`): label of padded mask pixels (255 = ignored by the losses).
    """

    num_channels: int
    modality: str | None
    window: Any
    intensity_scaling: str | None
    percentiles: Any
    value_range: Any
    mask_pad_value: int


class UMedPTImageProcessor(PilBackend):
    r"""
    Image processor of UMedPT: medical intensities to [0, 1], channel policy, resize (optionally keeping the aspect
    ratio and padding, bottom/right), normalisation; segmentation maps and boxes follow the image geometry.

    Order of operations: input check -> intensity scaling at the original resolution (float64, so 16-bit and HU values
    lose nothing) -> channel policy -> resize in float with `torch.nn.functional.interpolate` (anti-aliased bilinear by
    default; masks nearest) -> pad -> normalise with `image_mean`/`image_std`.

    Accepted images: PIL images, numpy arrays and torch tensors shaped (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4
    (alpha dropped); integer (uint8/16/32, int8/16/32/64) and float (16/32/64) dtypes. Rejected with TypeError: bool,
    complex and object arrays. Rejected with ValueError: NaN/inf pixels, empty arrays, 4-D arrays (pass a list or use
    `umedpt_hf.io.iter_slices`), unknown modality or window names.

    Intensity rules (`modality` -> rule, overridable with `intensity_scaling`):
    microscopy/histology/fluorescence/dermoscopy/fundus/endoscopy/rgb -> "dtype" (uint8 / 255, uint16 / 65535; float
    must be in [0, 1]); xray/mammography/mri/ultrasound/pet/nuclear -> "percentile" (`percentiles`, default 0.5-99.5);
    ct -> "window" in HU (`window`: "lung", "soft_tissue" (default), "bone", "brain", "mediastinum", "liver", "wide", a
    (centre, width) pair, or a list of windows, one channel each; 8-bit CT exports are taken as already windowed);
    None -> "auto" (uint8 and [0, 1] floats by dtype, anything else by percentile).

    Args:
        size (`dict`, defaults to `{"height": 224, "width": 224}`): output size.
        num_channels (`int`, defaults to 3): channel policy; follow the model with `from_model_config(config)`.
        modality, window, intensity_scaling, percentiles, value_range: see above.
        do_resize (`bool`, defaults to True), resample (defaults to bilinear; nearest and bicubic also supported).
        do_pad (`bool`, defaults to False): resize keeping the aspect ratio and pad bottom/right to `size`.
        do_rescale (`bool`, defaults to True): apply the intensity rule (False: raw values as float32).
        do_normalize (`bool`, defaults to True), image_mean, image_std (ImageNet statistics; their grey average for 1
            channel).
        mask_pad_value (`int`, defaults to 255): label of padded mask pixels.

    Example:

    ```python
    >>> import numpy as np
    >>> from umedpt_hf.image_processing_umedpt import UMedPTImageProcessor
    >>> processor = UMedPTImageProcessor(size={"height": 64, "width": 64}, modality="ct", window="lung")
    >>> hu = np.full((100, 80), -1000, dtype=np.int16)
    >>> processor(hu)["pixel_values"].shape
    torch.Size([1, 3, 64, 64])
    ```
    """

    valid_kwargs = UMedPTImageProcessorKwargs
    model_input_names = ["pixel_values"]

    size = {"height": 224, "width": 224}
    default_to_square = True
    resample = PILImageResampling.BILINEAR
    do_resize = True
    do_pad = False
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = None
    image_std = None
    do_center_crop = False
    do_convert_rgb = False
    num_channels = 3
    modality = None
    window = None
    intensity_scaling = None
    percentiles = (0.5, 99.5)
    value_range = None
    mask_pad_value = 255

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.image_mean is None:
            self.image_mean = tuple(IMAGENET_DEFAULT_MEAN) if self.num_channels == 3 else GREY_MEAN
        if self.image_std is None:
            self.image_std = tuple(IMAGENET_DEFAULT_STD) if self.num_channels == 3 else GREY_STD
        if isinstance(self.percentiles, list):
            self.percentiles = tuple(self.percentiles)
        # JSON forms, so that a loaded processor equals the saved one
        self.window = json.loads(json.dumps(self.window)) if isinstance(self.window, (list, tuple)) else self.window
        self.value_range = list(self.value_range) if isinstance(self.value_range, (list, tuple)) else self.value_range
        self._check_settings(vars(self))

    def to_dict(self) -> dict[str, Any]:
        """All settings, including the medical ones left at None, so the saved JSON states every decision."""
        output = super().to_dict()
        for name in ("modality", "window", "intensity_scaling", "value_range"):
            output.setdefault(name, getattr(self, name, None))
        return output

    @classmethod
    def from_model_config(cls, config: Any, **kwargs: Any) -> UMedPTImageProcessor:
        """A processor whose channel policy (and, if all tasks share one, modality) follows a model config."""
        kwargs.setdefault("num_channels", int(getattr(config, "num_channels", 3)))
        modalities = {spec.get("modality") for spec in (getattr(config, "tasks", None) or {}).values()}
        modalities.discard(None)
        if len(modalities) == 1 and next(iter(modalities)) in MODALITY_INTENSITY:
            kwargs.setdefault("modality", next(iter(modalities)))
        return cls(**kwargs)

    # -------------------------------------------------------------------------------------------------- preprocess
    def preprocess(
        self,
        images: Any,
        segmentation_maps: Any = None,
        boxes: Any = None,
        box_labels: Any = None,
        modality: str | None = None,
        window: Any = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess one image or a list of images (and their segmentation maps or boxes).

        Returns a `BatchFeature` with `pixel_values` (B, C, H, W) float32, `original_sizes` (B, 2) as (height, width),
        and `labels`: a (B, H, W) LongTensor for segmentation maps; for boxes a list of {"class_labels", "boxes"}
        dicts (normalised (cx, cy, w, h) on the output canvas), plus "segmentation_map" when masks are given too.
        `return_tensors`: "pt" (default; None means the same) or "np".
        """
        unknown = set(kwargs) - set(self.valid_kwargs.__annotations__) - {"image_like_kwargs"}
        if unknown:
            raise TypeError(f"Unknown argument(s) {sorted(unknown)} for UMedPTImageProcessor.")
        settings = {name: getattr(self, name, None) for name in self.valid_kwargs.__annotations__}
        settings.update({k: v for k, v in kwargs.items() if v is not None and k != "image_like_kwargs"})
        if modality is not None:
            settings["modality"] = modality
        if window is not None:
            settings["window"] = window
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        settings = self._check_settings(settings)

        image_list = self._as_list(images, "images")
        mask_list = self._as_list(segmentation_maps, "segmentation_maps") if segmentation_maps is not None else None
        box_list = self._per_image(boxes, "boxes", len(image_list)) if boxes is not None else None
        label_list = self._per_image(box_labels, "box_labels", len(image_list)) if box_labels is not None else None
        if mask_list is not None and len(mask_list) != len(image_list):
            raise ValueError(f"Got {len(mask_list)} segmentation maps for {len(image_list)} images.")
        if box_list is None and label_list is not None:
            raise ValueError("box_labels were given without boxes.")

        arrays = [
            as_channels_first(to_numpy(image), prefer_channels_first=isinstance(image, torch.Tensor))
            for image in image_list
        ]
        canvas = self._canvas(arrays, settings)
        pixel_values, masks, box_targets, original_sizes = [], [], [], []
        for index, array in enumerate(arrays):
            height, width = array.shape[1:]
            original_sizes.append((height, width))
            content = (
                content_size(height, width, *canvas, keep_aspect=settings["do_pad"])
                if settings["do_resize"]
                else (height, width)
            )
            pixel_values.append(self._process_pixels(array, content, canvas, settings))
            if mask_list is not None:
                mask = check_mask(to_numpy(mask_list[index], what="segmentation map"), (height, width))
                mask = resize_mask(mask, *content)
                masks.append(
                    pad_bottom_right(mask, *canvas, value=settings["mask_pad_value"]) if settings["do_pad"] else mask
                )
            if box_list is not None:
                labels = label_list[index] if label_list is not None else None
                image_boxes, image_labels = check_boxes(box_list[index], labels, index)
                if settings["do_pad"]:
                    image_boxes = boxes_to_canvas(image_boxes, content, canvas)
                box_targets.append(
                    {"class_labels": torch.from_numpy(image_labels), "boxes": torch.from_numpy(image_boxes)}
                )

        data: dict[str, Any] = {
            "pixel_values": torch.stack(pixel_values),
            "original_sizes": torch.tensor(original_sizes, dtype=torch.long),
        }
        if box_list is not None:
            if mask_list is not None:
                for target, mask in zip(box_targets, masks):
                    target["segmentation_map"] = mask
            data["labels"] = box_targets
        elif mask_list is not None:
            data["labels"] = torch.stack(masks)
        if return_tensors == "np":
            data = {key: _to_numpy_tree(value) for key, value in data.items()}
        return BatchFeature(data=data)

    def _process_pixels(
        self, array: np.ndarray, content: tuple[int, int], canvas: tuple[int, int], settings: dict[str, Any]
    ) -> torch.Tensor:
        if settings["do_rescale"]:
            scaling = resolve_intensity_scaling(settings["modality"], settings["intensity_scaling"])
            scaled = scale_intensity(
                array,
                scaling,
                percentiles=settings["percentiles"],
                window=settings["window"],
                value_range=settings["value_range"],
            )
        else:
            scaled = array.astype(np.float32)
        scaled = match_channels(scaled, settings["num_channels"])
        tensor = resize_image(scaled, *content, resample=settings["resample"]) if settings["do_resize"] else None
        if tensor is None:
            tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))
        if settings["do_pad"]:
            tensor = pad_bottom_right(tensor, *canvas, value=0.0)
        if settings["do_normalize"]:
            mean = torch.tensor(settings["image_mean"], dtype=torch.float32).reshape(-1, 1, 1)
            std = torch.tensor(settings["image_std"], dtype=torch.float32).reshape(-1, 1, 1)
            if mean.shape[0] not in (1, tensor.shape[0]) or std.shape[0] not in (1, tensor.shape[0]):
                raise ValueError(
                    f"image_mean/image_std have {mean.shape[0]}/{std.shape[0]} values for {tensor.shape[0]} channels; "
                    "give one value per channel (or use from_model_config)."
                )
            tensor = (tensor - mean) / std
        return tensor.float().contiguous()

    def _canvas(self, arrays: list[np.ndarray], settings: dict[str, Any]) -> tuple[int, int]:
        if settings["do_resize"]:
            return settings["size"].height, settings["size"].width
        heights = {a.shape[1] for a in arrays}
        widths = {a.shape[2] for a in arrays}
        if settings["do_pad"]:
            return max(heights), max(widths)
        if len(heights) > 1 or len(widths) > 1:
            raise ValueError(
                "Images of different sizes cannot be batched with do_resize=False; enable do_resize or do_pad."
            )
        return heights.pop(), widths.pop()

    def _check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        settings = dict(settings)
        size = settings.get("size")
        if settings.get("do_center_crop"):
            raise ValueError("do_center_crop is not supported by UMedPTImageProcessor; do_pad keeps the aspect ratio.")
        if settings.get("do_resize", True):
            if isinstance(size, (int, list, tuple)) and not isinstance(size, bool):
                size = get_size_dict(size, default_to_square=True)
            if not isinstance(size, SizeDict):
                size = SizeDict(**size) if isinstance(size, dict) else None
            if size is None or not size.height or not size.width or size.height < 1 or size.width < 1:
                raise ValueError(f"size must be {{'height': int, 'width': int}} with positive values, got {size}.")
            settings["size"] = size
        if settings.get("num_channels") not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3, got {settings.get('num_channels')!r}.")
        resolve_intensity_scaling(settings.get("modality"), settings.get("intensity_scaling"))
        if settings.get("window") is not None:
            resolve_window(settings["window"])
        percentiles = settings.get("percentiles")
        if (
            not isinstance(percentiles, (list, tuple))
            or len(percentiles) != 2
            or not 0.0 <= float(percentiles[0]) < float(percentiles[1]) <= 100.0
        ):
            raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 100, got {percentiles!r}.")
        value_range = settings.get("value_range")
        if value_range is not None and (
            not isinstance(value_range, (list, tuple)) or len(value_range) != 2 or not value_range[0] < value_range[1]
        ):
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}.")
        return settings

    @staticmethod
    def _as_list(items: Any, name: str) -> list[Any]:
        if isinstance(items, (list, tuple)):
            if len(items) == 0:
                raise ValueError(f"Got an empty list of {name}.")
            return list(items)
        if items is None:
            raise ValueError(f"No {name} given.")
        return [items]

    @staticmethod
    def _per_image(items: Any, name: str, count: int) -> list[Any]:
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

    # ----------------------------------------------------------------------------------------------- post-process
    def _content_fractions(self, target_sizes: Any) -> list[tuple[float, float]] | None:
        if not self.do_pad or target_sizes is None:
            return None
        canvas = (self.size.height, self.size.width) if isinstance(self.size, SizeDict) else tuple(self.size.values())
        fractions = []
        for height, width in (tuple(int(v) for v in size) for size in target_sizes):
            content = content_size(height, width, *canvas, keep_aspect=True)
            fractions.append((content[0] / canvas[0], content[1] / canvas[1]))
        return fractions

    def post_process_semantic_segmentation(self, outputs: Any, target_sizes: Any = None) -> list[torch.Tensor]:
        """Segmentation logits -> per-image (H, W) LongTensor label maps at `target_sizes` (height, width).

        With `do_pad`, the padded border is cropped first, assuming `target_sizes` are the original image sizes.
        """
        logits = _get(outputs, "logits")
        return semantic_label_maps(logits, target_sizes, self._content_fractions(target_sizes))

    def post_process_object_detection(
        self,
        outputs: Any,
        threshold: float = 0.5,
        target_sizes: Any = None,
        iou_threshold: float = 0.6,
        max_detections: int = 100,
    ) -> list[dict[str, torch.Tensor]]:
        """FCOS outputs -> per image {"scores", "labels", "boxes"}; boxes absolute (x1, y1, x2, y2) in `target_sizes`.

        scores = sqrt(sigmoid(logits) * sigmoid(centerness_logits)); kept above `threshold`, top-k, class-wise NMS at
        `iou_threshold`. Without `target_sizes` the boxes stay normalised to [0, 1].
        """
        return decode_detections(
            _get(outputs, "logits"),
            _get(outputs, "pred_boxes"),
            _get(outputs, "centerness_logits", required=False),
            threshold=threshold,
            target_sizes=target_sizes,
            content_fractions=self._content_fractions(target_sizes),
            iou_threshold=iou_threshold,
            max_detections=max_detections,
        )

    def post_process_image_classification(
        self,
        outputs: Any,
        label_names: Sequence[str] | dict[int, str] | None = None,
        multilabel: bool = False,
        threshold: float = 0.5,
        top_k: int | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Logits -> per image [{"label", "label_id", "score"}, ...] by decreasing score (softmax, or sigmoid and
        `threshold` for multi-label). `label_names`: e.g. `config.tasks[task]["labels"]` or `config.id2label`."""
        logits = outputs if isinstance(outputs, torch.Tensor) else _get(outputs, "logits")
        return classification_scores(logits, label_names, multilabel=multilabel, threshold=threshold, top_k=top_k)


def _get(outputs: Any, name: str, required: bool = True) -> Any:
    value = outputs.get(name) if isinstance(outputs, dict) else getattr(outputs, name, None)
    if value is None and required:
        raise ValueError(f"The model outputs have no `{name}`.")
    return value


def _to_numpy_tree(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, list):
        return [_to_numpy_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_numpy_tree(v) for k, v in value.items()}
    return value


__all__ = ["CT_WINDOWS", "UMedPTImageProcessor"]
