"""UMedPTImageProcessor: the modality-aware preprocessing contract saved next to UMedPT weights.

Every intensity and geometry decision is a field of `preprocessor_config.json`, including each pretraining task's
preprocessing (`task_preprocessing`). Imports only numpy, torch, PIL, transformers and sibling `*_umedpt.py` files
(they are copied for remote-code loading).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import get_size_dict
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs
from transformers.utils import logging

from .image_geometry_umedpt import (
    boxes_to_canvas,
    canvas_size,
    content_size,
    pad_bottom_right,
    resize_image,
    resize_mask,
)
from .image_intensity_umedpt import (
    CT_WINDOWS,
    MODALITY_INTENSITY,
    check_percentiles,
    check_value_range,
    resolve_intensity_scaling,
    resolve_window,
    scale_intensity,
)
from .image_targets_umedpt import check_boxes, check_mask
from .image_transforms_umedpt import (
    as_list,
    channel_layout,
    image_to_channels_first,
    match_channels,
    per_image,
    to_numpy,
    to_numpy_tree,
)
from .post_processing_umedpt import UMedPTPostProcessingMixin
from .task_preprocessing_umedpt import (
    TASK_SETTING_KEYS,
    json_form,
    normalise_task_preprocessing,
    processor_modality,
    size_dict,
    task_entry,
    task_preprocessing_from_spec,
)

logger = logging.get_logger(__name__)
GREY_MEAN = (float(np.mean(IMAGENET_DEFAULT_MEAN)),)
GREY_STD = (float(np.mean(IMAGENET_DEFAULT_STD)),)
# settings of transformers' ImagesKwargs that this processor cannot honour: an error when set, never ignored
UNSUPPORTED_SETTINGS = {"crop_size": None, "pad_size": None, "do_center_crop": False}


class UMedPTImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    num_channels (`int`): channels of `pixel_values`: 3 (grey replicated) or 1 (RGB turned into luminance).
    modality (`str`): picks the intensity rule: "xray", "mri", "ct", "microscopy", "histology", ... or None (auto).
    window (`str` | `(centre, width)` | list of them): CT window(s) in HU; several windows give one channel each.
    intensity_scaling (`str`): overrides the modality's rule: "auto", "dtype", "percentile", "minmax", "window", "none".
    percentiles (`(low, high)`): clipping percentiles of the "percentile" rule.
    value_range (`(low, high)`): fixed, finite clipping range for "percentile"/"minmax" (e.g. over a whole volume).
    mask_pad_value (`int`): label of padded mask pixels (255 = ignored by the losses).
    task (`str`): the task whose recorded preprocessing applies when a call names none (see `for_task`).
    task_preprocessing (`dict`): {task: {"modality", "window", "size", "num_labels", ...}} as training applied it.
    """

    num_channels: int
    modality: str | None
    window: Any
    intensity_scaling: str | None
    percentiles: Any
    value_range: Any
    mask_pad_value: int
    task: str | None
    task_preprocessing: dict | None


class UMedPTImageProcessor(UMedPTPostProcessingMixin, PilBackend):
    r"""
    Image processor of UMedPT: medical intensities to [0, 1], resize (optionally keeping the aspect ratio and
    padding bottom/right), channel policy, normalisation; segmentation maps and boxes follow the image geometry.

    Order: input check -> intensity rule at the original resolution (float32 where exact, else float64: 16-bit and
    HU values lose nothing) -> resize with `torch.nn.functional.interpolate` (anti-aliased bilinear by default; masks
    nearest, by indexing) -> channel policy -> pad -> normalise with `image_mean`/`image_std`.

    Accepted images: PIL images, numpy arrays and torch tensors shaped (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4
    (alpha dropped; `input_data_format` fixes the layout); integer and float dtypes. Errors: bool, complex and object
    arrays (TypeError); NaN/inf pixels, empty or 4-D arrays, unknown modality or window names, non-finite windows or
    value ranges, mask values beyond the classes, boxes of zero size or outside the image (ValueError).

    Intensity rules (`modality` -> rule, overridable with `intensity_scaling`):
    microscopy/histology/fluorescence/dermoscopy/fundus/endoscopy/rgb -> "dtype" (uint8 / 255, uint16 / 65535; float
    must be in [0, 1]); xray/mammography/mri/ultrasound/pet/nuclear -> "percentile" (`percentiles`, default 0.5-99.5);
    ct -> "window" in HU (`window`: "lung", "soft_tissue" (default), "bone", "brain", "mediastinum", "liver", "wide", a
    (centre, width) pair, or a list of windows, one channel each; 8-bit CT exports are taken as already windowed);
    None -> "auto" (uint8 and [0, 1] floats by dtype, anything else by percentile).

    Per-task contract: `task_preprocessing` records, for every pretraining task, the modality rule, window, size and
    label count its training used. `processor(images, task=name)` or `processor.for_task(name)(images)` reproduce it;
    arguments given in a call override the task's entry, which overrides the processor's defaults.

    Args:
        size (`dict`, defaults to `{"height": 224, "width": 224}`): output size.
        num_channels (`int`, defaults to 3): channel policy; follow the model with `from_model_config(config)`.
        modality, window, intensity_scaling, percentiles, value_range, task, task_preprocessing: see above.
        do_resize (`bool`, defaults to True), resample (defaults to bilinear; nearest and bicubic also supported).
        do_pad (`bool`, defaults to False): resize keeping the aspect ratio and pad bottom/right to `size`.
        do_rescale (`bool`, defaults to True): apply the intensity rule (False: raw values as float32).
        do_normalize (`bool`, defaults to True), image_mean, image_std (ImageNet statistics; their grey average for 1
            channel).
        mask_pad_value (`int`, defaults to 255): label of padded mask pixels (and the "ignore" label of masks).

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
    task = None
    task_preprocessing = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.image_mean is None:
            self.image_mean = tuple(IMAGENET_DEFAULT_MEAN) if self.num_channels == 3 else GREY_MEAN
        if self.image_std is None:
            self.image_std = tuple(IMAGENET_DEFAULT_STD) if self.num_channels == 3 else GREY_STD
        if isinstance(self.percentiles, list):
            self.percentiles = tuple(self.percentiles)
        # JSON forms, so that a loaded processor equals the saved one
        self.window = json_form(self.window)
        self.value_range = list(self.value_range) if isinstance(self.value_range, (list, tuple)) else self.value_range
        self.task_preprocessing = normalise_task_preprocessing(self.task_preprocessing)
        self._check_settings(vars(self))
        for name in self.task_preprocessing:
            self._settings(name, {})
        if self.task is not None:
            task_entry(self.task_preprocessing, self.task)

    def to_dict(self) -> dict[str, Any]:
        """All settings, including the medical ones left at None, so the saved JSON states every decision."""
        output = super().to_dict()
        for name in ("modality", "window", "intensity_scaling", "value_range", "task", "task_preprocessing"):
            output.setdefault(name, getattr(self, name, None))
        return output

    @classmethod
    def from_model_config(
        cls,
        config: Any,
        task_specs: Mapping[str, Mapping[str, Any]] | None = None,
        task_sizes: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> UMedPTImageProcessor:
        """A processor whose channel policy follows a model config, with the preprocessing of each of its tasks.

        `task_specs` (default: `config.tasks`) and `task_sizes` ({task: int or {"height", "width"}}) give the tasks'
        entries through `task_preprocessing_from_spec`; if all tasks share one modality it becomes the default.
        """
        kwargs.setdefault("num_channels", int(getattr(config, "num_channels", 3)))
        specs = dict(task_specs if task_specs is not None else (getattr(config, "tasks", None) or {}))
        sizes = dict(task_sizes or {})
        if set(sizes) - set(specs):
            raise ValueError(f"task_sizes names tasks without a spec: {sorted(set(sizes) - set(specs))}.")
        modalities = {processor_modality(spec.get("modality")) for spec in specs.values()}
        if len(modalities) == 1 and None not in modalities:
            kwargs.setdefault("modality", next(iter(modalities)))
        table = {name: task_preprocessing_from_spec(spec, size=sizes.get(name)) for name, spec in specs.items()}
        kwargs.setdefault("task_preprocessing", table)
        return cls(**kwargs)

    def for_task(self, task: str) -> UMedPTImageProcessor:
        """A copy whose defaults are `task`'s recorded preprocessing (its plain calls reproduce that task's inputs)."""
        entry = task_entry(self.task_preprocessing, task)
        clone = copy.deepcopy(self)
        for key in TASK_SETTING_KEYS:
            if key in entry:
                value = entry[key]
                setattr(clone, key, SizeDict(**value) if key == "size" else value)
        clone.task = task
        clone._check_settings(vars(clone))
        return clone

    # -------------------------------------------------------------------------------------------------- preprocess
    def preprocess(
        self,
        images: Any,
        segmentation_maps: Any = None,
        boxes: Any = None,
        box_labels: Any = None,
        task: str | None = None,
        num_labels: int | None = None,
        clip_boxes: bool = False,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess one image or a list of images (and their segmentation maps or boxes).

        `task` applies that task's recorded preprocessing (default: the processor's own `task`). `num_labels` (default:
        the task's) makes mask values and box labels outside 0 .. num_labels - 1 an error (255 stays "ignore").
        Boxes outside the image are an error unless `clip_boxes=True` (then clipped; counts in "clipped_boxes").
        Returns a `BatchFeature` with `pixel_values` (B, C, H, W) float32, `original_sizes` (B, 2) as (height, width),
        and `labels`: a (B, H, W) LongTensor for segmentation maps; for boxes a list of {"class_labels", "boxes"}
        dicts (normalised (cx, cy, w, h) on the output canvas), plus "segmentation_map" when masks are given too.
        `return_tensors`: "pt" (default; None means the same) or "np".
        """
        settings, task, task_labels = self._settings(task, kwargs)
        num_labels = num_labels if num_labels is not None else task_labels
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        image_list = as_list(images, "images")
        mask_list = as_list(segmentation_maps, "segmentation_maps") if segmentation_maps is not None else None
        box_list = per_image(boxes, "boxes", len(image_list)) if boxes is not None else None
        label_list = per_image(box_labels, "box_labels", len(image_list)) if box_labels is not None else None
        if mask_list is not None and len(mask_list) != len(image_list):
            raise ValueError(f"Got {len(mask_list)} segmentation maps for {len(image_list)} images.")
        if box_list is None and label_list is not None:
            raise ValueError("box_labels were given without boxes.")

        arrays = [image_to_channels_first(image, settings["input_data_format"]) for image in image_list]
        canvas = canvas_size([a.shape[1:] for a in arrays], settings["size"], settings["do_resize"], settings["do_pad"])
        mean = torch.tensor(settings["image_mean"], dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.tensor(settings["image_std"], dtype=torch.float32).reshape(-1, 1, 1)
        if settings["do_normalize"] and {mean.shape[0], std.shape[0]} - {1, settings["num_channels"]}:
            raise ValueError(
                f"image_mean/image_std have {mean.shape[0]}/{std.shape[0]} values for {settings['num_channels']} "
                "channels; give one value per channel (or use from_model_config)."
            )
        pixel_values, masks, box_targets, original_sizes, clipped = [], [], [], [], []
        for index, array in enumerate(arrays):
            height, width = array.shape[1:]
            original_sizes.append((height, width))
            keep_aspect = settings["do_pad"]
            content = content_size(height, width, *canvas, keep_aspect) if settings["do_resize"] else (height, width)
            tensor = self._pixels(array, content, settings)
            if settings["do_pad"]:
                tensor = pad_bottom_right(tensor, *canvas, value=0.0)
            pixel_values.append((tensor - mean) / std if settings["do_normalize"] else tensor)
            if mask_list is not None:
                mask = to_numpy(mask_list[index], what="segmentation map")
                mask = check_mask(mask, (height, width), num_labels=num_labels,
                                  ignore_value=settings["mask_pad_value"], index=index, task=task)  # fmt: skip
                mask = resize_mask(mask, *content)
                masks.append(pad_bottom_right(mask, *canvas, settings["mask_pad_value"]) if keep_aspect else mask)
            if box_list is not None:
                labels = label_list[index] if label_list is not None else None
                image_boxes, image_labels, count = check_boxes(
                    box_list[index], labels, index, num_labels=num_labels, clip=clip_boxes, task=task
                )
                clipped.append(count)
                if settings["do_pad"]:
                    image_boxes = boxes_to_canvas(image_boxes, content, canvas)
                box_targets.append(
                    {"class_labels": torch.from_numpy(image_labels), "boxes": torch.from_numpy(image_boxes)}
                )
        clipped = clipped if clip_boxes and box_list is not None else None
        return self._batch(pixel_values, original_sizes, masks, box_targets, clipped, settings, return_tensors)

    def _settings(self, task: str | None, kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
        """The settings of one call: the processor's, then the task's entry, then the call's own arguments."""
        unknown = set(kwargs) - set(self.valid_kwargs.__annotations__) - {"image_like_kwargs"}
        if unknown or "task_preprocessing" in kwargs:
            raise TypeError(
                f"Unknown argument(s) {sorted(unknown or {'task_preprocessing'})} for UMedPTImageProcessor calls "
                "(task_preprocessing is a processor setting: choose a recorded task with task=)."
            )
        settings = {name: getattr(self, name, None) for name in self.valid_kwargs.__annotations__}
        task = task if task is not None else self.task
        entry = task_entry(self.task_preprocessing, task) if task is not None else {}
        num_labels = entry.pop("num_labels", None)
        settings.update(entry)
        given = {k: v for k, v in kwargs.items() if v is not None and k != "image_like_kwargs"}
        if "rescale_factor" in given and given["rescale_factor"] != self.rescale_factor:
            raise ValueError(
                "rescale_factor is not used: do_rescale applies the intensity rule (see intensity_scaling)."
            )
        settings.update(given)
        return self._check_settings(settings), task, num_labels

    def _pixels(self, array: np.ndarray, content: tuple[int, int], settings: dict[str, Any]) -> torch.Tensor:
        if settings["do_rescale"]:
            scaling = resolve_intensity_scaling(settings["modality"], settings["intensity_scaling"])
            scaled = scale_intensity(array, scaling, percentiles=settings["percentiles"], window=settings["window"],
                                     value_range=settings["value_range"])  # fmt: skip
        else:
            scaled = array.astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(scaled))
        if settings["do_resize"]:
            tensor = resize_image(tensor, *content, resample=settings["resample"])
        # the channel policy after resizing: replicating grey first would resize three copies
        return match_channels(tensor, settings["num_channels"]).float()

    def _batch(
        self,
        pixel_values: list[torch.Tensor],
        original_sizes: list[tuple[int, int]],
        masks: list[torch.Tensor],
        box_targets: list[dict[str, torch.Tensor]],
        clipped: list[int] | None,
        settings: dict[str, Any],
        return_tensors: str | None,
    ) -> BatchFeature:
        pixels = torch.stack(pixel_values)
        if channel_layout(settings.get("data_format"), "data_format") == "last":
            pixels = pixels.permute(0, 2, 3, 1)
        data: dict[str, Any] = {
            "pixel_values": pixels.contiguous().to(settings.get("device") or "cpu"),
            "original_sizes": torch.tensor(original_sizes, dtype=torch.long),
        }
        if box_targets:
            for target, mask in zip(box_targets, masks):
                target["segmentation_map"] = mask
            data["labels"] = box_targets
        elif masks:
            data["labels"] = torch.stack(masks)
        if clipped is not None:
            data["clipped_boxes"] = torch.tensor(clipped, dtype=torch.long)
            if sum(clipped):
                logger.warning(f"clip_boxes=True: clipped {sum(clipped)} box(es) reaching outside their image.")
        if return_tensors == "np":
            data = {key: to_numpy_tree(value) for key, value in data.items()}
        return BatchFeature(data=data)

    def _check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        settings = dict(settings)
        for name, neutral in UNSUPPORTED_SETTINGS.items():
            if settings.get(name, neutral) not in (neutral, None):
                raise ValueError(f"{name} is not supported by UMedPTImageProcessor; do_pad keeps the aspect ratio.")
        size = settings.get("size")
        if settings.get("do_resize", True):
            if isinstance(size, (int, list, tuple)) and not isinstance(size, bool):
                size = get_size_dict(size, default_to_square=True)
            try:
                size = SizeDict(**size_dict(dict(size) if isinstance(size, (dict, SizeDict)) else size))
            except (TypeError, ValueError):
                raise ValueError(
                    f"size must be {{'height': int, 'width': int}} with positive values, got {size}."
                ) from None
            settings["size"] = size
        if settings.get("num_channels") not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3, got {settings.get('num_channels')!r}.")
        resolve_intensity_scaling(settings.get("modality"), settings.get("intensity_scaling"))
        if settings.get("window") is not None:
            resolve_window(settings["window"])
        check_percentiles(settings.get("percentiles"))
        check_value_range(settings.get("value_range"))
        return settings


__all__ = ["CT_WINDOWS", "MODALITY_INTENSITY", "UMedPTImageProcessor"]
